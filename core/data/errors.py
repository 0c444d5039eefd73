"""Errors about data stores. Each names the store, the group, the array and the index it concerns, so a
bad chunk among a million clips can be found and fixed from the message alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lca.errors import LcaError


@dataclass(frozen=True)
class Problem:
    """One defect of a store: where it is (store, group, array, index) and what is wrong."""

    store: str
    message: str
    group: str = ""
    array: str = ""
    index: tuple[int, ...] | None = None

    def where(self) -> str:
        parts = [f"store {self.store}"]
        if self.group:
            parts.append(f"group '{self.group}'")
        if self.array:
            parts.append(f"array '{self.array}'")
        if self.index is not None:
            parts.append(f"index {list(self.index)}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"


class StoreError(LcaError):
    """A store that cannot be used as asked; ``problems`` lists every defect found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = str(self.problems[0])
        else:
            message = f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class SchemaError(StoreError):
    """The store's structure (arrays, dtypes, shapes, attributes, version) does not match the schema."""


class ChunkError(StoreError):
    """A chunk that is missing, truncated or cannot be decoded."""
