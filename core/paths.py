"""Where the toolkit keeps what it generates or converts once (the mannequin body file, synthetic stores,
converted LPIPS weights): ``$LCA_CACHE_DIR``, else ``~/.cache/lca``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The toolkit's cache folder: ``$LCA_CACHE_DIR``, else ``~/.cache/lca``."""
    return Path(os.environ.get("LCA_CACHE_DIR") or Path.home() / ".cache" / "lca").expanduser()
