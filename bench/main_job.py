"""The main job's result: `lca train` (default lca-tiny, both stages, synthetic data) in a fresh run
folder, timed, then held-out PSNR/SSIM of the trained model against the untrained one, printed as one table.

    python bench/main_job.py [--pipeline lca-tiny] [--run-dir DIR] [--set KEY=VALUE ...] [--quick]
    python bench/main_job.py --eval-only RUN_DIR      # evaluate an existing run, no training

Training runs as a subprocess (``python -m lca train PIPELINE --run-dir DIR``, output in ``DIR.log``); its
wall time, its CPU time (user + system of the process tree: on an idle machine a 1-thread training takes
about this much wall time) and the machine load are printed. The untrained model is the same seed freshly
initialised, i.e. exactly what the first stage started from; each stage's final checkpoint is evaluated too.
Metrics: ``lca.evaluate.evaluate_store`` on the test split (held-out identities) of
``synthetic://wild-video`` and ``synthetic://studio``: all targets, full frame, subject over black; LPIPS
only when converted weights exist (``lca lpips convert``). Two reference rows give the scale: the target's
own mask filled with grey, and filled with the person's true mean colour in that image (both read the
answer; a model beats the second only with colours right region by region). The per-person optimisation
baseline (``bench/per_person.py``: the same Gaussians fitted to each held-out person's reference views) adds
one row per ``--fit-steps`` count, with its fitting time per person. Every mean has a 95% interval from a
bootstrap over people (docs/evaluation.md); a run that trained on any evaluated person is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from heldout import (
    REFERENCES,
    STORES,
    cell,
    check_held_out_stores,
    heldout,
    lpips,
    paired_cell,
    stage_models,
    train_command,
    untrained_model,
)
from machine import LoadSampler, machine_line, run_measured, tail
from per_person import fit_rows

from lca.config import resolve_pipeline
from lca.data.json_file import write_json_atomically
from lca.errors import LcaError


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipeline", default="lca-tiny", help="registered pipeline (default: lca-tiny)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="an `lca train` override (repeatable)"
    )
    parser.add_argument(
        "--run-dir", type=Path, help="fresh run folder (default: runs/bench/main-job-<time>; must not exist)"
    )
    parser.add_argument("--eval-only", type=Path, metavar="RUN_DIR", help="skip training; evaluate this run")
    parser.add_argument("--split", default="test", help="store split to evaluate (default: test)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 4 steps per stage (numbers meaningless)"
    )
    parser.add_argument(
        "--fit-steps",
        default="30,100",
        help="comma-separated Adam step counts of the per-person optimisation baseline rows ('' for none)",
    )
    parser.add_argument(
        "--allow-seen",
        action="store_true",
        help="evaluate even if the run trained on some of the evaluated people (rows are then marked)",
    )
    args = parser.parse_args()

    config = resolve_pipeline(args.pipeline, args.set)
    overrides = list(args.set)
    if args.quick:
        for stage in config.schedule:
            overrides += [f"schedule.{stage.name}.steps=4", f"schedule.{stage.name}.warmup_steps=1"]
        config = resolve_pipeline(args.pipeline, overrides)
    print(f"machine: {machine_line()}")
    if args.eval_only is None:
        run_dir = args.run_dir or Path("runs/bench") / f"main-job-{time.strftime('%Y%m%d-%H%M%S')}"
        if run_dir.exists():
            parser.error(f"--run-dir {run_dir} exists; the main job starts from a fresh folder")
        command = train_command(args.pipeline, overrides, run_dir)
        log = run_dir.with_name(run_dir.name + ".log")
        print(f"training: {' '.join(command[1:])}  (log: {log})", flush=True)
        with LoadSampler() as load:
            measured = run_measured(command, log)
        if measured.returncode != 0:
            raise SystemExit(f"lca train failed (exit {measured.returncode}):\n{tail(log)}")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        print(
            f"\n`lca train {args.pipeline}`: {measured.wall:.0f} s wall, {measured.cpu:.0f} s CPU, "
            f"{load.summary()}"
        )
        print("| stage | steps | seconds | s/step | samples/s |")
        print("|---|---|---|---|---|")
        for name, stage in metrics["stages"].items():
            steps = stage["steps"] - stage["start_step"]
            print(
                f"| {name} | {steps} | {stage['seconds']:.0f} | {stage['seconds'] / steps:.2f} | "
                f"{stage['samples_per_second']:.2f} |"
            )
    else:
        run_dir = args.eval_only
        config = resolve_pipeline(run_dir / "config.yaml")

    try:
        records = check_held_out_stores(run_dir, args.split, args.allow_seen)
    except LcaError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    lpips_model, note = lpips()
    models = [("untrained (same seed)", untrained_model(config), None)]
    models += [(f"after {name}", model, records) for name, model in stage_models(run_dir)]
    metric_names = ["psnr", "ssim"] + (["lpips"] if lpips_model is not None else [])
    with LoadSampler() as load:
        began = time.perf_counter()
        results = [
            (
                label,
                {
                    key: heldout(model, store, args.split, lpips_model, None, seen)
                    for key, store in STORES.items()
                },
            )
            for label, model, seen in models
        ]
        base_model = models[0][1]
        results += [
            (
                label,
                {
                    key: heldout(base_model, store, args.split, lpips_model, predictor)
                    for key, store in STORES.items()
                },
            )
            for label, predictor in REFERENCES.items()
        ]
        steps = [int(s) for s in args.fit_steps.split(",") if s.strip()]
        fits = fit_rows(
            config,
            steps,
            lambda predictor: {
                key: heldout(base_model, store, args.split, lpips_model, predictor)
                for key, store in STORES.items()
            },
        )
        results += [(label, summary) for label, summary, _ in fits]
        seconds = time.perf_counter() - began
    people = {key: results[0][1][key]["identity"]["people"] for key in STORES}
    print(
        f"\nheld-out identities ({args.split} split, all targets, full frame; "
        f"{', '.join(f'{key} {people[key]} people' for key in STORES)}); means with 95% intervals from a "
        f"bootstrap over people; eval {seconds:.0f} s, {load.summary()}"
    )
    print(f"{note}")
    columns = [f"{key} {m.upper()}" for key in STORES for m in metric_names]
    print(f"| model | {' | '.join(columns)} | wild dPSNR | studio dPSNR |")
    print("|---|" + "---|" * (len(columns) + 2))
    base = results[0][1]
    for label, summary in results:
        cells = [
            cell(summary[key], "identity", "full", m, 2 if m == "psnr" else 4)
            for key in STORES
            for m in metric_names
        ]
        deltas = [
            f"{summary[key]['identity']['full']['psnr'] - base[key]['identity']['full']['psnr']:+.2f} dB"
            for key in STORES
        ]
        seen = sum(len(summary[key].get("seen_in_training") or {}) for key in STORES)
        mark = f" (SEEN IN TRAINING: {seen} people)" if seen else ""
        print(f"| {label}{mark} | {' | '.join(cells)} | {' | '.join(deltas)} |")
    for label, _, per_person in fits:
        print(f"{label}: {per_person:.1f} s of fitting per person (one thread)")
    print_paired(
        results, [label for label, _, _ in models if label.startswith(f"after {config.schedule[-1].name}")]
    )
    saved = save_results(run_dir, args.split, results)
    print(f"\nrun folder: {run_dir}\nrows with per-image records: {saved} (compare runs: bench/paired.py)")


def print_paired(results: list[tuple[str, dict]], finals: list[str]) -> None:
    """Each final model row against each row that is not a model (the references and the per-person fits),
    as paired per-image PSNR differences on the same people (:func:`heldout.paired_cell`)."""
    rows = dict(results)
    baselines = [label for label in rows if label.startswith(("reference:", "per-person fit"))]
    print("\npaired PSNR differences on the same images (mean [95% interval], bootstrap over people):")
    print(f"| difference | {' | '.join(f'{key} dPSNR' for key in STORES)} |")
    print("|---|" + "---|" * len(STORES))
    for final in finals:
        for baseline in baselines:
            cells = [paired_cell(rows[final][key], rows[baseline][key]) for key in STORES]
            print(f"| {final} - {baseline} | {' | '.join(cells)} |")


def save_results(run_dir: Path, split: str, results: list[tuple[str, dict]]) -> Path:
    """Every row's summaries and per-image records, as ``RUN_DIR/heldout-<split>.json`` (written atomically),
    for :mod:`paired` to compare rows of different runs on the same images."""
    path = run_dir / f"heldout-{split}.json"
    write_json_atomically(path, {"split": split, "rows": dict(results)}, indent=None)
    return path


if __name__ == "__main__":
    main()
