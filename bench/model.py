"""Benchmark: feed-forward avatar creation (``create_avatar``: encoder + backbone + canonical decoder, once
per person) and ``drive`` time per frame (drivers, correction, skinning, rendering) of a pipeline, against
LHM's published reconstruction times and the real-time budget, printed as one table.

    python bench/model.py [--pipeline lca-tiny] [--repeats 10] [--device cpu|cuda] [--quick]

CPU columns: the pipeline (default lca-tiny, random init: timing does not depend on the weights) with 1 and
with 2 torch threads, each in a fresh subprocess. ``--device cuda`` adds a column for ``--gpu-pipeline``
(default lca-reference, on the GPU, CUDA-synchronised timings; that path has not been run on a GPU yet).
Inputs are a real sample of the test split of ``synthetic://studio`` at the pipeline's data settings
(references + face close-up; 8 targets), resized by the dataset to the pipeline's image size. Times are
medians of ``--repeats`` calls after 2 warm-up calls, under ``torch.no_grad`` in eval mode.

LHM (Qiu et al., "LHM: Large Animatable Human Reconstruction Model", ICCV 2025, arXiv 2503.10625; model
card in github.com/aigc3d/LHM README): 1.41 s (LHM-MINI), 2.01 s (LHM-500M), 6.57 s (LHM-1B) per
reconstruction on a GPU (the GPU is not stated). Real time: 30 frames/s = 33.3 ms per frame.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import fields

from machine import machine_line

LHM_SECONDS = {"LHM-MINI": 1.41, "LHM-500M": 2.01, "LHM-1B": 6.57}
REAL_TIME_MS = 1000.0 / 30.0
STORE = "synthetic://studio"
TARGETS = 8
DRIVE_CASES = (  # (frames per drive call, render side in pixels; None: the pipeline's image size)
    (1, None),
    (TARGETS, None),
    (TARGETS, 256),
)


def worker(pipeline: str, overrides: list[str], device: str, threads: int, repeats: int) -> dict:
    """Times of one configuration, in this process (run in a fresh subprocess per configuration)."""
    import torch
    from accelerate.utils import set_seed

    from lca.config import resolve_pipeline
    from lca.contracts.sample import collate
    from lca.contracts.template import TemplateParams
    from lca.data.store_dataset import ViewChoice, largest_face
    from lca.evaluate import plan_group, store_dataset
    from lca.model.avatar import AvatarModel, driving_signals, reference_poses

    torch.set_num_threads(threads)
    config = resolve_pipeline(pipeline, overrides)
    set_seed(config.run.seed)
    model = AvatarModel(config, device=device).to(device).eval()
    dataset = store_dataset(config, STORE)
    group = dataset.reader.group_names("test")[0]
    plan, meta = plan_group(dataset, group), dataset.meta(group)
    targets = plan.targets[:TARGETS]
    choice = ViewChoice(plan.references, targets, largest_face(meta, plan.references), plan.faces[:TARGETS])
    dataset.plan = [(group, choice)]
    batch = collate([dataset[0]]).to(device)
    refs, tgt = batch.references, batch.targets
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def median_ms(call) -> float:
        for _ in range(2):
            call()
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            call()
            sync()
            times.append(time.perf_counter() - start)
        return 1000.0 * statistics.median(times)

    with torch.no_grad():
        betas = refs.params["betas"][:, 0]
        poses = reference_poses(refs)
        create_ms = median_ms(lambda: model.create_avatar(refs.images, refs.valid, betas, poses))
        avatar = model.create_avatar(refs.images, refs.valid, betas, poses)
        size = tgt.images.shape[-1]
        signals = driving_signals(tgt.params, batch.driving)
        drive = {}
        for frames, side in DRIVE_CASES:
            side = side or size
            params = TemplateParams(
                **{f.name: tgt.params[f.name][:, :frames] for f in fields(TemplateParams)}
            )
            step = {k: v[:, :frames] for k, v in signals.items()}
            Ks = tgt.Ks[:, :frames].clone()
            Ks[..., :2, :] *= side / size  # same camera, more pixels

            def call(params=params, step=step, Ks=Ks, side=side, frames=frames):
                model.drive(avatar, params, step, tgt.viewmats[:, :frames], Ks, side, side)

            drive[f"{frames}x{side}"] = median_ms(call) / frames
    return {
        "create_ms": create_ms,
        "drive_ms": drive,
        "params": sum(p.numel() for p in model.parameters()),
        "references": int(refs.valid.sum()),
        "image_size": size,
        "threads": torch.get_num_threads(),
    }


def run_worker(pipeline: str, overrides: list[str], device: str, threads: int, repeats: int) -> dict | str:
    """:func:`worker` in a fresh subprocess: its result, or why it failed."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        pipeline,
        device,
        str(threads),
        "--repeats",
        str(repeats),
    ]
    command += [f"--set={o}" for o in overrides]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:80]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipeline", default="lca-tiny", help="pipeline timed on the CPU (default lca-tiny)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override of --pipeline (repeatable)"
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per measurement (median)")
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="cuda: also time --gpu-pipeline on the GPU"
    )
    parser.add_argument("--gpu-pipeline", default="lca-reference", help="pipeline timed with --device cuda")
    parser.add_argument(
        "--gpu-set", action="append", default=[], metavar="KEY=VALUE", help="override of --gpu-pipeline"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 repeats")
    parser.add_argument(
        "--worker", nargs=3, metavar=("PIPELINE", "DEVICE", "THREADS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        pipeline, device, threads = args.worker
        print(json.dumps(worker(pipeline, args.set, device, int(threads), args.repeats)))
        return
    repeats = 2 if args.quick else args.repeats
    print(f"machine: {machine_line()}")
    columns: dict[str, dict | str] = {}
    for threads in (1, 2):
        columns[f"{args.pipeline} CPU, {threads} thread{'s' * (threads > 1)}"] = run_worker(
            args.pipeline, args.set, "cpu", threads, repeats
        )
    gpu_label = f"{args.gpu_pipeline} GPU"
    if args.device == "cuda":
        columns[gpu_label] = run_worker(args.gpu_pipeline, args.gpu_set, "cuda", 1, repeats)
    else:
        columns[gpu_label] = "not measured: no GPU lent"
    print(f"after: {machine_line()}")
    first = next((c for c in columns.values() if isinstance(c, dict)), None)
    if first is not None:
        print(
            f"{args.pipeline}: {first['params'] / 1e6:.2f} M parameters, "
            f"{first['references']} reference views (incl. face close-up), {first['image_size']} px; "
            f"medians of {repeats} calls, ms"
        )
    print(f"| measurement | {' | '.join(columns)} | comparison (first column) |")
    print("|---|" + "---|" * (len(columns) + 1))

    def cells(get) -> list[str]:
        return [get(c) if isinstance(c, dict) else c for c in columns.values()]

    lhm = ", ".join(
        f"{name} {s:.2f} s: {1000 * s / first['create_ms']:.0f}x" for name, s in LHM_SECONDS.items()
    )
    row = cells(lambda c: f"{c['create_ms']:.1f} ms")
    print(f"| create_avatar (once per person) | {' | '.join(row)} | LHM published / ours: {lhm} |")
    for frames, side in DRIVE_CASES:
        key = f"{frames}x{side or first['image_size']}"
        row = cells(
            lambda c, key=key: f"{c['drive_ms'][key]:.1f} ms/frame ({1000 / c['drive_ms'][key]:.0f} fps)"
        )
        budget = REAL_TIME_MS / first["drive_ms"][key]
        verdict = "real time" if budget >= 1 else "slower than real time"
        print(
            f"| drive, {frames} frame{'s' * (frames > 1)}/call, {key.split('x')[1]} px | {' | '.join(row)} | "
            f"{verdict}: 33.3 ms budget / ours = {budget:.1f}x |"
        )


if __name__ == "__main__":
    main()
