"""``lca model``: inspect a pipeline's network without training it."""

from __future__ import annotations

import typer
from rich.table import Table

from lca.cli.console import console

app = typer.Typer(
    help="Inspect a pipeline's network (built on the meta device: no weights, no memory).",
    no_args_is_help=True,
)


def _human(value: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f}"


@app.command("summary")
def summary(
    pipeline: str = typer.Argument(..., help="A registered pipeline or a YAML config file."),
    overrides: list[str] = typer.Argument(None, help="Overrides, as for `lca config show`."),
    views: int = typer.Option(
        None, "--views", help="Reference views per sample (default: first stage's K + face)."
    ),
) -> None:
    """Parameter counts per slot and the attention FLOPs per sample of the feed-forward pass."""
    from lca.config import resolve_pipeline
    from lca.model.summary import summarize

    result = summarize(resolve_pipeline(pipeline, overrides or []), views=views)
    table = Table("slot", "component", "parameters", box=None, header_style="bold")
    for slot in result.slots:
        table.add_row(slot.name, slot.type, f"{slot.parameters:,}")
    table.add_row("[bold]total[/]", "", f"[bold]{result.parameters:,}[/]")
    console.print(
        f"[bold]{result.pipeline}[/]: {result.views} views x {result.patches_per_view} patches, "
        f"{result.anchors:,} anchors"
    )
    console.print(table)
    console.print(
        f"FLOPs per sample: encoder {_human(result.encoder_flops)}, backbone {_human(result.backbone_flops)} "
        f"(attention kernels {_human(result.attention_flops)})"
    )
