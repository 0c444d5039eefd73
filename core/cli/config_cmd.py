"""``lca config``: show and validate pipeline configs."""

from __future__ import annotations

import typer

from lca.cli.console import console

app = typer.Typer(help="Show and validate pipeline configs.", no_args_is_help=True)

_OVERRIDES_HELP = "Overrides: slot=name, slot.field=value, section.field=value, schedule.STAGE.field=value."


@app.command("show")
def show(
    pipeline: str = typer.Argument(..., help="A registered pipeline name or a YAML config file."),
    overrides: list[str] = typer.Argument(None, help=_OVERRIDES_HELP),
) -> None:
    """Print the fully resolved pipeline (after inheritance and overrides) as YAML."""
    from lca.config import resolve_pipeline

    console.print(resolve_pipeline(pipeline, overrides or []).to_yaml(), end="", markup=False)


@app.command("validate")
def validate(
    pipeline: str = typer.Argument(..., help="A registered pipeline name or a YAML config file."),
    overrides: list[str] = typer.Argument(None, help=_OVERRIDES_HELP),
    build: bool = typer.Option(
        True,
        "--build/--no-build",
        help="Also build the model on the meta device (the template from its files).",
    ),
) -> None:
    """Validate a pipeline: every problem of every slot at once (exit code 2), then build its model on the
    meta device (no weights, no memory), so a rule across fields that only the component knows (an image
    size not divisible by the patch size) is caught here too, naming the slot; or 'ok'."""
    from lca.config import resolve_pipeline

    config = resolve_pipeline(pipeline, overrides or [])
    if build:
        from lca.model.avatar import AvatarModel

        AvatarModel(config, device="meta")
    console.print(f"ok: {config.name}")
