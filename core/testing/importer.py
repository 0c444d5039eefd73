"""Conformance check of the ``importer`` kind (contract: :mod:`lca.contracts.importer`).

A plugin's test calls :func:`check_importer` with a small source in its format::

    def test_my_format(tmp_path):
        check_importer(build_registry(), "my-format", make_small_source(tmp_path))
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lca.contracts.importer import Importer
from lca.data.check import check_store
from lca.data.reader import StoreReader
from lca.registry import Registry


def check_importer(
    registry: Registry, name: str, source: str | Path, params: Mapping[str, Any] | None = None
) -> list[str]:
    """Import ``source`` with importer ``name`` into a temporary store and check the contract: the class
    subclasses :class:`Importer`, the store passes :func:`~lca.data.check.check_store`, has the configured
    layout, holds every group name returned (at least one), and the source's units
    (:meth:`Importer.units`) imported together write the same groups. ``params`` (default: the class's
    ``test_config``) configure the build. Returns the group names; raises ``AssertionError`` naming what
    failed."""
    cls = registry.load("importer", name)
    if not issubclass(cls, Importer):
        raise AssertionError(f"importer '{name}': {cls.__qualname__} does not subclass Importer")
    importer = registry.build("importer", name, dict(cls.test_config if params is None else params))
    with tempfile.TemporaryDirectory(prefix="lca-importer-check-") as folder:
        store = str(Path(folder) / "imported.zarr")
        names = importer.import_into(source, store)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise AssertionError(f"importer '{name}' returned {names!r}, expected a non-empty list of names")
        problems = check_store(store)
        if problems:
            shown = "\n  ".join(str(p) for p in problems)
            raise AssertionError(f"importer '{name}' wrote a store that fails check_store:\n  {shown}")
        reader = StoreReader(store)
        if reader.layout != importer.config.layout:
            raise AssertionError(
                f"importer '{name}' wrote a '{reader.layout}' store; its config asked for "
                f"'{importer.config.layout}'"
            )
        missing = sorted(set(names) - set(reader.group_names()))
        if missing:
            raise AssertionError(
                f"importer '{name}' returned groups {missing} that are not in the store "
                f"(it holds {reader.group_names()})"
            )
        _check_units(importer, name, source, names, Path(folder))
    return names


def _check_units(importer: Importer, name: str, source: str | Path, names: list[str], folder: Path) -> None:
    """The source's units (what a sharded import spreads over stores), imported into one store, give the
    same groups as the source itself; a format writing one unit per store lists exactly one."""
    units = importer.units(source)
    if not isinstance(units, list) or not units:
        raise AssertionError(f"importer '{name}': units({source!r}) gave {units!r}, not a non-empty list")
    if not type(importer).many_units_per_store and len(units) != 1:
        raise AssertionError(
            f"importer '{name}' lists {len(units)} units of one source but writes one unit per store "
            "(set many_units_per_store = True and take them all in import_units)"
        )
    again = importer.import_units(units, str(folder / "units.zarr"))
    if again != names:
        raise AssertionError(f"importer '{name}': import_units wrote {again}, import_into wrote {names}")
