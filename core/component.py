"""The base every component's config derives from, and the component protocol.

A *component* is a class registered under a kind (``encoder``, ``block``, ...). It carries its
config model as the class attribute ``Config`` (a :class:`ComponentConfig` subclass defined in the
same file, next to the code, as in threestudio) and is constructed as ``cls(config, **context)``,
where ``context`` holds the values that cross slots (for example the token width a block works at),
documented by each kind's contract in :mod:`lca.contracts`.

This module imports only pydantic, so registry listing and config validation stay light.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict


class ComponentConfig(BaseModel):
    """Base of every component's config.

    ``extra="forbid"`` turns a misspelled field into an error (the registry adds the closest valid
    name); attribute docstrings become field descriptions, which ``lca registry show`` prints.
    Defaults must be literals (numbers, strings, tuples, ``None``) or ``Field(default=..., description=...)``
    so that ``lca registry show`` can describe a component without importing it.
    """

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=True,
        validate_assignment=True,
    )


@runtime_checkable
class Component(Protocol):
    """What the registry needs of a component class: a ``Config`` model and ``cls(config, **context)``."""

    Config: ClassVar[type[ComponentConfig]]

    def __init__(self, config: Any, **context: Any) -> None: ...
