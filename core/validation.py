"""Turning pydantic validation errors into :class:`~lca.errors.ConfigIssue` s with dotted paths and,
for a misspelled field, the closest valid field and the valid set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from lca.errors import ConfigIssue, hint_for

M = TypeVar("M", bound=BaseModel)


def _join(prefix: str, location: tuple[Any, ...]) -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in location]
    return ".".join(parts)


def issues_from_validation_error(
    model: type[BaseModel], error: ValidationError, path: str
) -> list[ConfigIssue]:
    """One issue per pydantic error, each at ``path.<field>``."""
    issues = []
    valid = sorted(model.model_fields)
    for item in error.errors():
        location = tuple(item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden" and location:
            hint = hint_for(str(location[-1]), valid)
            message = f"unknown field{hint}; valid fields: {', '.join(valid)}"
        elif item["type"] not in ("missing",) and "input" in item:
            message = f"{message} (got {item['input']!r})"
        issues.append(ConfigIssue(_join(path, location), message))
    return issues


def validate_model(model: type[M], data: Mapping[str, Any], path: str) -> tuple[M | None, list[ConfigIssue]]:
    """Validate ``data`` against ``model``; returns the instance or the issues (never raises)."""
    if not isinstance(data, Mapping):
        return None, [ConfigIssue(path, f"expected a mapping of fields, got {type(data).__name__}")]
    try:
        return model.model_validate(dict(data)), []
    except ValidationError as error:
        return None, issues_from_validation_error(model, error, path)
