"""One training stage, the only training loop in the toolkit: `lca train` (:mod:`lca.train.trainer`) and the
notebooks' comparisons (:mod:`lca.compare`) both run it, so every stage option (``init_from``, ``freeze``,
gradient accumulation, clipping, layer-wise lr decay, warm-up + cosine, EMA, non-finite step skipping)
means the same everywhere.

:class:`StageLoop` sets a stage up (seed, model from the factory, initial weights, frozen prefixes,
optimizer, schedule, dataset and loader, all through ``accelerate``), then :meth:`StageLoop.step` takes one
optimizer step and hands a :class:`StepResult` to the callbacks (:mod:`lca.train.callbacks`: progress,
scalars, previews, checkpoints, EMA), in the spirit of nerfstudio's ``TrainingCallback`` and
threestudio's ``update_step``. What a caller wants beyond the step (a run folder, losses in memory,
evaluations) is a callback, never a second loop.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler

from lca.config import PipelineConfig, StageConfig
from lca.contracts.model import ModelFactory, ModelOutput
from lca.contracts.sample import Batch, collate
from lca.data.locations import resolve_data_paths
from lca.errors import ComponentBuildError, TrainingError
from lca.losses import LossTerms, Objective
from lca.registry import Registry
from lca.train import checkpoint as ckpt
from lca.train import fsdp
from lca.train.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

InitialWeights = ckpt.Checkpoint | Mapping[str, Tensor] | None
"""Where a stage's weights start: a checkpoint, a state dict held in memory, or a fresh initialisation."""


class EpochSampler(Sampler[int]):
    """A permutation of the dataset per epoch, a function of ``(seed, epoch)`` only: every process draws the
    same order (accelerate then shards it) and a resumed run redraws exactly the order it left. With
    ``weights`` (the dataset's :meth:`sample_weights`), ``size`` indices drawn with replacement in those
    proportions instead, as deterministically."""

    def __init__(self, size: int, seed: int, weights: np.ndarray | None = None) -> None:
        self.size, self.seed, self.epoch = size, seed, 0
        self.weights = weights

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.weights is None:
            return iter(rng.permutation(self.size).tolist())
        return iter(rng.choice(self.size, size=self.size, p=self.weights).tolist())


def build_dataset(config: PipelineConfig, stage: StageConfig, registry: Registry) -> Any:
    """The stage's dataset: its ``data`` member (with its own view counts) on the train split with the run
    seed (fields every :class:`~lca.contracts.dataset.DatasetConfig` has, so nothing is probed). A
    ``synthetic://`` path is resolved here (datasets take concrete locations), generating the stores once."""
    slot = resolve_data_paths(config, only=[stage.data]).data[stage.data]
    updates = {"split": "train", "seed": config.run.seed}
    try:
        return registry.build("dataset", slot.type, {**slot.config.model_dump(), **updates})
    except ComponentBuildError as error:
        raise error.at(f"data.{stage.data}") from error.cause


def freeze(model: nn.Module, prefixes: Sequence[str]) -> None:
    """Stop gradients of parameters whose name starts with a prefix; a prefix matching nothing is an error."""
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        matched = [n for n in names if n == prefix or n.startswith(prefix.rstrip(".") + ".")]
        if not matched:
            tops = sorted({n.split(".")[0] for n in names})
            raise TrainingError(
                f"freeze prefix '{prefix}' matches no parameter; top-level modules: {', '.join(tops)}"
            )
        for name, parameter in model.named_parameters():
            if name in matched:
                parameter.requires_grad_(False)


def load_initial(model: nn.Module, initial: InitialWeights, config: PipelineConfig) -> None:
    """Load ``initial`` into ``model`` (a checkpoint must come from a compatible pipeline)."""
    if initial is None:
        return
    if isinstance(initial, ckpt.Checkpoint):
        ckpt.check_compatible(initial, config)
        ckpt.load_weights(initial, model)
    else:
        model.load_state_dict(initial, strict=True)


@dataclass
class StepResult:
    """One optimizer step, as the callbacks see it. ``step`` counts the steps done including this one;
    ``applied`` is False when a non-finite loss or gradient skipped it; ``stopping`` when any process was
    asked to stop (SIGINT/SIGTERM); ``skipped_samples`` how many unreadable dataset indices every process
    together skipped (``on_error: skip``) to fill this step's batches. ``output``/``batch`` are the last
    micro-batch's."""

    step: int
    losses: LossTerms
    total: float
    grad_norm: Tensor
    applied: bool
    stopping: bool
    skipped_samples: int
    output: ModelOutput
    batch: Batch

    def scalars(self) -> dict[str, float]:
        """Each unweighted loss term and ``total``, as plain numbers."""
        return {k: float(v.detach()) for k, v in self.losses.values.items()} | {"total": self.total}


class Callback(Protocol):
    """What a callback may implement; :class:`lca.train.callbacks.TrainingCallback` has no-op defaults."""

    def on_stage_start(self, loop: StageLoop) -> None: ...

    def on_step_end(self, loop: StageLoop, result: StepResult) -> None: ...

    def on_stage_end(self, loop: StageLoop) -> None: ...


class StageLoop:
    """A stage set up and ready to step. ``index`` is the stage's position in the schedule (the seed is
    ``run.seed + index``); ``initial`` the weights it starts from; ``resume_from`` a checkpoint of this
    same stage whose optimizer, schedule, step and RNG state it continues. ``stop`` is anything with a
    ``requested`` flag (:class:`lca.train.signals.StopRequest`)."""

    def __init__(
        self,
        config: PipelineConfig,
        stage: StageConfig,
        *,
        index: int,
        accelerator: Any,
        model_factory: ModelFactory,
        registry: Registry,
        initial: InitialWeights = None,
        resume_from: ckpt.Checkpoint | None = None,
        callbacks: Sequence[Callback] = (),
        stop: Any = None,
    ) -> None:
        from accelerate.utils import set_seed

        self.config, self.stage, self.index = config, stage, index
        self.accelerator, self.callbacks, self.stop = accelerator, list(callbacks), stop
        self.resume_from = resume_from
        run, acc = config.run, accelerator
        set_seed(run.seed + index)
        model = model_factory(config, registry)
        load_initial(model, resume_from or initial, config)
        freeze(model, stage.freeze)
        model.to(acc.device)
        self.sharded = run.parallel == "fsdp"
        if self.sharded:  # before the optimizer, which then holds only this process's shards
            fsdp.shard_model(model, acc.device)
        optimizer = build_optimizer(model, stage.lr, stage.weight_decay, stage.layer_decay)
        self.base_optimizer = optimizer  # the torch optimizer; self.optimizer may be accelerate's wrapper
        self.scheduler = build_scheduler(optimizer, stage.warmup_steps, stage.steps)
        self.dataset = build_dataset(config, stage, registry)
        weights = getattr(self.dataset, "sample_weights", lambda: None)()
        self.sampler = EpochSampler(len(self.dataset), run.seed, weights)
        loader = DataLoader(
            self.dataset,
            batch_size=stage.batch_size,
            sampler=self.sampler,
            collate_fn=collate,
            num_workers=run.num_workers,
            generator=torch.Generator().manual_seed(run.seed),  # keeps the global torch RNG untouched
        )
        if self.sharded:  # sharded already: accelerate must not wrap it in DDP as well
            self.model = model
            self.optimizer, self.loader = acc.prepare(optimizer, loader)
        else:
            self.model, self.optimizer, self.loader = acc.prepare(model, optimizer, loader)
        self.step_count, self.bad_total, self.bad_in_row, self.skipped_total = 0, 0, 0, 0
        if resume_from is not None:
            state = ckpt.load_state(resume_from)
            self._check_layout(resume_from)
            if self.sharded:
                fsdp.load_sharded(resume_from.path / fsdp.SHARDED_DIR, self.model, optimizer)
            else:
                self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.step_count, self.bad_total = int(state["step"]), int(state["bad_steps"])
            self.skipped_total = int(state.get("skipped_samples", 0))  # absent in older checkpoints
            ckpt.restore_rng_state(state["rng"])
        self.start_step = self.step_count
        self.objective = Objective(config.loss, registry).to(acc.device)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.samples_per_step = stage.batch_size * stage.grad_accumulation * acc.num_processes
        self.interrupted = False
        self._batches = self._batch_stream(self.step_count * stage.grad_accumulation)

    def _check_layout(self, checkpoint: ckpt.Checkpoint) -> None:
        """A resume continues the optimizer state as it was written: sharded by an FSDP run, whole by a
        DDP one; the other kind is refused by name (its weights can still start a stage: ``init_from``)."""
        written = "fsdp" if checkpoint.meta.get("sharded") else "ddp"
        if written != self.config.run.parallel:
            raise TrainingError(
                f"Checkpoint {checkpoint.path} was written with run.parallel={written}; this run has "
                f"run.parallel={self.config.run.parallel}. Resume it with run.parallel={written}, or start "
                f"a stage from its weights with schedule.{self.stage.name}.init_from={checkpoint.path}."
            )

    @contextmanager
    def _micro_batch(self, last: bool) -> Iterator[None]:
        """The context of one micro-batch's forward and backward: gradients reduced across processes only
        on the last, under accelerate's autocast."""
        no_sync = fsdp.no_sync if self.sharded else self.accelerator.no_sync
        sync = nullcontext() if last else no_sync(self.model)
        quiet = fsdp.quiet_view_warnings() if self.sharded else nullcontext()
        with sync, quiet, self.accelerator.autocast():
            yield

    @property
    def unwrapped(self) -> nn.Module:
        """The model without accelerate's wrappers (DDP, ...)."""
        return self.accelerator.unwrap_model(self.model)

    @property
    def done(self) -> bool:
        return self.step_count >= self.stage.steps

    def _batch_stream(self, consumed: int) -> Iterator[Batch]:
        """Micro-batches forever, epoch after epoch, starting after the first ``consumed`` ones."""
        per_epoch = len(self.loader)
        if per_epoch == 0:
            raise TrainingError(f"stage '{self.stage.name}': its dataset yields no batch (is it empty?)")
        epoch, skip = divmod(consumed, per_epoch)
        while True:
            self.loader.set_epoch(epoch)
            self.dataset.set_epoch(epoch)
            source = self.accelerator.skip_first_batches(self.loader, skip) if skip else self.loader
            yield from source
            epoch, skip = epoch + 1, 0

    # ------------------------------------------------------------------------------------------------
    def step(self) -> StepResult:
        """One optimizer step over ``grad_accumulation`` micro-batches; a non-finite loss or gradient on any
        process skips it (the schedule still advances, so lr stays a function of the step)."""
        acc, stage, model = self.accelerator, self.stage, self.model
        totals: list[Tensor] = []
        output, batch, losses, skipped = None, None, None, 0
        for micro in range(stage.grad_accumulation):
            batch = next(self._batches)
            skipped += len(batch.skipped)
            with self._micro_batch(micro == stage.grad_accumulation - 1):
                output = model(batch)
                losses = self.objective(output, batch, self.step_count)
                acc.backward(losses.total / stage.grad_accumulation)
            totals.append(losses.total.detach().float())
        assert output is not None and batch is not None and losses is not None
        clip = stage.clip_grad_norm if stage.clip_grad_norm is not None else float("inf")
        norm = fsdp.local_value(acc.clip_grad_norm_(self.trainable, clip))
        grad_norm = torch.as_tensor(norm, device=acc.device).float()
        finite = bool(torch.isfinite(torch.stack(totals)).all())
        if acc.mixed_precision != "fp16":  # with fp16 the grad scaler skips overflowing steps itself
            finite = finite and bool(torch.isfinite(grad_norm))
        requested = bool(self.stop is not None and self.stop.requested)
        flags = torch.tensor([float(not finite), float(requested), float(skipped)], device=acc.device)
        gathered = acc.gather(flags).reshape(-1, 3)
        bad, stopping = (gathered[:, :2].amax(dim=0) > 0).tolist()
        skipped = int(gathered[:, 2].sum())
        self.skipped_total += skipped
        if bad:
            self.optimizer.zero_grad(set_to_none=True)
            self.bad_in_row, self.bad_total = self.bad_in_row + 1, self.bad_total + 1
            log.warning(
                "stage %s step %d: non-finite loss or gradient, step skipped", stage.name, self.step_count
            )
            if self.bad_in_row >= self.config.run.max_bad_steps:
                raise TrainingError(
                    f"Stage '{stage.name}': {self.bad_in_row} steps in a row had a non-finite loss or "
                    f"gradient (last at step {self.step_count}); stopping "
                    f"(run.max_bad_steps={self.config.run.max_bad_steps}). Check the data, lower the lr or "
                    "raise clip_grad_norm."
                )
        else:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.bad_in_row = 0
        with warnings.catch_warnings():  # a skipped first step makes torch warn about the call order
            warnings.filterwarnings(
                "ignore", message="Detected call of `lr_scheduler.step", category=UserWarning
            )
            self.scheduler.step()
        self.step_count += 1
        return StepResult(
            step=self.step_count,
            losses=losses,
            total=float(totals[-1]),
            grad_norm=grad_norm,
            applied=not bad,
            stopping=bool(stopping),
            skipped_samples=skipped,
            output=output,
            batch=batch,
        )

    def run(self) -> None:
        """Step until the stage's ``steps`` (or a stop request), calling every callback in order."""
        for callback in self.callbacks:
            callback.on_stage_start(self)
        self.model.train()
        while not self.done:
            result = self.step()
            for callback in self.callbacks:
                callback.on_step_end(self, result)
            if result.stopping:
                self.interrupted = True
                break
        for callback in self.callbacks:
            callback.on_stage_end(self)
