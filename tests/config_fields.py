"""The numeric fields of a config model and their lower bounds, read from pydantic's field metadata: shared
by the bounds test (every field is bounded) and the user-mistakes suite (each bound is a located message)."""

from __future__ import annotations

from typing import Any, get_args

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def lower_bound(metadata: list[Any]) -> float | None:
    """The field's lower bound (exclusive or inclusive), None when it has none."""
    for m in metadata:
        if isinstance(m, at.Gt | at.Ge):
            return float(m.gt if isinstance(m, at.Gt) else m.ge)
        if isinstance(m, at.Interval) and (m.gt is not None or m.ge is not None):
            return float(m.gt if m.gt is not None else m.ge)
    return None


def numeric_fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo, bool]]:
    """``(name, field, is_pair)`` of every int/float field, optional ones and tuples of them included."""
    found = []
    for name, field in model.model_fields.items():
        args = [a for a in get_args(field.annotation) if a is not type(None)]
        if field.annotation in (int, float) or (args and all(a in (int, float) for a in args)):
            found.append((name, field, False))
        elif args and all(getattr(a, "__origin__", None) in (int, float) or a in (int, float) for a in args):
            found.append((name, field, True))  # tuple[PositiveInt, PositiveInt]
    return found


def field_lower_bound(field: FieldInfo, pair: bool) -> float | None:
    """The lower bound of a field as :func:`numeric_fields` lists it (a pair's from its members' types)."""
    metadata = field.metadata
    if pair:
        metadata = [m for a in get_args(field.annotation) for m in getattr(a, "__metadata__", ())]
    return lower_bound(metadata)


def value_below(field: FieldInfo, pair: bool, lower: float) -> Any:
    """A value one below ``lower`` in the field's own type (an int for int fields and pairs)."""
    bad: Any = lower - 1
    if isinstance(field.default, int) or pair:
        bad = int(bad)
    return [bad, bad] if pair else bad
