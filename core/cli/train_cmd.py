"""``lca train``: train a pipeline through its schedule (the README's main job with no arguments)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.markup import escape

from lca.cli.console import console
from lca.config.defaults import DEFAULT_PIPELINE


def train(
    pipeline: str = typer.Argument(
        DEFAULT_PIPELINE, help="A registered pipeline or a YAML config file (e.g. a run's config.yaml)."
    ),
    overrides: list[str] = typer.Argument(
        None, help="Overrides: slot=name, slot.field=value, section.field=value, schedule.STAGE.field=value."
    ),
    stage: str = typer.Option(
        None, "--stage", help="Run only this stage of the schedule (default: all, in order)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the newest run of this pipeline from its latest checkpoint."
    ),
    run_dir: Path = typer.Option(
        None, "--run-dir", help="Run folder (default: <run.output_dir>/<pipeline>/<timestamp>)."
    ),
) -> None:
    """Train a pipeline: `lca train` alone trains lca-tiny through both stages on the synthetic data.

    Under `accelerate launch -m lca train ...` the same command runs data-parallel on every process (DDP;
    with `run.parallel=fsdp` the model is sharded over them). Synthetic stores (`synthetic://` paths) are
    generated on first use.
    """
    from lca.config import resolve_pipeline
    from lca.train import end_process
    from lca.train import train as run_training

    arguments = list(overrides or [])
    if "=" in pipeline:  # `lca train model.depth=3`: overrides of the default pipeline
        arguments.insert(0, pipeline)
        pipeline = DEFAULT_PIPELINE
    config = resolve_pipeline(pipeline, arguments)
    run = run_training(config, stage=stage, resume=resume, run_dir=run_dir)
    _print_outputs(run)
    end_process(0)


def _print_outputs(run: Path) -> None:
    """Where the results are, printed by the main process only (the others of a multi-process run wrote
    nothing)."""
    finals = sorted(run.glob("checkpoints/*/final"))
    if not finals or int(os.environ.get("RANK", "0")) != 0:
        return
    console.print(f"\n[bold green]Training finished.[/] Run folder: {escape(str(run))}")
    for final in finals:
        console.print(f"  checkpoint ({final.parent.name}): {escape(str(final))}")
    console.print(f"  previews:   {escape(str(run / 'previews'))}")
    console.print(f"  metrics:    {escape(str(run / 'metrics.json'))}")
    console.print(f"  config:     {escape(str(run / 'config.yaml'))}")
    console.print(f"  TensorBoard: tensorboard --logdir {escape(str(run))}")
