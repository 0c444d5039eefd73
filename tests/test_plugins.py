"""Plugins through pluggy: entry points, LCA_PLUGINS, autoload switch, failures, a third-party package."""

from __future__ import annotations

import sys
from pathlib import Path

import pluggy
import pytest

from lca.config import resolve_pipeline
from lca.registry import build_registry, default_registry


def _install_fake_distribution(site: Path, name: str, entry_points: str) -> None:
    """What `pip install` leaves behind that importlib.metadata reads: a dist-info folder."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_builtin_components_come_through_the_entry_point() -> None:
    registry = build_registry()
    origins = {p.name: p.origin for p in registry.plugins}
    assert "builtin" in origins and "lca-toolkit" in origins["builtin"]
    assert all(spec.origin == "builtin" for spec in registry.list())


def test_installed_third_party_plugin_adds_a_component_usable_in_a_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_fake_distribution(tmp_path, "lca-toy", "[lca.plugins]\ntoy = lca_toy.hooks\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = build_registry()
    assert registry.get("encoder", "toy-encoder").origin == "toy"
    assert any(p.name == "toy" and p.version == "0.1" for p in registry.plugins)
    config = resolve_pipeline("toy", ["encoder.dim=12"], registry=registry)
    assert config.slots["encoder"].config.dim == 12


def test_autoload_switch_keeps_builtins_and_drops_third_party(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_fake_distribution(tmp_path, "lca-toy", "[lca.plugins]\ntoy = lca_toy.hooks\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LCA_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = build_registry()
    assert [p.name for p in registry.plugins] == ["builtin"]
    assert "toy-encoder" not in registry.names("encoder")
    monkeypatch.setenv("LCA_PLUGINS", "lca_toy.hooks")
    assert "toy-encoder" in build_registry().names("encoder")


def test_failing_entry_point_is_recorded_not_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, "lca-broken", "[lca.plugins]\nbroken = lca_broken_plugin.hooks\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = build_registry()
    (failure,) = registry.failures
    assert failure.plugin == "broken" and "lca-broken" in failure.origin
    assert "No module named 'lca_broken_plugin'" in failure.error


def test_misspelled_hook_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "lca_typo_plugin.py"
    module.write_text(
        "from lca.hookspecs import hookimpl\n\n@hookimpl\ndef lca_registry_file():\n    return []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LCA_PLUGINS", "lca_typo_plugin")
    with pytest.raises(pluggy.PluginValidationError, match="lca_registry_file"):
        build_registry()
    sys.modules.pop("lca_typo_plugin", None)


def test_register_hook_adds_objects_directly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lca_direct_plugin.py").write_text(
        "from lca.hookspecs import hookimpl\n"
        "from lca_toy.components import ToyEncoder\n\n"
        "@hookimpl\n"
        "def lca_register(registry):\n"
        "    registry.register('encoder', 'direct-encoder', ToyEncoder)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LCA_PLUGINS", "lca_direct_plugin")
    from lca_toy.components import ToyEncoder

    assert default_registry().load("encoder", "direct-encoder") is ToyEncoder
    sys.modules.pop("lca_direct_plugin", None)
