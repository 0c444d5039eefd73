"""JSON files: one that must hold one object, read with located errors (the camera and tracker files of the
importers and of ``lca avatar create --smplx``), and records written atomically (a run's ``seen.json`` and
``metrics.json``, the main job's held-out rows)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The object in ``path``; ``what`` names the file in the error when it is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not JSON ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def write_json_atomically(path: Path, data: Any, indent: int | None = 2) -> None:
    """``data`` as JSON in ``path``, through a temporary file beside it renamed into place, so a reader (or
    a run killed mid-write) sees the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=indent), encoding="utf-8")
    os.replace(temporary, path)
