"""The trainer: a pipeline config's schedule run on ``accelerate`` (one CPU, ``accelerate launch``, DDP,
FSDP or DeepSpeed through accelerate's own config). See docs/training.md for the behaviours in prose.

It talks to the model only through :mod:`lca.contracts.model` and never branches on a component's type.
Per stage: seed, build the model with the factory, load ``init_from`` (or the checkpoint being resumed),
freeze prefixes, build the stage's dataset through the registry, then run optimizer steps with gradient
accumulation, clipping, non-finite step skipping, periodic checkpoints, logs and previews, and write the
stage's ``final`` checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from lca.config import PipelineConfig, StageConfig
from lca.contracts.model import ModelFactory
from lca.errors import LcaError
from lca.losses import Objective
from lca.registry import Registry, default_registry
from lca.threads import torch_threads
from lca.train import checkpoint as ckpt
from lca.train.optim import build_ema, build_optimizer, build_scheduler
from lca.train.preview import preview_grid, save_preview
from lca.train.run_meta import run_meta
from lca.train.signals import StopRequest

log = logging.getLogger(__name__)


class TrainingError(LcaError):
    """Training cannot go on (too many non-finite steps in a row, nothing to resume, ...)."""


class TrainingInterrupted(LcaError):
    """SIGINT/SIGTERM stopped training after a checkpoint was written; ``--resume`` continues it."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


@dataclass
class StageResult:
    """One stage's numbers, as written to ``metrics.json``."""

    stage: str
    start_step: int = 0
    steps: int = 0
    skipped_steps: int = 0
    seconds: float = 0.0
    samples_per_second: float = 0.0
    last_losses: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    status: str = "running"


class EpochSampler(Sampler[int]):
    """A permutation of the dataset per epoch, a function of ``(seed, epoch)`` only: every process draws the
    same order (accelerate then shards it) and a resumed run redraws exactly the order it left."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.size).tolist())


# --------------------------------------------------------------------------------------------- set-up
def resolve_mixed_precision(requested: str) -> str:
    """The mixed precision mode this machine supports: bf16 needs a GPU with bf16 (or the CPU), fp16 a GPU.
    Anything unsupported falls back to ``no`` with a warning."""
    cuda = torch.cuda.is_available()
    fallback = None
    if requested == "fp16" and not cuda:
        fallback = "fp16 needs a GPU"
    elif requested == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        fallback = "this GPU has no bf16"
    if fallback:
        warnings.warn(
            f"run.mixed_precision={requested}: {fallback}; training in full precision.", stacklevel=2
        )
        return "no"
    return requested


def build_dataset(config: PipelineConfig, stage: StageConfig, registry: Registry) -> Any:
    """The stage's dataset: its ``data`` slot with the stage's view counts, train split, run seed."""
    slot = config.data[stage.data]
    updates = {
        "split": "train",
        "num_references": stage.num_references,
        "num_targets": stage.num_targets,
        "seed": config.run.seed,
    }
    known = type(slot.config).model_fields
    params = {**slot.config.model_dump(), **{k: v for k, v in updates.items() if k in known}}
    return registry.build("dataset", slot.type, params)


def freeze(model: nn.Module, prefixes: list[str]) -> None:
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


def choose_run_dir(config: PipelineConfig, run_dir: Path | None, resume: bool) -> Path:
    """``run_dir`` if given; else ``<run.output_dir>/<pipeline>/<timestamp>`` (new) or the newest one there
    that holds checkpoints (``resume``). A fresh run never reuses a folder with checkpoints."""
    if run_dir is None:
        base = Path(config.run.output_dir) / config.name
        if resume:
            runs = sorted(p for p in base.glob("*") if (p / "checkpoints").is_dir()) if base.is_dir() else []
            if not runs:
                raise TrainingError(
                    f"--resume: no earlier run of '{config.name}' with checkpoints under {base}."
                )
            return runs[-1]
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir, n = base / stamp, 1
        while run_dir.exists():
            n += 1
            run_dir = base / f"{stamp}-{n}"
        return run_dir
    if not resume and (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise TrainingError(
            f"{run_dir} already holds checkpoints: pass --resume to continue it, or choose another run dir."
        )
    return run_dir


def _write_json(path: Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(temporary, path)


# --------------------------------------------------------------------------------------------- the run
class Trainer:
    """One run: one ``Accelerator``, the stages of a schedule, one run directory."""

    def __init__(
        self,
        config: PipelineConfig,
        *,
        registry: Registry,
        model_factory: ModelFactory,
        run_dir: Path | None,
        resume: bool,
    ) -> None:
        from accelerate import Accelerator, PartialState
        from accelerate.utils import broadcast_object_list

        self.config, self.registry, self.factory, self.resume = config, registry, model_factory, resume
        self.mixed_precision = resolve_mixed_precision(config.run.mixed_precision)
        # cpu=True without CUDA: under torchrun this gives real gloo DDP instead of N silent single runs.
        cpu = not torch.cuda.is_available()
        # The processes agree on the run dir (main chooses) before the Accelerator, whose trackers need it.
        state = PartialState(cpu=cpu)
        chosen = [str(choose_run_dir(config, run_dir, resume)) if state.is_main_process else ""]
        if state.num_processes > 1:
            broadcast_object_list(chosen)
        self.run_dir = Path(chosen[0])
        self.accelerator = Accelerator(
            mixed_precision=self.mixed_precision,
            log_with="tensorboard",
            project_dir=str(self.run_dir),
            cpu=cpu,
        )
        self.meta = run_meta(registry)
        self.config_yaml = config.to_yaml(meta=self.meta)
        self.results: list[StageResult] = []
        if self.accelerator.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(self.config_yaml, encoding="utf-8")
        self.accelerator.wait_for_everyone()
        self.accelerator.init_trackers("tensorboard")

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / "checkpoints" / stage

    # ------------------------------------------------------------------------------------------------
    def run(self, stages: list[StageConfig], stop: StopRequest) -> None:
        for stage in stages:
            index = self.config.schedule.index(stage)
            result = StageResult(stage.name)
            self.results.append(result)
            resume_from = None
            if self.resume:
                final = ckpt.find_latest(self.stage_dir(stage.name) / ckpt.FINAL, stage=stage.name)
                if final is not None:
                    ckpt.check_compatible(final, self.config)
                    result.status, result.checkpoint = "done earlier", str(final.path)
                    continue
                resume_from = ckpt.find_latest(self.stage_dir(stage.name), stage=stage.name)
                if resume_from is not None:
                    ckpt.check_compatible(resume_from, self.config)
            self.run_stage(stage, index, resume_from, stop, result)

    def _initial_weights(self, stage: StageConfig) -> ckpt.Checkpoint | None:
        if stage.init_from is None:
            return None
        earlier = [s.name for s in self.config.schedule]
        if stage.init_from in earlier:
            found = ckpt.find_latest(self.stage_dir(stage.init_from) / ckpt.FINAL, stage=stage.init_from)
            if found is None:
                raise TrainingError(
                    f"Stage '{stage.name}' starts from the final weights of stage '{stage.init_from}', but "
                    f"{self.run_dir} has none. Train '{stage.init_from}' first in this run dir (or --resume "
                    f"the run that has it), or set schedule.{stage.name}.init_from=PATH to a checkpoint."
                )
            return found
        return ckpt.resolve(stage.init_from)

    def run_stage(
        self,
        stage: StageConfig,
        index: int,
        resume_from: ckpt.Checkpoint | None,
        stop: StopRequest,
        result: StageResult,
    ) -> None:
        from accelerate.utils import set_seed

        acc, run = self.accelerator, self.config.run
        set_seed(run.seed + index)
        model = self.factory(self.config, self.registry)
        start = resume_from or self._initial_weights(stage)
        if start is not None:
            ckpt.check_compatible(start, self.config)
            ckpt.load_weights(start, model)
        freeze(model, stage.freeze)
        model.to(acc.device)
        optimizer = build_optimizer(model, stage.lr, stage.weight_decay, stage.layer_decay)
        scheduler = build_scheduler(optimizer, stage.warmup_steps, stage.steps)
        ema = build_ema(model, run.ema_decay) if run.ema_decay is not None else None
        dataset = build_dataset(self.config, stage, self.registry)
        from lca.contracts.sample import collate

        sampler = EpochSampler(len(dataset), run.seed)
        loader = DataLoader(
            dataset,
            batch_size=stage.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=run.num_workers,
            generator=torch.Generator().manual_seed(run.seed),  # keeps the global torch RNG untouched
        )
        model, optimizer, loader = acc.prepare(model, optimizer, loader)
        step, bad_total = 0, 0
        if resume_from is not None:
            state = ckpt.load_state(resume_from)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            step, bad_total = int(state["step"]), int(state["bad_steps"])
            if ema is not None:
                ckpt.load_weights(resume_from, ema, ema=True)
            ckpt.restore_rng_state(state["rng"])
        objective = Objective(self.config.loss).to(acc.device)
        result.start_step = step

        def save(name: str, *, final: bool) -> Path:
            path = self.stage_dir(stage.name) / name
            if self.main:
                state = (
                    None
                    if final
                    else {
                        "step": step,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": ckpt.capture_rng_state(),
                        "bad_steps": bad_total,
                    }
                )
                meta = {
                    "stage": stage.name,
                    "stage_index": index,
                    "step": step,
                    "final": final,
                    "pipeline": self.config.name,
                    "signature": ckpt.model_signature(self.config),
                    "versions": self.meta,
                }
                ckpt.save_checkpoint(
                    path.parent,
                    name,
                    model=acc.unwrap_model(model),
                    state=state,
                    ema=ema,
                    config_yaml=self.config_yaml,
                    meta=meta,
                )
                ckpt.prune(path.parent, run.keep_last)
            acc.wait_for_everyone()
            return path

        trainable = [p for p in model.parameters() if p.requires_grad]
        batches = self._batches(loader, dataset, step * stage.grad_accumulation)
        samples_per_step = stage.batch_size * stage.grad_accumulation * acc.num_processes
        bad_in_row = 0
        began = time.perf_counter()
        progress = self._progress(stage, step)
        model.train()
        while step < stage.steps:
            totals, output, batch, losses = [], None, None, None
            for micro in range(stage.grad_accumulation):
                batch = next(batches)
                sync = nullcontext() if micro == stage.grad_accumulation - 1 else acc.no_sync(model)
                with sync, acc.autocast():
                    output = model(batch)
                    losses = objective(output, batch, step)
                    acc.backward(losses.total / stage.grad_accumulation)
                totals.append(losses.total.detach().float())
            clip = stage.clip_grad_norm if stage.clip_grad_norm is not None else float("inf")
            grad_norm = acc.clip_grad_norm_(trainable, clip)
            grad_norm = torch.as_tensor(grad_norm, device=acc.device).float()
            finite = bool(torch.isfinite(torch.stack(totals)).all())
            if self.mixed_precision != "fp16":  # with fp16 the grad scaler skips overflowing steps itself
                finite = finite and bool(torch.isfinite(grad_norm))
            flags = torch.tensor([float(not finite), float(stop.requested)], device=acc.device)
            bad, stopping = (acc.gather(flags).reshape(-1, 2).amax(dim=0) > 0).tolist()
            if bad:
                optimizer.zero_grad(set_to_none=True)
                bad_in_row, bad_total = bad_in_row + 1, bad_total + 1
                log.warning("stage %s step %d: non-finite loss or gradient, step skipped", stage.name, step)
                if bad_in_row >= run.max_bad_steps:
                    raise TrainingError(
                        f"Stage '{stage.name}': {bad_in_row} steps in a row had a non-finite loss or "
                        f"gradient (last at step {step}); stopping (run.max_bad_steps={run.max_bad_steps}). "
                        f"Check the data, lower the lr or raise clip_grad_norm; the last good checkpoint is "
                        f"under {self.stage_dir(stage.name)}."
                    )
            else:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if ema is not None:
                    ema.update_parameters(acc.unwrap_model(model))
                bad_in_row = 0
            with warnings.catch_warnings():  # a skipped first step makes torch warn about the call order
                warnings.filterwarnings(
                    "ignore", message="Detected call of `lr_scheduler.step", category=UserWarning
                )
                scheduler.step()  # skipped steps advance the schedule too: lr stays a function of the step
            step += 1
            result.skipped_steps = bad_total
            result.last_losses = {k: float(v.detach()) for k, v in losses.values.items()} | {
                "total": float(totals[-1])
            }
            elapsed = time.perf_counter() - began
            rate = (step - result.start_step) * samples_per_step / max(elapsed, 1e-9)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(
                    loss=f"{result.last_losses['total']:.4f}", samples_s=f"{rate:.1f}", skipped=bad_total
                )
            if step % run.log_every == 0 or step == stage.steps:
                self._log(stage, step, result.last_losses, optimizer, grad_norm, bad_total)
            if self.main and (step % run.preview_every == 0 or step == stage.steps):
                self._preview(stage, step, output, batch)
            if stopping:
                path = save(ckpt.step_name(step), final=False)
                result.status, result.checkpoint = "interrupted", str(path)
                self._finish_stage(result, began, step, progress)
                raise TrainingInterrupted(
                    f"Training stopped by {stop.name or 'a signal'} at stage '{stage.name}', step {step}; "
                    f"checkpoint written to {path}. Continue with --resume (run dir {self.run_dir}).",
                    stop.signum or 15,
                )
            if step % run.checkpoint_every == 0 and step < stage.steps:
                save(ckpt.step_name(step), final=False)
        path = save(ckpt.FINAL, final=True)
        result.status, result.checkpoint = "done", str(path)
        self._finish_stage(result, began, step, progress)
        acc.free_memory(model, optimizer, loader)

    def _finish_stage(self, result: StageResult, began: float, step: int, progress: Any) -> None:
        if progress is not None:
            progress.close()
        result.steps = step
        result.seconds = time.perf_counter() - began
        result.samples_per_second = (
            (step - result.start_step) * self._samples_per_step(result.stage) / max(result.seconds, 1e-9)
        )

    def _samples_per_step(self, stage_name: str) -> int:
        stage = self.config.stage(stage_name)
        return stage.batch_size * stage.grad_accumulation * self.accelerator.num_processes

    def _batches(self, loader: Any, dataset: Any, consumed: int) -> Iterator[Any]:
        """Micro-batches forever, epoch after epoch, starting after the first ``consumed`` ones."""
        per_epoch = len(loader)
        if per_epoch == 0:
            raise TrainingError("the stage's dataset yields no batch (is it empty?)")
        epoch, skip = divmod(consumed, per_epoch)
        while True:
            loader.set_epoch(epoch)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            source = self.accelerator.skip_first_batches(loader, skip) if skip else loader
            yield from source
            epoch, skip = epoch + 1, 0

    def _progress(self, stage: StageConfig, step: int) -> Any:
        if not self.main:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=stage.steps, initial=step, desc=stage.name, dynamic_ncols=True, file=sys.stderr)

    def _log(
        self,
        stage: StageConfig,
        step: int,
        losses: dict[str, float],
        optimizer: Any,
        grad_norm: Any,
        skipped: int,
    ) -> None:
        values = {f"{stage.name}/loss/{k}": v for k, v in losses.items()}
        values |= {f"{stage.name}/lr/{g['name']}": g["lr"] for g in optimizer.param_groups}
        values[f"{stage.name}/grad_norm"] = float(grad_norm)
        values[f"{stage.name}/skipped_steps"] = skipped
        self.accelerator.log(values, step=step)

    def _preview(self, stage: StageConfig, step: int, output: Any, batch: Any) -> None:
        grid = preview_grid(output, batch)
        save_preview(grid, self.run_dir / "previews" / stage.name / f"{ckpt.step_name(step)}.png")
        tracker = self.accelerator.get_tracker("tensorboard", unwrap=True)
        if hasattr(tracker, "add_image"):
            tracker.add_image(f"{stage.name}/preview", grid, step)

    def write_metrics(self) -> Path:
        path = self.run_dir / "metrics.json"
        if self.main:
            data = {
                "pipeline": self.config.name,
                "run_dir": str(self.run_dir),
                "processes": self.accelerator.num_processes,
                "mixed_precision": self.mixed_precision,
                "stages": {r.stage: asdict(r) for r in self.results},
            }
            _write_json(path, data)
        return path


def train(
    config: PipelineConfig,
    *,
    stage: str | None = None,
    resume: bool = False,
    run_dir: Path | None = None,
    registry: Registry | None = None,
    model_factory: ModelFactory | None = None,
) -> Path:
    """Train ``config``'s schedule (all stages in order, or only ``stage``) and return the run directory.

    ``resume`` continues the run in ``run_dir`` (default: the newest run of this pipeline under
    ``run.output_dir``): finished stages are skipped, an unfinished one continues from its newest valid
    checkpoint. Raises :class:`TrainingInterrupted` (exit code 128 + signal) after SIGINT/SIGTERM, once a
    checkpoint is written, and :class:`TrainingError` when training cannot go on. Multi-process entry points
    should call :func:`end_process` afterwards."""
    registry = registry or default_registry()
    if model_factory is None:
        from lca.model.avatar import build_model as model_factory  # the assembled avatar
    if not config.schedule:
        raise TrainingError(f"Pipeline '{config.name}' has no training schedule (an empty 'schedule' list).")
    stages = [config.stage(stage)] if stage is not None else list(config.schedule)
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    if config.run.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
        torch.use_deterministic_algorithms(True)
    try:
        with torch_threads(config.run.cpu_threads):
            trainer = Trainer(
                config, registry=registry, model_factory=model_factory, run_dir=run_dir, resume=resume
            )
            try:
                with StopRequest() as stop:
                    trainer.run(stages, stop)
            finally:
                trainer.write_metrics()
                trainer.accelerator.wait_for_everyone()
                trainer.accelerator.end_training()
        if trainer.main:
            log.info("run finished: %s", trainer.run_dir)
        return trainer.run_dir
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)


def end_process(exit_code: int = 0) -> None:
    """End a process of a multi-process run without gloo's teardown crash. ``train`` already ended with
    ``wait_for_everyone(); end_training()`` (which destroys the process group); what remains is the
    interpreter's own finalisation, during which gloo's threads abort 8-33 % of 2-process CPU runs
    ("terminate called without an active exception"). Flushing and ``os._exit`` was the only recipe seen
    at 0/40 (docs/training.md). With one process (``WORLD_SIZE`` unset or 1) it returns, so entry points can
    return normally."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
