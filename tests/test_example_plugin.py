"""The example third-party plugin (examples/lca-example-plugin) adds an encoder without touching the
toolkit's files, and that encoder works in a built-in pipeline."""

from __future__ import annotations

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
