"""The pipeline sections owned by core (not by a component): the model's shared dimensions, the
losses, the run options and the training stages. Components' own configs live beside their code."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lca.config.defaults import DEFAULT_LOSS_TERMS

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""Pipeline and stage names become folders of a run (``runs/<pipeline>/...``, ``checkpoints/<stage>``): no
separators, no leading dot, so no name can reach outside the run folder."""


def unsafe_name_message(kind: str, name: str) -> str | None:
    """Why ``name`` cannot name a ``kind`` (None when it can)."""
    if SAFE_NAME.fullmatch(name):
        return None
    return (
        f"{kind} name {name!r} becomes a folder of the run, so it must be letters, digits, '-', '_' and '.' "
        "only, starting with a letter or digit"
    )


class Section(BaseModel):
    """Base of core sections: unknown fields are errors; attribute docstrings are the field docs."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class ModelOptions(Section):
    """Dimensions shared across slots; the assembler hands them to components as build context."""

    width: int = Field(64, gt=0)
    """Token width C shared by geometry tokens, blocks and the decoder."""
    depth: int = Field(2, ge=1)
    """Number of attention blocks in the backbone."""
    grad_checkpointing: bool = False
    """Recompute block activations in backward to save memory."""
    camera_embedding: Literal["none", "plucker"] = "none"
    """Per-view camera embedding added to the image tokens: ``plucker`` embeds the Plücker ray (direction,
    moment) through each patch's centre, in the canonical frame of the reference's body root
    (:mod:`lca.model.camera_embedding`), so a token knows where its view looked from; ``none``: no camera."""
    refine_steps: int = Field(0, ge=0)
    """Render-and-compare steps that refine the avatar's colours against its own reference views when it is
    created outside training (:mod:`lca.model.refine`: no learned part, no optimizer; each step renders the
    references and differentiates the render once more); 0: the network's colours as they are. Needs the
    references' masks; not applied in training steps."""
    refine_damping: float = Field(1.0, ge=0)
    """Damping of each refinement step (in pixels of footprint): a Gaussian that covers few reference
    pixels moves less."""


class LossOptions(Section):
    """The training objective: named loss terms (components of kind ``loss``) and the options they share.

    ``terms`` is validated against each term's component config when the pipeline resolves (see
    :mod:`lca.config.pipeline`); here it is plain data, ``{name: {type: <loss name>, weight: w, ...}}``.
    """

    canonical: float = Field(0.5, ge=0)
    """Relative weight of the per-render terms (l1, lpips, mask) on the canonical (uncorrected) render."""
    ramp_steps: int = Field(0, ge=0)
    """Ramped terms (the regularisers ACAP, ASAP, KL) rise linearly from 0 to full weight over this many
    steps."""
    part_weights: dict[str, float] = {"head": 1.0, "hands": 1.0, "upper_body": 1.0, "lower_body": 1.0}
    """Per-body-part multipliers, handed to the terms that weigh Gaussians by part (ACAP, ASAP)."""
    terms: dict[str, Any] = DEFAULT_LOSS_TERMS
    """Named terms, each {type: <loss name>, weight: w, ...params}; a pipeline that lists none gets these
    defaults, one that lists some gets exactly those. Logged as NAME, or driven/NAME and canonical/NAME."""


class RunOptions(Section):
    """Options of a training run that are not part of the model."""

    seed: int = Field(0, ge=0)
    """Seed of every random generator (model init, sampling, augmentation)."""
    output_dir: str = "runs"
    """Folder under which each run writes its checkpoints, previews, logs and resolved config."""
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    """Mixed precision mode handed to accelerate."""
    deterministic: bool = False
    """Use deterministic algorithms (bit-identical resumes on the CPU)."""
    checkpoint_every: int = Field(100, ge=1)
    """Steps between checkpoints."""
    keep_last: int = Field(2, ge=1)
    """Checkpoints kept per stage besides each stage's final one."""
    log_every: int = Field(10, ge=1)
    """Steps between logged scalars."""
    preview_every: int = Field(100, ge=1)
    """Steps between preview image grids."""
    cpu_threads: int | None = Field(1, ge=1)
    """torch CPU threads per process (None: torch's default). 1 by default: the tiny models' many small ops
    ran 12x slower with 2 OpenMP threads on a shared 2-core machine (spin-waiting; see docs/training.md)."""
    num_workers: int = Field(0, ge=0)
    """DataLoader worker processes per training process."""
    max_bad_steps: int = Field(5, ge=1)
    """Abort after this many consecutive steps with a non-finite loss or gradient."""
    ema_decay: float | None = Field(None, gt=0, lt=1)
    """Keep an exponential moving average of the weights with this decay (None: off)."""
    parallel: Literal["ddp", "fsdp"] = "ddp"
    """How several processes share the work: ``ddp`` replicates the model on each (accelerate's DDP; also
    the single-process case), ``fsdp`` shards weights, gradients and optimizer state over them (torch's
    FSDP2, :mod:`lca.train.fsdp`; needs at least 2 processes; checkpoints hold per-process shards plus the
    gathered full weights)."""

    @model_validator(mode="after")
    def _fsdp_without_ema(self) -> RunOptions:
        if self.parallel == "fsdp" and self.ema_decay is not None:
            raise ValueError(
                "run.ema_decay is not supported with run.parallel=fsdp (the average would be a full copy of "
                "the weights on every process, which is what sharding avoids): set run.ema_decay=null or "
                "run.parallel=ddp"
            )
        return self


class StageConfig(Section):
    """One stage of the training schedule (for example ``pretrain`` or ``posttrain``)."""

    name: str
    """Stage name, unique in the schedule; `lca train --stage NAME` runs only this stage."""

    @field_validator("name")
    @classmethod
    def _safe(cls, name: str) -> str:
        message = unsafe_name_message("stage", name)
        if message:
            raise ValueError(message)
        return name

    data: str
    """Name of the dataset slot (under `data`) this stage reads; its config sets the views per sample
    (``num_references``, ``min_references``, ``num_targets``), the one place training, evaluation and
    avatar creation read them."""
    steps: int = Field(100, ge=1)
    """Optimizer steps."""
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay (never applied to norms and biases)."""
    warmup_steps: int = Field(10, ge=0)
    """Linear warm-up steps before the cosine decay."""
    batch_size: int = Field(1, ge=1)
    """Samples per process per step."""
    grad_accumulation: int = Field(1, ge=1)
    """Micro-batches accumulated per optimizer step."""
    clip_grad_norm: float | None = Field(1.0, gt=0)
    """Clip the global gradient norm to this value (None: off)."""
    init_from: str | None = None
    """Start from the final weights of an earlier stage (its name) or a checkpoint path."""
    freeze: list[str] = []
    """Parameter-name prefixes to freeze (e.g. `encoder`)."""
    layer_decay: float = Field(1.0, gt=0, le=1)
    """Layer-wise lr decay: a parameter at depth d gets lr * layer_decay ** (top - d); 1.0 turns it off."""
