"""Synthetic people written as shards of bounded size, by several processes at once, joined by a
manifest (:mod:`lca.data.manifest`): ``<out>/<layout>-<k:05d>.zarr`` holds people ``k * shard_size``
onwards, and ``<out>/<layout>.parquet`` indexes them all. A person depends on the seed, the layout and
their index only, so the shards hold exactly the people one store of the same size would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lca.data.manifest import index_stores
from lca.data.processes import map_in_processes
from lca.data.synth.config import Layout, SynthConfig


def _write_shard(job: tuple[dict[str, Any], str, bool, str | None]) -> str:
    from lca.data.synth.generate import synthesize_config

    settings, out, overwrite, cache_dir = job
    return str(synthesize_config(SynthConfig(**settings), out, progress=False, overwrite=overwrite,
                                 cache_dir=cache_dir))  # fmt: skip


def synthesize_shards(
    layout: Layout,
    out: Path | str,
    shard_size: int,
    *,
    workers: int = 1,
    overwrite: bool = False,
    cache_dir: Path | str | None = None,
    **settings: Any,
) -> Path:
    """Write ``settings["identities"]`` people (the layout's default when absent) in shards of
    ``shard_size`` people, ``workers`` processes at once; return the manifest's path."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    config = SynthConfig(layout=layout, **settings).resolved()
    total = int(config.identities or 0)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for k, first in enumerate(range(0, total, shard_size)):
        shard = config.model_copy(
            update={"identities": min(shard_size, total - first), "first_identity": first}
        )
        path = out / f"{layout}-{k:05d}.zarr"
        jobs.append((shard.model_dump(), str(path), overwrite, None if cache_dir is None else str(cache_dir)))
    shards = map_in_processes(_write_shard, jobs, workers)
    return index_stores(shards, out / f"{layout}.parquet")
