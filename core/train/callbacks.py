"""What happens around a training step, as callbacks of :class:`lca.train.stage.StageLoop`: a progress bar,
logged scalars, preview grids, checkpoints, the EMA of the weights, losses kept in memory. `lca train`
composes the first five; a notebook takes :class:`LossHistory` and its own evaluations. Each runs on
every process unless it says otherwise; the ones that write files write on the main process only.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from lca.train import checkpoint as ckpt
from lca.train import fsdp
from lca.train.optim import build_ema
from lca.train.preview import preview_grid, save_preview
from lca.train.stage import StageLoop, StepResult


class TrainingCallback:
    """Base of the callbacks: every hook is a no-op, a subclass overrides what it needs."""

    def on_stage_start(self, loop: StageLoop) -> None:
        """After set-up (weights loaded, optimizer and data ready), before the first step."""

    def on_step_end(self, loop: StageLoop, result: StepResult) -> None:
        """After each optimizer step (applied or skipped), in the order the callbacks were given."""

    def on_stage_end(self, loop: StageLoop) -> None:
        """After the last step, or after the step that saw a stop request (``loop.interrupted``)."""


class Ema(TrainingCallback):
    """An exponential moving average of the weights, updated after every applied step; a resumed stage
    continues the average it saved."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.model: nn.Module | None = None

    def on_stage_start(self, loop: StageLoop) -> None:
        self.model = build_ema(loop.unwrapped, self.decay)
        if loop.resume_from is not None:
            ckpt.load_ema(loop.resume_from, self.model)

    def on_step_end(self, loop: StageLoop, result: StepResult) -> None:
        if result.applied:
            assert self.model is not None
            self.model.update_parameters(loop.unwrapped)


class ProgressBar(TrainingCallback):
    """A tqdm bar per stage with the loss, samples per second, steps skipped for a non-finite loss and
    unreadable samples skipped (main process only)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar, self.began = enabled, None, 0.0

    def on_stage_start(self, loop: StageLoop) -> None:
        self.began = time.perf_counter()
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=loop.stage.steps,
                initial=loop.step_count,
                desc=loop.stage.name,
                dynamic_ncols=True,
                file=sys.stderr,
            )

    def on_step_end(self, loop: StageLoop, result: StepResult) -> None:
        if self.bar is None:
            return
        elapsed = time.perf_counter() - self.began
        rate = (result.step - loop.start_step) * loop.samples_per_step / max(elapsed, 1e-9)
        self.bar.update(1)
        self.bar.set_postfix(
            loss=f"{result.total:.4f}",
            samples_s=f"{rate:.1f}",
            bad_steps=loop.bad_total,
            skipped_samples=loop.skipped_total,
        )

    def on_stage_end(self, loop: StageLoop) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class ScalarLogger(TrainingCallback):
    """Losses, lr per parameter group, gradient norm, skipped steps and samples to accelerate's trackers every
    ``every`` steps and at the stage's last step, tagged ``<stage>/...``."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_step_end(self, loop: StageLoop, result: StepResult) -> None:
        if result.step % self.every and result.step != loop.stage.steps:
            return
        name = loop.stage.name
        values: dict[str, Any] = {f"{name}/loss/{k}": v for k, v in result.scalars().items()}
        values |= {f"{name}/lr/{g['name']}": g["lr"] for g in loop.optimizer.param_groups}
        values[f"{name}/grad_norm"] = float(result.grad_norm)
        values[f"{name}/skipped_steps"] = loop.bad_total
        values[f"{name}/skipped_samples"] = loop.skipped_total
        loop.accelerator.log(values, step=result.step)


class PreviewWriter(TrainingCallback):
    """The preview grid of the step's first sample every ``every`` steps and at the stage's last step, as
    ``<folder>/<stage>/step-XXXXXXX.png`` and a TensorBoard image (main process only)."""

    def __init__(self, folder: Path, every: int) -> None:
        self.folder, self.every = folder, every

    def on_step_end(self, loop: StageLoop, result: StepResult) -> None:
        if not loop.accelerator.is_main_process:
            return
        if result.step % self.every and result.step != loop.stage.steps:
            return
        grid = preview_grid(result.output, result.batch)
        save_preview(grid, self.folder / loop.stage.name / f"{ckpt.step_name(result.step)}.png")
        tracker = loop.accelerator.get_tracker("tensorboard", unwrap=True)
        if hasattr(tracker, "add_image"):
            tracker.add_image(f"{loop.stage.name}/preview", grid, result.step)


class Checkpointer(TrainingCallback):
    """Atomic checkpoints of the stage: every ``every`` steps and at a stop request (weights, optimizer,
    schedule, RNG and step: resumable), and ``final`` (weights only) when the stage completes. Keeps the
    last ``keep_last`` step checkpoints; ``meta`` goes into each checkpoint's metadata."""

    def __init__(
        self,
        folder: Path,
        *,
        every: int,
        keep_last: int,
        config_yaml: str,
        meta: Mapping[str, Any],
        ema: Ema | None,
    ) -> None:
        self.folder, self.every, self.keep_last = folder, every, keep_last
        self.config_yaml, self.meta, self.ema = config_yaml, dict(meta), ema
        self.last: Path | None = None

    def on_step_end(self, loop: StageLoop, result: StepResult) -> None:
        if result.stopping or (result.step % self.every == 0 and result.step < loop.stage.steps):
            self.save(loop, ckpt.step_name(result.step), final=False)

    def on_stage_end(self, loop: StageLoop) -> None:
        if not loop.interrupted:
            self.save(loop, ckpt.FINAL, final=True)

    def save(self, loop: StageLoop, name: str, *, final: bool) -> Path:
        stage_dir = self.folder / loop.stage.name
        acc = loop.accelerator
        weights: nn.Module | dict[str, Any] = loop.unwrapped
        temporary = None
        if loop.sharded:  # every process writes its shard, then the full weights are gathered to main
            temporary = stage_dir / f".tmp-{name}-sharded"
            if acc.is_main_process:
                if temporary.exists():
                    shutil.rmtree(temporary)
                temporary.mkdir(parents=True)
            acc.wait_for_everyone()
            if not final:
                fsdp.save_sharded(temporary / fsdp.SHARDED_DIR, loop.model, loop.base_optimizer)
            weights = fsdp.full_state_dict(loop.model)
        if acc.is_main_process:
            state = None
            if not final:
                state = {
                    "step": loop.step_count,
                    "scheduler": loop.scheduler.state_dict(),
                    "rng": ckpt.capture_rng_state(),
                    "bad_steps": loop.bad_total,
                    "skipped_samples": loop.skipped_total,
                }
                if not loop.sharded:
                    state["optimizer"] = loop.optimizer.state_dict()
            meta = {
                "stage": loop.stage.name,
                "stage_index": loop.index,
                "step": loop.step_count,
                "final": final,
                "pipeline": loop.config.name,
                "signature": ckpt.model_signature(loop.config),
                "sharded": loop.sharded and not final,
                "processes": acc.num_processes,
            } | self.meta
            ckpt.save_checkpoint(
                stage_dir,
                name,
                model=weights,
                state=state,
                ema=self.ema.model if self.ema is not None else None,
                config_yaml=self.config_yaml,
                meta=meta,
                temporary=temporary,
            )
            ckpt.prune(stage_dir, self.keep_last)
        acc.wait_for_everyone()
        self.last = stage_dir / name
        return self.last


class LossHistory(TrainingCallback):
    """Every step's total loss in memory (the notebooks' curves)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_step_end(self, loop: StageLoop, result: StepResult) -> None:
        self.losses.append(result.total)


class Evaluations(TrainingCallback):
    """``evaluate(model)`` before the first step, every ``every`` steps and after the last, with the model
    in eval mode; ``results`` holds ``(step, numbers)``. Time spent here is kept in ``seconds`` so a caller
    can leave it out of the training time."""

    def __init__(self, evaluate: Callable[[nn.Module], dict[str, float]], every: int | None) -> None:
        self.evaluate, self.every = evaluate, every
        self.results: list[tuple[int, dict[str, float]]] = []
        self.seconds = 0.0

    def _record(self, loop: StageLoop, step: int) -> None:
        began = time.perf_counter()
        model = loop.unwrapped
        model.eval()
        self.results.append((step, self.evaluate(model)))
        model.train()
        self.seconds += time.perf_counter() - began

    def on_stage_start(self, loop: StageLoop) -> None:
        if self.every:
            self._record(loop, loop.step_count)

    def on_step_end(self, loop: StageLoop, result: StepResult) -> None:
        if result.step == loop.stage.steps or (self.every and result.step % self.every == 0):
            self._record(loop, result.step)
