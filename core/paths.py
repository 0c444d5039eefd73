"""Where the toolkit keeps what it generates or converts once (the mannequin body file, synthetic stores,
converted LPIPS weights): ``$LCA_CACHE_DIR``, else ``~/.cache/lca``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The toolkit's cache folder: ``$LCA_CACHE_DIR``, else ``~/.cache/lca``."""
    return Path(os.environ.get("LCA_CACHE_DIR") or Path.home() / ".cache" / "lca").expanduser()


def not_a_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file ("does not exist", "is a directory, not a file"), or None when
    it is one. The one check behind every "X not found" message, so a folder given where a file is wanted
    is told as such, not as missing."""
    path = Path(path)
    if path.is_file():
        return None
    return "is a directory, not a file" if path.is_dir() else "does not exist"
