"""Benchmark: training steps per second and peak memory of a pipeline's stage on the CPU, 1 process vs 2
processes under ``accelerate launch`` (scaling ratio), with DDP and with FSDP (``run.parallel=fsdp``), and
the stage's data loader throughput against the samples per second training consumes, printed as one table.

    python bench/train.py [--pipeline lca-tiny] [--stage pretrain] [--warmup 5] [--steps 30] [--quick]
    python bench/train.py --device cuda        # adds the --gpu-pipeline row (not run on a GPU yet)

Each training is a fresh subprocess, ``python -m lca train PIPELINE --stage STAGE --run-dir DIR`` with the
stage's steps set to ``--warmup + --steps``, logging every step and no periodic checkpoint or preview; the 2-
process run is ``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 --num_machines 1
--mixed_precision no --dynamo_backend no -m lca train ...`` (gloo DDP; docs/training.md). The step rate is
measured between the TensorBoard wall times of the step logs after the ``--warmup`` steps, so start-up, data
generation and the first steps are excluded. Each process keeps the stage's batch size, so 2 processes train
2x the samples per step: the scaling ratio is samples/s(2 processes) / samples/s(1 process). Memory: the
peak RSS of the largest process and the peak of the summed RSS of the process tree (psutil, sampled every
0.2 s). Whole-run wall and CPU seconds (user + system of all processes, start-up included) show how much
of the shared machine each run got. Loader: ``bench.data.loader_throughput`` on the stage's training
dataset with the trainer's collate, 0 and 2 workers, over ``--loader-samples`` samples.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

from machine import LoadSampler, machine_line, run_measured, tail

from lca.config import resolve_pipeline
from lca.testing.launch import accelerate_cpu_launch


def step_times(run_dir: Path, stage: str) -> list[float]:
    """Wall times of the per-step loss logs (TensorBoard events of the main process), in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for path in sorted((run_dir / "tensorboard").rglob("events.out.tfevents.*")):
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        if f"{stage}/loss/total" in events.Tags()["scalars"]:
            return [e.wall_time for e in sorted(events.Scalars(f"{stage}/loss/total"), key=lambda e: e.step)]
    raise SystemExit(f"no '{stage}/loss/total' TensorBoard scalars under {run_dir}")


def train_once(
    args: argparse.Namespace, processes: int, out: Path, device: str, parallel: str = "ddp"
) -> dict | str:
    """One measured training run (``parallel``: ``run.parallel``); a dict of rates and memory, or why it
    failed."""
    steps = args.warmup + args.steps
    overrides = [
        f"schedule.{args.stage}.steps={steps}",
        "run.log_every=1",
        f"run.preview_every={steps + 1}",
        f"run.checkpoint_every={steps + 1}",
        f"run.parallel={parallel}",
        *args.set,
    ]
    run_dir = out / f"{device}-{processes}proc-{parallel}"
    lca = ["-m", "lca", "train", args.pipeline, *overrides, "--stage", args.stage, "--run-dir", str(run_dir)]
    env = dict(os.environ)
    if processes == 1:
        command = [sys.executable, *lca]
    else:
        command = [*accelerate_cpu_launch(2), *lca]
        env["ACCELERATE_USE_CPU"] = "1"
    with LoadSampler() as load:
        measured = run_measured(command, run_dir.with_suffix(".log"), env)
    if measured.returncode != 0:
        print(tail(run_dir.with_suffix(".log")), file=sys.stderr)
        return f"failed (exit {measured.returncode})"
    times = step_times(run_dir, args.stage)
    if len(times) != steps:
        return f"failed: {len(times)} step logs, expected {steps}"
    stage = resolve_pipeline(args.pipeline, args.set).stage(args.stage)
    steps_per_s = args.steps / (times[-1] - times[args.warmup - 1])
    return {
        "steps_per_s": steps_per_s,
        "samples_per_s": steps_per_s * stage.batch_size * stage.grad_accumulation * processes,
        "peak_process": measured.peak_process_rss,
        "peak_tree": measured.peak_tree_rss,
        "wall": measured.wall,
        "cpu": measured.cpu,
        "load": load.summary(),
    }


class Counted:
    """A collated :class:`lca.contracts.sample.Batch` with ``len()`` (its sample count), which
    ``loader_throughput`` counts by (``Batch`` itself has no length)."""

    def __init__(self, samples: list) -> None:
        from lca.contracts.sample import collate

        self.batch, self.count = collate(samples), len(samples)

    def __len__(self) -> int:
        return self.count


def loader_rates(args: argparse.Namespace) -> dict[int, float]:
    """Samples/s of the stage's training dataset through a DataLoader with 0 and 2 workers."""
    from torch.utils.data import Subset

    from lca.registry import default_registry
    from lca.train.stage import build_dataset

    spec = importlib.util.spec_from_file_location("bench_data", Path(__file__).with_name("data.py"))
    bench_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_data)
    config = resolve_pipeline(args.pipeline, args.set)
    stage = config.stage(args.stage)
    dataset = build_dataset(config, stage, default_registry())
    subset = Subset(dataset, range(min(args.loader_samples, len(dataset))))
    return {
        workers: bench_data.loader_throughput(
            subset, num_workers=workers, batch_size=stage.batch_size, collate_fn=Counted
        )
        for workers in (0, 2)
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipeline", default="lca-tiny", help="pipeline to train (default lca-tiny)")
    parser.add_argument("--stage", default="pretrain", help="stage of its schedule (default pretrain)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="`lca train` override (repeatable)"
    )
    parser.add_argument("--warmup", type=int, default=5, help="steps before the clock starts (default 5)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run (default 30)")
    parser.add_argument("--loader-samples", type=int, default=32, help="samples per loader pass (default 32)")
    parser.add_argument("--out", type=Path, help="run folders (default runs/bench/train-<time>)")
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="cuda: also time --gpu-pipeline (1 GPU)"
    )
    parser.add_argument("--gpu-pipeline", default="lca-reference", help="pipeline timed with --device cuda")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 warm-up + 3 timed steps")
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.steps, args.loader_samples = 2, 3, 8
    out = args.out or Path("runs/bench") / f"train-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"machine: {machine_line()}")
    rows: dict[str, dict | str] = {}
    for processes, parallel in ((1, "ddp"), (2, "ddp"), (2, "fsdp")):
        label = f"{args.pipeline} {args.stage}, CPU, {processes} process{'es' * (processes > 1)}"
        label += ", FSDP" if parallel == "fsdp" else ""
        rows[label] = train_once(args, processes, out, "cpu", parallel)
        print(f"  {label}: done", flush=True)
    gpu_label = f"{args.gpu_pipeline} {args.stage}, 1 GPU"
    if args.device == "cuda":
        gpu_args = argparse.Namespace(**{**vars(args), "pipeline": args.gpu_pipeline})
        rows[gpu_label] = train_once(gpu_args, 1, out, "cuda")
    else:
        rows[gpu_label] = "not measured: no GPU lent"
    with LoadSampler(interval=1.0) as load:
        loader = loader_rates(args)
    print(f"after: {machine_line()}")
    print(f"{args.steps} timed steps after {args.warmup} warm-up steps; memory = peak RSS")
    print(
        "| run | steps/s | samples/s | vs 1 process | peak RSS largest process | peak RSS all processes "
        "| wall / CPU s, whole run | load |"
    )
    print("|---|---|---|---|---|---|---|---|")
    base = next(iter(rows.values()))
    for label, r in rows.items():
        if isinstance(r, str):
            print(f"| {label} | {r} | | | | | | |")
            continue
        ratio = f"{r['samples_per_s'] / base['samples_per_s']:.2f}x" if isinstance(base, dict) else "-"
        print(
            f"| {label} | {r['steps_per_s']:.3f} | {r['samples_per_s']:.2f} | {ratio} | "
            f"{r['peak_process'] / 2**20:.0f} MiB | {r['peak_tree'] / 2**20:.0f} MiB | "
            f"{r['wall']:.0f} / {r['cpu']:.0f} | {r['load']} |"
        )
    consumed = base["samples_per_s"] if isinstance(base, dict) else float("nan")
    for workers, rate in loader.items():
        note = (
            f"loading is {100 * consumed / rate:.0f}% of a 1-process step (run.num_workers=0: in the step)"
            if workers == 0
            else "runs beside the step"
        )
        print(
            f"| data loader, {workers} workers ({args.stage} dataset, batch as the stage) | | {rate:.1f} | "
            f"{rate / consumed:.0f}x the 1-process consumption; {note} | | | | {load.summary()} |"
        )


if __name__ == "__main__":
    main()
