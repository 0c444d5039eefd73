"""Every numeric config field has bounds, checked at validation: a zero or negative size, count, rate or
distance is a located config error, never a crash deep in torch. Over every registered component's config
and the core sections, each field is tried at a value outside its bounds (one case per field: about 90)."""

from __future__ import annotations

from typing import Any

import pytest
from config_fields import field_lower_bound, numeric_fields, value_below
from pydantic import BaseModel

from lca.config import sections
from lca.errors import ConfigError
from lca.registry import KINDS, default_registry

SECTIONS = (sections.ModelOptions, sections.LossOptions, sections.RunOptions, sections.StageConfig)


def _cases() -> list[tuple[str, type[BaseModel], str, Any]]:
    registry = default_registry()
    models: list[tuple[str, type[BaseModel], str | None]] = [(m.__name__, m, None) for m in SECTIONS]
    for kind in KINDS:
        models += [
            (f"{kind} '{name}'", registry.config_class(kind, name), kind) for name in registry.names(kind)
        ]
    cases = []
    for label, model, kind in models:
        for name, field, pair in numeric_fields(model):
            cases.append((f"{label}.{name}", model, name, (field_lower_bound(field, pair), pair, kind)))
    return cases


CASES = _cases()


def test_every_numeric_field_has_a_lower_bound() -> None:
    unbounded = [label for label, _, _, (lower, _, _) in CASES if lower is None]
    assert len(CASES) > 80 and not unbounded, unbounded


@pytest.mark.parametrize(("label", "model", "name", "spec"), CASES, ids=[c[0] for c in CASES])
def test_a_value_below_the_bound_is_a_config_error_naming_the_field(
    label: str, model: type[BaseModel], name: str, spec: tuple[float, bool, str | None]
) -> None:
    lower, pair, kind = spec
    value = value_below(model.model_fields[name], pair, lower)
    if kind is None:
        required = {"name": "s", "data": "d"} if model is sections.StageConfig else {}
        with pytest.raises(ValueError, match=name):
            model(**required, **{name: value})
        return
    registry = default_registry()
    component = label.split("'")[1]
    with pytest.raises(ConfigError, match=rf"{name}"):
        registry.make_config(kind, component, {name: value})
