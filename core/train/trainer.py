"""The trainer: a pipeline config's schedule run on ``accelerate`` (one process, or several launched by
``accelerate launch``/``torchrun``: DDP, or FSDP with ``run.parallel=fsdp``, :mod:`lca.train.fsdp`). See
docs/training.md for the behaviours in prose.

It talks to the model only through :mod:`lca.contracts.model` and never branches on a component's type.
What it adds to the shared stage loop (:class:`lca.train.stage.StageLoop`) is the run: one run folder
agreed by every process, ``init_from`` resolved to an earlier stage's ``final`` checkpoint, ``--resume``
(finished stages skipped, an unfinished one continued from its newest valid checkpoint), signals, the
callbacks that write progress, scalars, previews and checkpoints, and ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from lca.config import PipelineConfig, StageConfig
from lca.contracts.model import ModelFactory
from lca.data.json_file import write_json_atomically
from lca.errors import TrainingError, TrainingInterrupted
from lca.registry import Registry, default_registry
from lca.threads import torch_threads
from lca.train import checkpoint as ckpt
from lca.train import fsdp
from lca.train.callbacks import Checkpointer, Ema, PreviewWriter, ProgressBar, ScalarLogger, TrainingCallback
from lca.train.run_meta import run_meta
from lca.train.seen import record_stage
from lca.train.signals import StopRequest
from lca.train.stage import StageLoop, StepResult, build_dataset

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    """One stage's numbers, as written to ``metrics.json``."""

    stage: str
    start_step: int = 0
    steps: int = 0
    skipped_steps: int = 0
    """Optimizer steps skipped for a non-finite loss or gradient."""
    skipped_samples: int = 0
    """Unreadable dataset indices skipped (``on_error: skip``), all processes together."""
    seconds: float = 0.0
    samples_per_second: float = 0.0
    last_losses: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    status: str = "running"
    """running, done, done earlier (a finished stage a resume skipped), interrupted or failed."""
    error: str | None = None
    """Why the stage failed (``status == "failed"``)."""


class _Record(TrainingCallback):
    """Keeps a stage's :class:`StageResult` current, so ``metrics.json`` is right even after a crash."""

    def __init__(self, result: StageResult) -> None:
        self.result = result

    def on_stage_start(self, loop: StageLoop) -> None:
        self.result.start_step = loop.start_step

    def on_step_end(self, loop: StageLoop, result: StepResult) -> None:
        self.result.skipped_steps = loop.bad_total
        self.result.skipped_samples = loop.skipped_total
        self.result.last_losses = result.scalars()


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


def _check_launch(distributed_type: Any) -> None:
    """Refuse launches whose sharding accelerate would do itself (its FSDP or DeepSpeed plugins): the
    toolkit's checkpoints, resume and gradient clipping are built and tested for DDP and for its own FSDP
    (``run.parallel=fsdp``), not for those wrappers."""
    name = getattr(distributed_type, "value", str(distributed_type))
    if name in ("FSDP", "DEEPSPEED"):
        raise TrainingError(
            f"This launch asks accelerate for {name} (its config or --use_fsdp/--use_deepspeed), which the "
            "toolkit does not use: launch plain multi-GPU processes (e.g. --config_file "
            "examples/accelerate/one-node-8gpu.yaml) and set run.parallel=fsdp to shard the model "
            "(docs/training.md, 'Several processes')."
        )


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
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainingError(f"--run-dir {run_dir} is a file, not a folder: choose a folder for the run.")
    if resume and not (run_dir / "checkpoints").is_dir():
        raise TrainingError(
            f"--resume: {run_dir} holds no checkpoints (is the path right?); drop --resume to start a fresh "
            "run there."
        )
    if not resume and (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise TrainingError(
            f"{run_dir} already holds checkpoints: pass --resume to continue it, or choose another run dir."
        )
    return run_dir


def read_stage_records(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The per-stage records of an earlier ``metrics.json`` in ``run_dir`` (empty when there is none). A
    resume carries them forward, so skipping a finished stage never erases what it recorded; an unreadable
    file is named in a warning and treated as absent (the checkpoints, not this record, are what resume)."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return {}
    try:
        stages = json.loads(path.read_text(encoding="utf-8")).get("stages")
        if not isinstance(stages, dict) or not all(isinstance(v, dict) for v in stages.values()):
            raise ValueError("its 'stages' is not a mapping of stage records")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as error:
        warnings.warn(
            f"{path}: unreadable earlier run record ({error}); the stages it recorded are written afresh.",
            stacklevel=2,
        )
        return {}
    return stages


def _earlier_result(stage: str, record: dict[str, Any] | None, final: ckpt.Checkpoint) -> StageResult:
    """A finished stage's result as an earlier run recorded it, marked "done earlier"; without a record of
    that final checkpoint (none, or its step count differs), what the checkpoint says: its step count."""
    names = set(StageResult.__dataclass_fields__) - {"stage"}
    record = record or {}
    if record.get("steps") == final.step:
        result = StageResult(stage, **{k: v for k, v in record.items() if k in names})
    else:
        result = StageResult(stage, steps=final.step)
    result.status, result.checkpoint, result.error = "done earlier", str(final.path), None
    return result


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
        _check_launch(self.accelerator.distributed_type)
        if config.run.parallel == "fsdp" and self.accelerator.num_processes < 2:  # before any data opens
            raise TrainingError(fsdp.ONE_PROCESS)
        self.meta = run_meta(registry)
        self.config_yaml = config.to_yaml(meta=self.meta)
        self.results: list[StageResult] = []
        self.earlier = read_stage_records(self.run_dir) if resume and self.accelerator.is_main_process else {}
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
        for stage in stages:  # every stage's data opens before the first trains: a wrong store costs no step
            build_dataset(self.config, stage, self.registry)
        for stage in stages:
            index = self.config.schedule.index(stage)
            resume_from = None
            if self.resume:
                final = ckpt.find_latest(self.stage_dir(stage.name) / ckpt.FINAL, stage=stage.name)
                if final is not None:
                    ckpt.check_compatible(final, self.config)
                    self.results.append(_earlier_result(stage.name, self.earlier.get(stage.name), final))
                    continue
                resume_from = ckpt.find_latest(self.stage_dir(stage.name), stage=stage.name)
                if resume_from is not None:
                    ckpt.check_compatible(resume_from, self.config)
            result = StageResult(stage.name)
            self.results.append(result)
            try:
                self.run_stage(stage, index, resume_from, stop, result)
            except Exception as error:
                if result.status == "running":  # not interrupted: it failed, and the record says why
                    result.status, result.error = "failed", f"{type(error).__name__}: {error}"
                raise

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
        run = self.config.run
        ema = Ema(run.ema_decay) if run.ema_decay is not None else None
        checkpointer = Checkpointer(
            self.run_dir / "checkpoints",
            every=run.checkpoint_every,
            keep_last=run.keep_last,
            config_yaml=self.config_yaml,
            meta={"versions": self.meta},
            ema=ema,
        )
        callbacks = [
            *([ema] if ema is not None else []),
            ProgressBar(enabled=self.main),
            ScalarLogger(run.log_every),
            PreviewWriter(self.run_dir / "previews", run.preview_every),
            checkpointer,
        ]
        loop = StageLoop(
            self.config,
            stage,
            index=index,
            accelerator=self.accelerator,
            model_factory=self.factory,
            registry=self.registry,
            initial=None if resume_from is not None else self._initial_weights(stage),
            resume_from=resume_from,
            callbacks=[*callbacks, _Record(result)],
            stop=stop,
        )
        if self.main:  # whom this stage trains on, before it does (evaluation refuses these people)
            record_stage(self.run_dir, stage.name, stage.data, loop.dataset.provenance())
        began = time.perf_counter()
        failure: TrainingError | None = None
        try:
            loop.run()
        except TrainingError as error:
            failure = error
        finally:  # the record is right however the stage ends
            result.steps = loop.step_count
            result.seconds = time.perf_counter() - began
            result.samples_per_second = (
                (loop.step_count - result.start_step) * loop.samples_per_step / max(result.seconds, 1e-9)
            )
            last = checkpointer.last or (resume_from.path if resume_from is not None else None)
            result.checkpoint = str(last) if last is not None else None
        if failure is not None:
            hint = (
                f"The stage's last checkpoint is {result.checkpoint}: after the fix, continue with --resume "
                f"(run dir {self.run_dir})."
                if result.checkpoint is not None
                else f"No checkpoint of stage '{stage.name}' was written."
            )
            raise TrainingError(f"{failure} {hint}") from failure
        if loop.interrupted:
            result.status = "interrupted"
            raise TrainingInterrupted(
                f"Training stopped by {stop.name or 'a signal'} at stage '{stage.name}', step "
                f"{loop.step_count}; checkpoint written to {checkpointer.last}. Continue with --resume "
                f"(run dir {self.run_dir}).",
                stop.signum or 15,
            )
        result.status = "done"
        self.accelerator.free_memory(loop.model, loop.optimizer, loop.loader)

    def write_metrics(self) -> Path:
        path = self.run_dir / "metrics.json"
        if self.main:
            data = {
                "pipeline": self.config.name,
                "run_dir": str(self.run_dir),
                "processes": self.accelerator.num_processes,
                "mixed_precision": self.mixed_precision,
                # stages this invocation did not run (``--stage``) keep their earlier record
                "stages": self.earlier | {r.stage: asdict(r) for r in self.results},
            }
            write_json_atomically(path, data)
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
