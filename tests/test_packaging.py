"""The built wheel: both import packages, the catalogue as package data, the console script and the
built-in plugin's entry point. (Installing it into a fresh venv is checked by hand: docs/development.md.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_wheel_ships_packages_catalogue_and_entry_points(tmp_path: Path) -> None:
    # Build from a copy: setuptools reuses build/ folders, which could hide a missing file.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "runs", "notebooks"
    )
    shutil.copytree(ROOT, source, ignore=ignore, symlinks=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(source),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("lca_toolkit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        shipped_catalogue = archive.read("lca_plugins/registry.yaml")
    assert shipped_catalogue == (ROOT / "registry.yaml").read_bytes()
    for module in (
        "lca/registry.py",
        "lca/cli/__init__.py",
        "lca/contracts/encoder.py",
        "lca_plugins/hooks.py",
        "lca_plugins/encoders/vit_tiny.py",
        "lca_plugins/rasterizers/torch_tiles.py",
    ):
        assert module in names, module
    assert not any(n.startswith(("core/", "plugins/", "tests/")) for n in names)
    assert "lca = lca.cli:main" in entry_points
    assert "[lca.plugins]" in entry_points and "builtin = lca_plugins.hooks" in entry_points
