"""Contract of the ``importer`` kind: a capture in some source format -> a new Zarr store (docs/data.md).

Context passed at construction: none (``cls(config)``); an importer is configured only by its own config.

An importer reads one source (a folder, a video, an archive: whatever its format is) and writes the clips
(``wild-video``) or captures (``studio``) it holds into a new store through
:class:`lca.data.writer.StoreWriter`, opened with ``StoreWriter(store, config.layout,
**config.writer_options())``. This contract does not import :mod:`lca.data` (contracts sit below data);
the components do. Guarantees every importer honours:

- the store it writes passes :func:`lca.data.check.check_store` (schema, every chunk decodable);
- :meth:`Importer.import_into` returns the names of the groups it wrote, each present in the store;
- cameras are stored as the schema wants them (OpenCV world-to-camera, pixel intrinsics), whatever the
  source's convention, so the conversion lives in the importer, not in the readers.

:func:`lca.testing.importer.check_importer` checks an importer against this contract.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from lca.component import ComponentConfig
from lca.splits import subject_split


class ImporterConfig(ComponentConfig):
    """Fields every importer shares: where the groups go in the store and how the store is written."""

    layout: Literal["wild-video", "studio"] = "wild-video"
    """Layout of the new store: monocular clips (wild-video) or calibrated multi-view captures (studio)."""
    identity: str | None = None
    """Identity id of the imported person (default: the group name)."""
    split: Literal["auto", "train", "val", "test"] = "auto"
    """Split of the imported groups. ``auto`` (the default) derives it from the identity alone
    (:func:`lca.splits.subject_split`: a hash of the id), so re-importing more subjects never moves one into
    another split; give an explicit split to follow a dataset's official split list."""
    group: str | None = None
    """Group name (default: chosen by the importer, usually the source's name)."""
    codec: Literal["zstd", "jpeg", "webp"] = "zstd"
    """Image codec of the store (lossless zstd, or lossy JPEG/WebP inside Zarr)."""
    quality: int = Field(95, ge=1, le=100)
    """JPEG/WebP quality (ignored by zstd)."""
    overwrite: bool = False
    """Replace an existing store at the destination instead of failing."""

    def split_for(self, identity: str) -> str:
        """The split of the groups of ``identity``: the explicit one, or the stable rule of ``auto``."""
        return subject_split(identity) if self.split == "auto" else self.split

    def writer_options(self) -> dict[str, Any]:
        """The keyword arguments of ``StoreWriter(store, layout, ...)`` that this config sets."""
        return {"codec": self.codec, "quality": self.quality, "overwrite": self.overwrite}


class Importer(ABC):
    """Writes one source into a new store. Implementations: ``transforms-json`` (nerfstudio folders)."""

    Config: ClassVar[type[ImporterConfig]] = ImporterConfig
    test_config: ClassVar[dict[str, Any]] = {}
    """Params of a small test build (conformance tests build ``cls(Config(**test_config))``)."""
    many_units_per_store: ClassVar[bool] = False
    """Whether :meth:`import_units` takes several units into one store (sharded imports then put up to
    ``--shard-size`` units in each shard); otherwise each shard holds one unit."""

    def __init__(self, config: ImporterConfig, **context: Any) -> None:
        self.config = config

    @abstractmethod
    def import_into(self, source: str | Path, store: str) -> list[str]:
        """Import ``source`` into a new store at ``store`` (a path or fsspec URL); return the group names
        written. A source that does not follow the format raises an error naming the file and the entry
        at fault (``FileNotFoundError`` / ``ValueError``)."""

    def units(self, source: str | Path) -> list[str | Path]:
        """The independent pieces of ``source`` a sharded import (:mod:`lca.data.import_shards`) may spread
        over several stores, each importable on its own. Default: the whole source is one unit; a format
        whose one source holds many people (a folder of subjects) lists them."""
        return [source]

    def import_units(self, units: list[str | Path], store: str) -> list[str]:
        """Import ``units`` (from :meth:`units`) into one new store. Default: one unit, through
        :meth:`import_into`; a format with ``many_units_per_store`` takes several."""
        if len(units) != 1:
            raise ValueError(
                f"{type(self).__name__} writes one unit per store; got {len(units)} (shard size 1)"
            )
        return self.import_into(units[0], store)
