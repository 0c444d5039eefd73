"""The ``lca`` command line: one typer app with a sub-app per area (registry, config, ...).

User mistakes (:class:`~lca.errors.LcaError`, and file-system errors that name a path: a missing folder,
a file where a folder is wanted, no permission) print their message and exit with code 2, without a
traceback; ``lca --debug ...`` shows the traceback. Warnings print as one ``Warning:`` line each (no source
line) when run as the console script; in-process callers keep Python's warnings. Commands import heavy
modules inside their bodies so that ``lca --help`` and ``lca registry list`` stay fast.
"""

from __future__ import annotations

import sys
import warnings

import typer
from rich.markup import escape

from lca.cli import (
    avatar_cmd,
    config_cmd,
    data_cmd,
    eval_cmd,
    lpips_cmd,
    model_cmd,
    registry_cmd,
    train_cmd,
    view_cmd,
)
from lca.cli.console import err_console
from lca.errors import LcaError

app = typer.Typer(
    name="lca",
    help="LCA toolkit: feed-forward 3D Gaussian avatars from a few photos (LCA, CVPR 2026).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(config_cmd.app, name="config")
app.add_typer(lpips_cmd.app, name="lpips")
app.add_typer(model_cmd.app, name="model")
app.add_typer(data_cmd.app, name="data")
app.command("train")(train_cmd.train)
app.add_typer(avatar_cmd.app, name="avatar")
app.command("eval")(eval_cmd.eval_)
app.command("view")(view_cmd.view)

_debug = False


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    global _debug
    _debug = debug


def _print_warning(message: Warning | str, *_: object, **__: object) -> None:
    err_console.print(f"[bold yellow]Warning:[/] {escape(str(message))}", soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lca`` console script and of ``python -m lca``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if argv is None and "--debug" not in args:  # the console script: a user reads these, not a developer
        warnings.showwarning = _print_warning
    try:
        # Standalone mode: click prints usage errors itself and exits with its own codes (2).
        app(args=args, prog_name="lca")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except LcaError as error:
        if _debug or "--debug" in args:
            raise
        err_console.print(f"[bold red]Error:[/] {escape(str(error))}", soft_wrap=True)
        return error.exit_code
    except (
        FileNotFoundError,
        FileExistsError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
    ) as error:
        # A path the user gave that cannot be read or written: name it (these carry the path), exit code 2
        if _debug or "--debug" in args or error.filename is None:
            raise
        what = error.strerror or type(error).__name__
        err_console.print(
            f"[bold red]Error:[/] {escape(str(error.filename))}: {escape(what)} "
            "(check the path given on the command line or in the config; `lca --debug ...` shows where)",
            soft_wrap=True,
        )
        return 2
    return 0
