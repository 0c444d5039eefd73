"""Store locations: local paths, fsspec URLs, and ``synthetic://LAYOUT`` for the built-in synthetic data.

``synthetic://wild-video`` and ``synthetic://studio`` name the default synthetic stores in the cache
folder (``$LCA_CACHE_DIR/synthetic``, default ``~/.cache/lca``); they are generated on first use, so the
tiny pipelines run on a fresh machine with nothing downloaded.

Resolving one can run the whole generator (templates and a rasterizer through the registry), so it is done
at the entry points only (the CLI commands, the trainer's dataset building, evaluation, avatar creation
and animation): :class:`~lca.data.reader.StoreReader` and the datasets take concrete locations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import TYPE_CHECKING

from lca.errors import LcaError

if TYPE_CHECKING:
    from lca.config import PipelineConfig

SYNTHETIC_SCHEME = "synthetic://"


def is_synthetic(url: str) -> bool:
    """Whether ``url`` names a built-in synthetic store (``synthetic://LAYOUT``)."""
    return str(url).startswith(SYNTHETIC_SCHEME)


def resolve_store_url(url: str) -> str:
    """The concrete location of a store URL (generating the synthetic stores if asked for and missing)."""
    url = str(url)
    if not is_synthetic(url):
        return url
    from lca.data.synth import LAYOUT_DEFAULTS, ensure_synthetic_data

    layout = url[len(SYNTHETIC_SCHEME) :]
    if layout not in LAYOUT_DEFAULTS:
        raise LcaError(
            f"Unknown synthetic store {url!r}: "
            f"choose one of {', '.join(SYNTHETIC_SCHEME + k for k in LAYOUT_DEFAULTS)}."
        )
    return str(ensure_synthetic_data(layouts=[layout])[layout])  # only the store asked for is generated


def resolve_data_paths(config: PipelineConfig, only: Collection[str] | None = None) -> PipelineConfig:
    """A copy of ``config`` whose data slots' ``synthetic://`` paths are concrete (the stores generated if
    missing); other slots and paths are kept as they are. ``only`` names the slots to resolve (default:
    all), so a stage never waits for a store it does not read. ``config`` itself is unchanged, so a run
    still records the portable ``synthetic://`` URL."""
    data = {}
    for name, slot in config.data.items():
        path = getattr(slot.config, "path", None)
        if isinstance(path, str) and is_synthetic(path) and (only is None or name in only):
            slot = dataclasses.replace(
                slot, config=slot.config.model_copy(update={"path": resolve_store_url(path)})
            )
        data[name] = slot
    return dataclasses.replace(config, data=data)
