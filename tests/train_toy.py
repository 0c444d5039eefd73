"""A tiny model honouring :class:`lca.contracts.model.TrainableModel` and a tiny in-memory dataset, registered
at runtime in a fresh :class:`Registry`, for the trainer's tests. Also a script
(``python tests/train_toy.py``) so that tests can run training in a subprocess (signals, SIGKILL,
torchrun with 2 processes)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from lca.component import ComponentConfig
from lca.config import PipelineConfig, resolve_raw
from lca.contracts.dataset import Dataset, DatasetConfig, Provenance
from lca.contracts.model import ModelOutput
from lca.contracts.sample import Driving, Sample, Views
from lca.errors import ChunkError, Problem
from lca.registry import KINDS, Registry, build_registry


class ToyPartConfig(ComponentConfig):
    """Config of the stand-in component of every model slot."""

    check_sync: bool = False
    """Compare the weights across processes at every forward (2-process test)."""
    signal_at_forward: int = -1
    """Send SIGTERM to this process at this forward call (0-based; -1: never)."""
    nan_for_indices: tuple[int, ...] = ()
    """Dataset indices for which the model's renders are NaN (the non-finite step guard's tests)."""


class ToyPart:
    """Stand-in component for the model slots (the toy model reads only its config)."""

    Config: ClassVar[type[ToyPartConfig]] = ToyPartConfig

    def __init__(self, config: ToyPartConfig, **context: Any) -> None:
        self.config = config


class ToyDataConfig(DatasetConfig):
    """Config of the in-memory toy dataset (the dataset contract's shared fields, plus its own)."""

    num_references: int = 2
    """Reference views per sample."""
    size: int = 8
    """Image side."""
    length: int = 6
    """Number of samples."""
    nan_indices: tuple[int, ...] = ()
    """Indices whose target images are NaN (a non-finite sample, refused by the dataset contract)."""
    unreadable_indices: tuple[int, ...] = ()
    """Indices whose reading raises a :class:`ChunkError` (``on_error: skip`` counting test)."""
    delay: float = 0.0
    """Seconds slept per sample (to catch a subprocess mid-run)."""


class ToyDataset(Dataset):
    """Samples whose images depend only on (seed, epoch, index)."""

    Config: ClassVar[type[ToyDataConfig]] = ToyDataConfig
    config: ToyDataConfig

    def __len__(self) -> int:
        return self.config.length

    def provenance(self) -> Provenance:
        identities = tuple(f"id{i}" for i in range(self.config.length))
        return Provenance("memory://toy", "toy", "toy", self.config.split, identities)

    def _views(self, rng: np.random.Generator, count: int) -> Views:
        s = self.config.size
        colour = torch.from_numpy(rng.uniform(0.2, 0.8, size=(count, 3, 1, 1))).float()
        ramp = torch.linspace(0, 0.2, s).reshape(1, 1, 1, s)
        mask = torch.zeros(count, 1, s, s)
        mask[..., 2:-2, 2:-2] = 1.0
        return Views(
            images=(colour + ramp).expand(count, 3, s, s).clone() * mask,
            masks=mask,
            viewmats=torch.eye(4).expand(count, 4, 4).clone(),
            Ks=torch.eye(3).expand(count, 3, 3).clone(),
            params={"betas": torch.zeros(count, 10)},
            frame=torch.arange(count),
            camera=torch.zeros(count, dtype=torch.long),
            is_face=torch.zeros(count, dtype=torch.bool),
            valid=torch.ones(count, dtype=torch.bool),
        )

    def make_sample(self, index: int, rng: np.random.Generator) -> Sample:
        if self.config.delay:
            time.sleep(self.config.delay)
        if index in self.config.unreadable_indices:
            raise ChunkError([Problem("memory://toy", "chunk is missing", f"g{index}", "frames", (0,))])
        references = self._views(rng, self.config.num_references)
        targets = self._views(rng, self.config.num_targets)
        if index in self.config.nan_indices:
            targets.images[:] = float("nan")
        m = self.config.num_targets
        driving = Driving(face=torch.zeros(m, 3, 4, 4), face_valid=torch.ones(m, dtype=torch.bool))
        return Sample(references, targets, driving, identity=f"id{index}", group=f"g{index}", index=index)


class ToyModel(nn.Module):
    """Encoder (depth 0) -> block with dropout (depth 1) -> head (depth 2): a per-sample colour added to a
    learned image. Dropout makes the resume test depend on the restored RNG state."""

    def __init__(
        self, size: int, check_sync: bool = False, signal_at_forward: int = -1, nan_for: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        self.encoder = nn.Linear(3, 8)
        self.block = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.GELU(), nn.Dropout(0.2))
        self.head = nn.Linear(8, 3)
        self.image = nn.Parameter(torch.zeros(3, size, size))
        self.alpha = nn.Parameter(torch.zeros(1, size, size))
        self.offsets = nn.Parameter(torch.full((4, 2, 3), 0.05))
        self.log_scales = nn.Parameter(torch.zeros(4, 2, 3))
        self.register_buffer("parts", torch.tensor([0, 1, 2, 3]))
        self.check_sync, self.signal_at_forward, self.forwards = check_sync, signal_at_forward, 0
        self.nan_for = set(nan_for)
        self.sync_records: list[float] = []
        self.seen_indices: list[int] = []

    def layer_depths(self) -> tuple[dict[str, int], int]:
        depth = {"encoder": 0, "block": 1}
        return {name: depth.get(name.split(".")[0], 2) for name, _ in self.named_parameters()}, 2

    def forward(self, batch: Any) -> ModelOutput:
        if self.check_sync:
            self._record_sync()
        if self.forwards == self.signal_at_forward:
            os.kill(os.getpid(), signal.SIGTERM)
        self.forwards += 1
        self.seen_indices += batch.index.tolist()
        colour = batch.references.images.mean(dim=(1, 3, 4))  # [B, 3]
        shift = self.head(self.block(self.encoder(colour)))  # [B, 3]
        b, m = batch.targets.images.shape[:2]
        canonical = torch.sigmoid(self.image).expand(b, m, *self.image.shape)
        driven = torch.sigmoid(self.image + shift[:, None, :, None, None]).expand(b, m, *self.image.shape)
        if self.nan_for & set(batch.index.tolist()):
            driven = driven * float("nan")
        alpha = torch.sigmoid(self.alpha).expand(b, m, *self.alpha.shape)
        scales = torch.exp(self.log_scales)
        return ModelOutput(
            driven=driven,
            driven_alpha=alpha,
            offsets=self.offsets.expand(b, *self.offsets.shape),
            scales=scales.expand(b, *scales.shape),
            part_labels=self.parts,
            canonical=canonical,
            canonical_alpha=alpha,
            regularization={"kl": shift.pow(2).mean()},
        )

    def _record_sync(self) -> None:
        """Max |difference| between this process's weights and every other process's (0 when in sync)."""
        import torch.distributed as dist

        flat = torch.cat([p.detach().reshape(-1) for p in self.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, flat)
        self.sync_records.append(max(float((g - flat).abs().max()) for g in gathered))


BUILT: list[ToyModel] = []


def toy_factory(config: PipelineConfig, registry: Registry) -> ToyModel:
    part = config.slots["encoder"].config
    model = ToyModel(
        config.data["toy"].config.size, part.check_sync, part.signal_at_forward, part.nan_for_indices
    )
    BUILT.append(model)
    return model


def toy_registry() -> Registry:
    registry = Registry()
    for kind in KINDS:
        if kind != "dataset":
            registry.register(kind, "toy", ToyPart, summary="stand-in")
    registry.register("dataset", "toy", ToyDataset, summary="in-memory toy data")
    builtin = build_registry()
    for name in builtin.names("loss"):  # the objective is the real one: the built-in loss terms
        registry.register("loss", name, builtin.load("loss", name))
    registry.register("encoder", "toy-other", ToyPart, summary="another stand-in, for mismatch tests")
    return registry


def toy_config(
    registry: Registry, output_dir: Path, overrides: list[str] = (), pipeline: str = "toy", **stage: Any
) -> PipelineConfig:
    """Pipeline ``pipeline``: one stage ``fit`` (``stage`` fields override) plus a stage ``tune`` initialised
    from it."""
    raw = {
        "name": pipeline,
        "slots": {
            **{
                slot: {"type": "toy"}
                for slot in ("template", "encoder", "tokenizer", "block", "decoder", "rasterizer")
            },
            "data": {"toy": {"type": "toy"}},
        },
        "loss": {"ramp_steps": 2},
        "run": {
            "output_dir": str(output_dir),
            "deterministic": True,
            "checkpoint_every": 2,
            "keep_last": 2,
            "log_every": 1,
            "preview_every": 3,
            "max_bad_steps": 3,
        },
        "schedule": [
            {
                "name": "fit",
                "data": "toy",
                "steps": 6,
                "lr": 0.05,
                "warmup_steps": 1,
                "batch_size": 2,
                **stage,
            },
            {
                "name": "tune",
                "data": "toy",
                "steps": 2,
                "lr": 0.01,
                "warmup_steps": 0,
                "batch_size": 2,
                "init_from": "fit",
                "freeze": ["encoder"],
                "layer_decay": 0.5,
            },
        ],
    }
    return resolve_raw(raw, "toy", list(overrides), registry)


def main() -> None:
    """Script entry: train the toy pipeline in ``--run-dir`` (used by subprocess tests)."""
    from lca.errors import LcaError
    from lca.train import end_process, train

    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--stage", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--report", type=Path, default=None, help="write this process's sync records here")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    registry = toy_registry()
    config = toy_config(registry, args.run_dir.parent, args.overrides)
    try:
        train(
            config,
            stage=args.stage,
            resume=args.resume,
            run_dir=args.run_dir,
            registry=registry,
            model_factory=toy_factory,
        )
    except LcaError as error:  # as the lca CLI does: the message, no traceback, the error's exit code
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    if args.report is not None:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        weights = {k: v.tolist() for k, v in BUILT[-1].state_dict().items() if v.dtype.is_floating_point}
        report = {
            "world": world,
            "sync": [r for m in BUILT for r in m.sync_records],
            "indices": BUILT[0].seen_indices,
            "weights": weights,
        }
        (args.report.parent / f"{args.report.name}.rank{rank}.json").write_text(json.dumps(report))
    end_process(0)


if __name__ == "__main__":
    main()
