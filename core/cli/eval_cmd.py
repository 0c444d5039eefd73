"""``lca eval``: PSNR / SSIM / LPIPS of driven renders on a store split (protocol in lca.evaluate)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from lca.cli.console import console, err_console


def eval_(
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="Run folder or checkpoint folder from `lca train`."
    ),
    store: str = typer.Option(..., "--store", help="Store to evaluate on (path, URL or synthetic://LAYOUT)."),
    split: str = typer.Option("test", "--split", help="Split of the store: train | val | test."),
    out: Path = typer.Option(None, "--out", help="Output folder (default: <run>/eval/<store name>-<split>)."),
    ema: bool = typer.Option(False, "--ema", help="Use the checkpoint's EMA weights."),
    refine_steps: int = typer.Option(
        None,
        "--refine-steps",
        min=0,
        help="Colour refinement steps at avatar creation (default: the checkpoint's model.refine_steps).",
    ),
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cuda."),
    allow_seen: bool = typer.Option(
        False, "--allow-seen", help="Evaluate people the run trained on too (results marked as seen)."
    ),
    protocol: str = typer.Option(
        "lca",
        "--protocol",
        help="lca (over black, pipeline size) | lhm (as LHM/LHM++ report: white, 512 px).",
    ),
    resolution: int = typer.Option(
        None, "--resolution", help="Target frame side in pixels (overrides the protocol's)."
    ),
    reference_cameras: str = typer.Option(
        None,
        "--reference-cameras",
        help="Studio: reference camera ids or indices, e.g. 0,12,24 (default: spread).",
    ),
    reference_frame: int = typer.Option(0, "--reference-frame", help="Frame of the references."),
    target_cameras: str = typer.Option(
        None, "--target-cameras", help="Held-out camera ids or indices (default: all)."
    ),
    target_frames: str = typer.Option(
        None, "--target-frames", help="Held-out frames: 0,5,10 or a range 0:150:10 (default: all)."
    ),
) -> None:
    """Evaluate held-out identities, views and expressions; writes metrics.json and metrics.md.

    People the run trained on (its seen.json) are refused unless --allow-seen. On real captures, name the
    reference and held-out views, and use --protocol lhm for numbers comparable to LHM/LHM++ tables
    (docs/evaluation.md states the protocol and its deviations)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from lca.avatars.create import load_model
    from lca.errors import LcaError
    from lca.eval_protocol import ViewSelection, get_protocol, parse_cameras, parse_frames
    from lca.evaluate import ModelPredictor, evaluate_store, lpips_or_note, markdown_table, write_results
    from lca.train.seen import load_records

    if split not in ("train", "val", "test"):
        raise LcaError(f"--split must be train, val or test; got '{split}'.")
    chosen = get_protocol(protocol, resolution)
    selection = ViewSelection(
        parse_cameras(reference_cameras),
        reference_frame,
        parse_cameras(target_cameras),
        parse_frames(target_frames),
    )
    default_views = selection == ViewSelection()
    model, found = load_model(checkpoint, ema=ema, device=device)
    if refine_steps is not None:  # an inference setting, not a weight: any checkpoint runs with any count
        model.config.model.refine_steps = refine_steps
    run = found.path.parents[2] if found.path.parent.parent.name == "checkpoints" else found.path
    records = load_records(run)
    if records is None:
        err_console.print(
            f"[yellow]{escape(str(run))} has no seen.json (a run of an older toolkit?): cannot check that "
            "the evaluated people were held out.[/]"
        )
    lpips_model, note = lpips_or_note(chosen.lpips_net)
    if lpips_model is None:
        err_console.print(f"[yellow]{escape(note)}[/]")
    columns = (TextColumn("evaluating"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("eval", total=None)
        result = evaluate_store(
            model.config, store, split, ModelPredictor(model, alpha=bool(chosen.background)),
            lpips_model=lpips_model, lpips_note=note, progress=lambda n: bar.advance(task, n),
            seen_records=records, allow_seen=allow_seen, protocol=chosen,
            selection=None if default_views else selection,
        )  # fmt: skip
    result = {
        "checkpoint": str(found.path),
        "pipeline": model.config.name,
        "refine_steps": model.config.model.refine_steps,
        **result,
    }
    if out is None:
        name = store.rstrip("/").split("/")[-1].removesuffix(".zarr") or "store"
        out = run / "eval" / (f"{name}-{split}" + ("" if chosen.name == "lca" else f"-{chosen.name}"))
    json_path, md_path = write_results(out, result)
    console.print(markdown_table(result))
    console.print(f"Wrote {escape(str(json_path))} and {escape(str(md_path))}")
