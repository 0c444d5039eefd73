"""What a run records about its software next to its outputs: versions, git commit, plugins."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the toolkit's source checkout (``None`` for an installed wheel or without git)."""
    where = path or Path(__file__).resolve().parents[2]
    try:
        result = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def run_meta(registry: Any) -> dict[str, Any]:
    """The ``meta`` block of a run's resolved config (see :meth:`PipelineConfig.to_yaml`)."""
    return {
        "lca_version": _version("lca-toolkit"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "accelerate": _version("accelerate"),
        "plugins": [
            {"name": p.name, "origin": p.origin, "version": p.version}
            for p in getattr(registry, "plugins", [])
        ],
    }
