"""Imports written as shards of bounded size, by several processes at once, joined by a manifest
(:mod:`lca.data.manifest`): the units of the sources (:meth:`lca.contracts.importer.Importer.units`: one per
source, or one per subject of a format whose source is a folder of subjects) are cut into runs of
``shard_size``, ``<out>/<format>-<k:05d>.zarr`` holds run ``k``, and ``<out>/<format>.parquet`` indexes them
all. A format that writes one unit per store (``many_units_per_store`` False) gets one shard per unit.

Each shard is imported in its own process by an importer built there from the registry (plugins named by
``LCA_PLUGINS`` are found the same way), so one bad unit fails its shard's import, whose half-written store
the writer removes; the manifest is written only when every shard is whole."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lca.contracts.importer import Importer
from lca.data.manifest import index_stores
from lca.data.processes import map_in_processes
from lca.errors import LcaError
from lca.registry import default_registry


def _import_shard(job: tuple[str, dict[str, Any], list[str], str]) -> tuple[str, list[str]]:
    name, params, units, store = job
    importer = default_registry().build("importer", name, params)
    return store, importer.import_units(list(units), store)


def import_shards(
    importer: Importer,
    format_name: str,
    sources: Sequence[str | Path],
    out: Path | str,
    *,
    shard_size: int,
    workers: int = 1,
) -> tuple[Path, list[str]]:
    """Import ``sources`` with ``importer`` (the registered importer ``format_name``, which each shard's
    process builds again from its config) into shards under the folder ``out``; return the manifest's path
    and the group names written, in unit order."""
    if shard_size < 1:
        raise LcaError(f"--shard-size must be at least 1, got {shard_size}")
    units = [str(unit) for source in sources for unit in importer.units(source)]
    if not units:
        raise LcaError(f"lca data import --format {format_name}: the sources hold nothing to import")
    named = [key for key in ("group", "identity") if getattr(importer.config, key) is not None]
    if len(units) > 1 and named:
        raise LcaError(
            f"--{'/--'.join(named)} name(s) one group, but the sources hold {len(units)} units: drop the "
            "option (each unit is named after its source) or import the sources one at a time."
        )
    per_store = shard_size if type(importer).many_units_per_store else 1
    params = importer.config.model_dump()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (format_name, params, units[first : first + per_store], str(out / f"{format_name}-{k:05d}.zarr"))
        for k, first in enumerate(range(0, len(units), per_store))
    ]
    written = map_in_processes(_import_shard, jobs, workers)
    manifest = index_stores([store for store, _ in written], out / f"{format_name}.parquet")
    return manifest, [group for _, groups in written for group in groups]
