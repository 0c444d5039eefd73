"""Every numeric config field has bounds, checked at validation: a zero or negative size, count, rate or
distance is a located config error, never a crash deep in torch. Over every registered component's config
and the core sections, each field is tried at a value outside its bounds (one case per field: about 90)."""

from __future__ import annotations

from typing import Any, get_args

import annotated_types as at
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lca.config import sections
from lca.errors import ConfigError
from lca.registry import KINDS, default_registry

SECTIONS = (sections.ModelOptions, sections.LossOptions, sections.RunOptions, sections.StageConfig)
_BOUNDS = (at.Gt, at.Ge, at.Lt, at.Le, at.Interval)


def _lower(metadata: list[Any]) -> float | None:
    """The field's lower bound (exclusive or inclusive), None when it has none."""
    for m in metadata:
        if isinstance(m, at.Gt | at.Ge):
            return float(m.gt if isinstance(m, at.Gt) else m.ge)
        if isinstance(m, at.Interval) and (m.gt is not None or m.ge is not None):
            return float(m.gt if m.gt is not None else m.ge)
    return None


def _numeric_fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo, bool]]:
    """``(name, field, is_pair)`` of every int/float field, optional ones and tuples of them included."""
    found = []
    for name, field in model.model_fields.items():
        args = [a for a in get_args(field.annotation) if a is not type(None)]
        if field.annotation in (int, float) or (args and all(a in (int, float) for a in args)):
            found.append((name, field, False))
        elif args and all(getattr(a, "__origin__", None) in (int, float) or a in (int, float) for a in args):
            found.append((name, field, True))  # tuple[PositiveInt, PositiveInt]
    return found


def _cases() -> list[tuple[str, type[BaseModel], str, Any]]:
    registry = default_registry()
    models: list[tuple[str, type[BaseModel], str | None]] = [(m.__name__, m, None) for m in SECTIONS]
    for kind in KINDS:
        models += [
            (f"{kind} '{name}'", registry.config_class(kind, name), kind) for name in registry.names(kind)
        ]
    cases = []
    for label, model, kind in models:
        for name, field, pair in _numeric_fields(model):
            metadata = field.metadata
            if pair:
                metadata = [m for a in get_args(field.annotation) for m in getattr(a, "__metadata__", ())]
            cases.append((f"{label}.{name}", model, name, (_lower(metadata), pair, kind)))
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
    bad: Any = lower - 1 if lower is not None else None
    if isinstance(model.model_fields[name].default, int) or pair:
        bad = int(bad)
    value = [bad, bad] if pair else bad
    if kind is None:
        required = {"name": "s", "data": "d"} if model is sections.StageConfig else {}
        with pytest.raises(ValueError, match=name):
            model(**required, **{name: value})
        return
    registry = default_registry()
    component = label.split("'")[1]
    with pytest.raises(ConfigError, match=rf"{name}"):
        registry.make_config(kind, component, {name: value})
