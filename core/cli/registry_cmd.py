"""``lca registry``: list and describe components, pipelines and plugins."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from lca.cli.console import console, err_console

app = typer.Typer(
    help="List and describe registered components, pipelines and plugins.", no_args_is_help=True
)


@app.command("list")
def list_components(
    kind: str = typer.Argument(
        None, help="A component kind (encoder, block, ...) or 'pipeline'; all if omitted."
    ),
    pattern: str = typer.Argument(None, help="Shell wildcard on names, e.g. 'vit-*'."),
) -> None:
    """Table of kind, name, summary and origin plugin. Imports no component module."""
    from lca.registry import default_registry

    registry = default_registry()
    table = Table("kind", "name", "summary", "origin", box=None, header_style="bold")
    if kind in (None, "pipeline", "pipelines"):
        import fnmatch

        for name in registry.pipeline_names():
            if pattern is None or fnmatch.fnmatchcase(name, pattern):
                entry = registry.pipeline(name)
                table.add_row("pipeline", name, escape(entry.summary), entry.origin)
    if kind not in ("pipeline", "pipelines"):
        for spec in registry.list(kind, pattern):
            table.add_row(spec.kind, spec.name, escape(spec.summary), spec.origin)
    if table.row_count:
        console.print(table)
    else:
        err_console.print(f"No entries match kind={kind or '*'} pattern={pattern or '*'}.")
    for failure in registry.failures:
        err_console.print(f"[yellow]Warning:[/] {escape(failure.describe())}")


@app.command("show")
def show(
    kind: str = typer.Argument(..., help="Component kind, e.g. encoder."),
    name: str = typer.Argument(..., help="Component name, e.g. vit-tiny."),
) -> None:
    """Summary, import target, origin and config fields (type, default, doc), read without importing."""
    from lca.describe import describe_config
    from lca.registry import default_registry

    spec = default_registry().get(kind, name, where="lca registry show")
    description = describe_config(spec)
    console.print(f"[bold]{spec.kind} '{spec.name}'[/]: {escape(spec.summary)}")
    console.print(f"  target: {spec.target_text}")
    console.print(f"  origin: {escape(spec.describe_origin())}")
    console.print(f"  config: {description.config_class}")
    if description.note:
        console.print(f"  [yellow]{escape(description.note)}[/]")
    table = Table("field", "type", "default", "description", box=None, header_style="bold")
    for field in description.fields:
        default = "[red]required[/]" if field.default is None else escape(field.default)
        table.add_row(field.name, escape(field.type), default, escape(field.doc))
    if description.fields:
        console.print(table)
    elif not description.note:
        console.print("  (no config fields)")


@app.command("plugins")
def plugins() -> None:
    """Loaded plugins with their origin and version, and plugins that failed to load."""
    from lca.registry import default_registry

    registry = default_registry()
    table = Table("plugin", "origin", "version", box=None, header_style="bold")
    for plugin in registry.plugins:
        table.add_row(plugin.name, escape(plugin.origin), plugin.version or "-")
    console.print(table)
    for failure in registry.failures:
        err_console.print(f"[red]Failed:[/] {escape(failure.describe())}")
