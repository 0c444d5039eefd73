"""The paper's ablation in miniature: lca-tiny-pretrain-only, lca-tiny-posttrain-only and lca-tiny
(pretrain then post-train) trained on the synthetic data at equal total compute, printed as one table.

    python bench/ablation.py [--steps-scale 1.0] [--seed 0] [--split test] [--out runs/bench/ablation-<time>]
                             [--quick]

Every pipeline trains the same total number of optimizer steps (400 in registry.yaml: 400 wild, 400 studio,
240 wild + 160 studio) at the same batch size and views per sample; ``--steps-scale`` multiplies every
stage's steps and warm-up alike (rounded, at least 1), so the budgets stay equal; ``--seed`` sets every
run's ``run.seed`` (weights, data order), for the spread over seeds beside the intervals over people. Each
trains with ``python -m lca train PIPELINE --run-dir OUT/PIPELINE`` in a subprocess; then, with
``lca.evaluate.evaluate_store`` on the ``--split`` (held-out identities) of the synthetic stores:

- generalisation: the wild-video layout, all targets, full frame;
- expression accuracy: the studio layout, the ``expressions`` targets (frames whose expression is farthest
  from the reference frames), face region (face box crop resized to 64 px);
- 3D consistency: the studio layout, the ``views`` targets (cameras that gave no reference view), full frame.

The untrained model (same seed, freshly initialised) is the first row, for scale. LPIPS only when converted
weights exist (``lca lpips convert``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from heldout import (
    STORES,
    cell,
    check_held_out_stores,
    heldout,
    lpips,
    stage_models,
    train_command,
    untrained_model,
)
from machine import LoadSampler, machine_line, run_measured, tail

from lca.config import resolve_pipeline

PIPELINES = ("lca-tiny-pretrain-only", "lca-tiny-posttrain-only", "lca-tiny")
COLUMNS = (  # (heading, store key, evaluate_store category, region)
    ("gen.", "wild", "identity", "full"),
    ("expr.", "studio", "expressions", "face"),
    ("3D", "studio", "views", "full"),
)
LEGEND = (
    "gen. = generalisation (wild layout, held-out identities, full frame); expr. = expression accuracy "
    "(studio layout, held-out expressions, face region); 3D = 3D consistency (studio layout, held-out "
    "cameras, full frame); n = images averaged"
)


def scaled_overrides(pipeline: str, scale: float) -> tuple[list[str], int]:
    """Overrides scaling every stage's steps and warm-up by ``scale``, and the resulting total steps."""
    overrides, total = [], 0
    for stage in resolve_pipeline(pipeline).schedule:
        steps = max(1, round(stage.steps * scale))
        warmup = min(round(stage.warmup_steps * scale), steps - 1)
        overrides += [f"schedule.{stage.name}.steps={steps}", f"schedule.{stage.name}.warmup_steps={warmup}"]
        total += steps
    return overrides, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps-scale", type=float, default=1.0, help="multiply every stage's steps (default 1.0: 400 each)"
    )
    parser.add_argument("--seed", type=int, default=0, help="run.seed of every run (default 0)")
    parser.add_argument("--split", default="test", help="store split to evaluate (default: test)")
    parser.add_argument(
        "--out", type=Path, help="folder of the three runs (default: runs/bench/ablation-<time>)"
    )
    parser.add_argument(
        "--eval-only", action="store_true", help="skip training; evaluate the runs already in --out"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: --steps-scale 0.01 (5 steps each)")
    args = parser.parse_args()
    scale = 0.01 if args.quick else args.steps_scale
    out = args.out or Path("runs/bench") / f"ablation-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"machine: {machine_line()}")

    timings: dict[str, str] = {}
    for pipeline in PIPELINES:
        overrides, total = scaled_overrides(pipeline, scale)
        overrides.append(f"run.seed={args.seed}")
        run_dir = out / pipeline
        if args.eval_only:
            timings[pipeline] = f"{total} steps"
            continue
        command = train_command(pipeline, overrides, run_dir)
        log = out / f"{pipeline}.log"
        print(f"training: {' '.join(command[1:])}", flush=True)
        with LoadSampler() as load:
            measured = run_measured(command, log)
        if measured.returncode != 0:
            raise SystemExit(f"{pipeline} failed (exit {measured.returncode}):\n{tail(log)}")
        stages = json.loads((run_dir / "metrics.json").read_text())["stages"]
        schedule = " + ".join(f"{s['steps']} {name}" for name, s in stages.items())
        timings[pipeline] = f"{schedule}; {measured.wall:.0f} s wall, {load.summary()}"
        print(f"  {timings[pipeline]}", flush=True)

    records = {p: check_held_out_stores(out / p, args.split, allow_seen=False) for p in PIPELINES}
    lpips_model, note = lpips()
    base = resolve_pipeline(PIPELINES[-1], [f"run.seed={args.seed}"])
    rows = [("untrained (same seed)", "0 steps", untrained_model(base), None)]
    rows += [(p, timings[p], stage_models(out / p)[-1][1], records[p]) for p in PIPELINES]
    metric_names = ["psnr", "ssim"] + (["lpips"] if lpips_model is not None else [])
    with LoadSampler() as load:
        results = [
            (
                label,
                budget,
                {
                    key: heldout(model, store, args.split, lpips_model, None, seen)
                    for key, store in STORES.items()
                },
            )
            for label, budget, model, seen in rows
        ]
    print(
        f"\nablation at --steps-scale {scale:g}, seed {args.seed}, {args.split} split; "
        f"evaluation {load.summary()}; {note}"
    )
    print(LEGEND)
    counts = results[0][2]
    headings = [
        f"{title} {m.upper()} (n={counts[key][category]['count' if region == 'full' else 'face_count']})"
        for title, key, category, region in COLUMNS
        for m in metric_names
    ]
    print(f"| pipeline | {' | '.join(headings)} | training |")
    print("|---|" + "---|" * (len(headings) + 1))
    for label, budget, summary in results:
        cells = [
            cell(summary[key], category, region, m, 2 if m == "psnr" else 4)
            for _, key, category, region in COLUMNS
            for m in metric_names
        ]
        print(f"| {label} | {' | '.join(cells)} | {budget} |")
    print(f"\nruns: {out}")


if __name__ == "__main__":
    main()
