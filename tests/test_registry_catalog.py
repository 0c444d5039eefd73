"""Every catalogue entry (built-in and the toy plugin): it imports, has a Config model, and the static
description that `lca registry show` prints (read without importing) equals the real pydantic model."""

from __future__ import annotations

import ast

import pytest

from lca.component import ComponentConfig
from lca.describe import describe_config, describe_model
from lca.registry import Registry, build_registry


def _entries() -> list[tuple[str, str]]:
    registry = build_registry()
    return [(spec.kind, spec.name) for spec in registry.list()]


def _same_default(static: str | None, real: str | None) -> bool:
    if static is None or real is None:
        return static == real
    try:
        return ast.literal_eval(static) == ast.literal_eval(real)
    except (ValueError, SyntaxError):
        return static == real


def _check(registry: Registry, kind: str, name: str) -> None:
    cls = registry.load(kind, name)
    assert issubclass(cls.Config, ComponentConfig)
    static = describe_config(registry.get(kind, name))
    real = describe_model(cls.Config)
    assert not static.note, static.note
    assert static.config_class == real.config_class
    assert [f.name for f in static.fields] == [f.name for f in real.fields]
    for s, r in zip(static.fields, real.fields, strict=True):
        assert _same_default(s.default, r.default), f"{kind} '{name}'.{s.name}: {s.default} != {r.default}"
        assert s.doc == r.doc, f"{kind} '{name}'.{s.name}: doc differs"
        assert r.doc, f"{kind} '{name}'.{s.name} has no description"


@pytest.mark.parametrize(("kind", "name"), _entries())
def test_builtin_entry_imports_and_static_description_matches(kind: str, name: str) -> None:
    _check(build_registry(), kind, name)


def test_toy_plugin_entries_match(toy_registry: Registry) -> None:
    for spec in toy_registry.list(pattern="toy-*"):
        _check(toy_registry, spec.kind, spec.name)
