"""Shared test fixtures. The toy plugin under tests/fixtures/toy_plugin stands for a third-party
package; it is put on sys.path here and loaded through ``LCA_PLUGINS`` where a test asks for it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lca.registry import Registry, build_registry, reset_default_registry

FIXTURES = Path(__file__).parent / "fixtures"
TOY_PLUGIN_PATH = FIXTURES / "toy_plugin"
if str(TOY_PLUGIN_PATH) not in sys.path:
    sys.path.insert(0, str(TOY_PLUGIN_PATH))


@pytest.fixture(autouse=True)
def _fresh_default_registry() -> Iterator[None]:
    """Each test starts and ends with no cached process-wide registry."""
    reset_default_registry()
    yield
    reset_default_registry()


@pytest.fixture
def toy_registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The built-in catalogue plus the toy plugin, loaded as ``LCA_PLUGINS=lca_toy.hooks``."""
    monkeypatch.setenv("LCA_PLUGINS", "lca_toy.hooks")
    return build_registry()


@pytest.fixture
def toy_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the process-wide registry (used by the CLI) include the toy plugin."""
    monkeypatch.setenv("LCA_PLUGINS", "lca_toy.hooks")
    reset_default_registry()
