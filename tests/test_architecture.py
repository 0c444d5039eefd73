"""The architecture holds (docs/architecture.md): import-linter's contracts in pyproject.toml (layers, no
cycle between sibling packages at any depth, core never importing the plugins) are kept, and the same
checker does fail on a package that breaks them, so a new cycle cannot slip in unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(config: Path, cwd: Path, env_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = None if env_path is None else {**os.environ, "PYTHONPATH": str(env_path)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_the_toolkit_keeps_its_import_contracts() -> None:
    result = lint(ROOT / "pyproject.toml", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def _package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.mark.parametrize(
    ("files", "broken"),
    [
        # a cycle between two sibling packages, through one import deep inside each
        (
            {
                "demo/__init__.py": "",
                "demo/low/__init__.py": "",
                "demo/low/a.py": "from demo.high import b\n",
                "demo/high/__init__.py": "",
                "demo/high/b.py": "def f():\n    from demo.low import a\n",
            },
            "no import cycle",
        ),
        # a lower layer importing a higher one, without any cycle
        (
            {
                "demo/__init__.py": "",
                "demo/low/__init__.py": "import demo.high\n",
                "demo/high/__init__.py": "",
            },
            "layers",
        ),
    ],
    ids=["cycle", "upward-import"],
)
def test_the_contracts_fail_on_a_package_that_breaks_them(tmp_path: Path, files: dict, broken: str) -> None:
    _package(tmp_path, files)
    config = tmp_path / "importlinter.toml"
    config.write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_packages = ["demo"]

            [[tool.importlinter.contracts]]
            name = "layers"
            type = "layers"
            containers = ["demo"]
            exhaustive = true
            layers = ["high", "low"]

            [[tool.importlinter.contracts]]
            name = "no import cycle"
            type = "acyclic_siblings"
            ancestors = ["demo"]
            """
        )
    )
    result = lint(config, tmp_path, env_path=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    broken_section = result.stdout.split("Broken contracts")[-1]
    assert broken in broken_section


def test_no_file_refers_to_a_design_document_the_repository_lacks() -> None:
    """The method and design are described in docs/ (docs/architecture.md for the layers); a reference to
    a DESIGN.md is only allowed if the repository has one."""
    if (ROOT / "DESIGN.md").exists():
        pytest.skip("the repository has a DESIGN.md")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    suffixes = {".py", ".md", ".yaml", ".toml", ".ipynb", ".cfg", ".txt"}
    offenders = [
        name
        for name in tracked
        if Path(name).suffix in suffixes
        and (ROOT / name).is_file()
        and name != "tests/test_architecture.py"
        and "DESIGN.md" in (ROOT / name).read_text(encoding="utf-8", errors="replace")
    ]
    assert not offenders, f"files citing a DESIGN.md that is not in the repository: {offenders}"
