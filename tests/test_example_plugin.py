"""The example third-party plugin (examples/lca-example-plugin) adds an encoder without touching the
toolkit's files, and that encoder works in a built-in pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lca.config import resolve_pipeline
from lca.registry import build_registry

EXAMPLE = Path(__file__).parents[1] / "examples" / "lca-example-plugin"


@pytest.fixture
def example_registry(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("LCA_PLUGINS", "lca_example.hooks")
    return build_registry()


def test_example_encoder_is_registered_and_runs(example_registry) -> None:
    spec = example_registry.get("encoder", "patch-mean")
    assert spec.origin == "lca_example.hooks"
    encoder = example_registry.build("encoder", "patch-mean", {"dim": 16, "grid": 4})
    out = encoder(torch.rand(2, 3, 3, 32, 24))
    assert out.tokens.shape == (2, 3, 16, 16) and out.grid == (4, 4)


def test_example_encoder_in_the_tiny_pipeline(example_registry) -> None:
    config = resolve_pipeline("lca-tiny", ["encoder=patch-mean", "encoder.grid=6"], registry=example_registry)
    assert config.slots["encoder"].type == "patch-mean"
    assert config.slots["encoder"].config.grid == 6


def test_the_example_plugin_runs_the_shared_conformance_suite() -> None:
    """The example's own test file, run as its author would (pytest in the plugin's folder), uses
    ``lca.testing`` on the plugin's encoder; a plugin author gets the toolkit's checks for free."""
    env = {**os.environ, "LCA_PLUGINS": "lca_example.hooks", "PYTHONPATH": str(EXAMPLE)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
