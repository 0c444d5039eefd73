"""The rich consoles the CLI prints to (results on stdout, messages on stderr)."""

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
