"""A manifest: one Parquet table indexing the groups of many stores (shards), so a dataset of a million
clips opens by reading one columnar file instead of every store's metadata.

Schema (one row per group; docs/data.md states it so it can be written without the toolkit):

====================  ========  =====================================================================
column                type      meaning
====================  ========  =====================================================================
``key``               string    unique name of the group in the manifest: ``<store stem>:<group>``
``store``             string    the store's location (path or fsspec URL) as given to the indexer
``group``             string    the group's name inside its store
``identity``          string    the person (a split never holds one person twice)
``split``             string    ``train`` / ``val`` / ``test``
``layout``            string    ``wild-video`` or ``studio`` (one layout per manifest)
``num_frames``        int32     frames of the group
``num_cameras``       int32     cameras (1 for wild-video)
``height``/``width``  int32     image size in pixels
``fps``               float32   frame rate
``source``            string    where the group came from (``synthetic:...``, ``import:...``)
``quality``           float32   room for a quality score (null until a filter writes one)
====================  ========  =====================================================================

:class:`ManifestReader` reads like a :class:`~lca.data.reader.StoreReader` over all the groups: opening
reads the table only; a group's store is opened, and its small arrays read, on first use, with bounded
caches of open stores and of group metadata.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lca.data.reader import GroupMeta, StoreReader
from lca.errors import LcaError

MANIFEST_SUFFIX = ".parquet"
COLUMNS = ("key", "store", "group", "identity", "split", "layout", "num_frames", "num_cameras", "height",
           "width", "fps", "source", "quality")  # fmt: skip
REPEATED = ("store", "group", "split", "layout")
"""Columns of few distinct values, read dictionary-encoded (a store's URL once, not once per group)."""
OPEN_STORES = 16
"""Stores kept open at once by a :class:`ManifestReader` (each holds its consolidated metadata)."""
CACHED_GROUPS = 1024
"""Group metadata (cameras, SMPL-X arrays) kept by a :class:`ManifestReader`."""


def is_manifest(url: str | os.PathLike[str]) -> bool:
    return str(url).endswith(MANIFEST_SUFFIX)


def _schema() -> Any:
    import pyarrow as pa

    text = ("key", "store", "group", "identity", "split", "layout", "source")
    ints = ("num_frames", "num_cameras", "height", "width")
    types = {**{c: pa.string() for c in text}, **{c: pa.int32() for c in ints}, "fps": pa.float32(),
             "quality": pa.float32()}  # fmt: skip
    return pa.schema([(c, types[c]) for c in COLUMNS])


def store_rows(store: str, storage_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The manifest rows of one store (its metadata only: array shapes, no array is read)."""
    reader = StoreReader(store, storage_options)
    stem = Path(store.rstrip("/")).name.removesuffix(".zarr")
    rows = []
    for group in reader.group_names():
        attrs = reader.attrs(group)
        shape = reader.frames_shape(group)
        cameras = int(shape[1]) if reader.layout == "studio" else 1
        rows.append({
            "key": f"{stem}:{group}", "store": store, "group": group,
            "identity": str(attrs.get("identity", group)), "split": str(attrs.get("split")),
            "layout": reader.layout, "num_frames": int(shape[0]), "num_cameras": cameras,
            "height": int(shape[-3]), "width": int(shape[-2]), "fps": float(attrs.get("fps", 0.0)),
            "source": str(attrs.get("source", "")), "quality": None,
        })  # fmt: skip
    return rows


def write_manifest(rows: Sequence[Mapping[str, Any]], out: str | Path) -> Path:
    """Write ``rows`` as a manifest, atomically (a temporary file renamed into place); one layout, unique
    keys, and one split per identity are checked first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    repeated = [key for key, count in Counter(r["key"] for r in rows).items() if count > 1]
    if repeated:
        raise LcaError(f"Manifest {out}: the key '{repeated[0]}' occurs twice (two stores with one name?)")
    layouts = sorted({r["layout"] for r in rows})
    if len(layouts) > 1:
        raise LcaError(f"Manifest {out}: its stores have layouts {layouts}; a manifest holds one layout.")
    splits: dict[str, str] = {}
    for row in rows:
        if splits.setdefault(row["identity"], row["split"]) != row["split"]:
            first = splits[row["identity"]]
            raise LcaError(
                f"Manifest {out}: identity '{row['identity']}' is in splits {first} and {row['split']}; one "
                "person has one split."
            )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([dict(r) for r in rows], schema=_schema())
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out)
    return out


def index_stores(
    stores: Sequence[str], out: str | Path, storage_options: Mapping[str, Any] | None = None, workers: int = 8
) -> Path:
    """Index ``stores`` (read in parallel: opening a store is mostly waiting on storage) into ``out``."""
    if not stores:
        raise LcaError("Give at least one store to index.")
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(stores)))) as pool:
        per_store = list(pool.map(lambda s: store_rows(s, storage_options), stores))
    return write_manifest([row for rows in per_store for row in rows], out)


class ManifestReader:
    """The groups of a manifest, read like one store (see the module doc)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as pads

        self.url = str(url)
        self.storage_options = dict(storage_options) if storage_options else None
        filesystem, path = _filesystem(self.url, self.storage_options)
        # The system allocator, not Arrow's default (mimalloc), which keeps the read's buffers: a million
        # rows held 168 MiB after reading a 54 MiB table with the default pool, 117 MiB with this one.
        pool = pa.system_memory_pool()
        read = pads.ParquetFileFormat(read_options=pads.ParquetReadOptions(dictionary_columns=REPEATED))
        try:
            table = pads.dataset(path, format=read, filesystem=filesystem).to_table(
                columns=list(COLUMNS[:9]), memory_pool=pool
            )
        except (OSError, ValueError) as error:  # missing file, not Parquet, missing columns
            raise LcaError(
                f"Manifest {self.url} cannot be read ({error}); build one with `lca data index`."
            ) from error
        # Arrow columns, not Python objects: a million rows cost their bytes, not a million strs each.
        self._table = table.combine_chunks(memory_pool=pool)
        layouts = pc.unique(self._table.column("layout")).to_pylist()
        if len(layouts) != 1:
            raise LcaError(f"Manifest {self.url}: layouts {layouts}; a manifest holds one layout.")
        self.layout: str = str(layouts[0])
        self._keys = self._table.column("key")
        self._splits = self._table.column("split")
        self._readers: OrderedDict[str, StoreReader] = OrderedDict()
        self._meta: OrderedDict[str, GroupMeta] = OrderedDict()

    def __len__(self) -> int:
        return self._table.num_rows

    def _rows(self, split: str | None) -> Any:
        import pyarrow.compute as pc

        return self._table if split is None else self._table.filter(pc.equal(self._splits, split))

    def group_names(self, split: str | None = None) -> list[str]:
        """Group keys, optionally only those of ``split``."""
        return self._rows(split).column("key").to_pylist()

    def identities(self, split: str | None = None) -> dict[str, str]:
        rows = self._rows(split)
        return dict(zip(rows.column("key").to_pylist(), rows.column("identity").to_pylist(), strict=True))

    def num_frames(self, split: str | None = None) -> np.ndarray:
        """Frames of each group of :meth:`group_names` (``split``), from the table."""
        return self._rows(split).column("num_frames").to_numpy().astype(np.int64)

    def fingerprint(self) -> str:
        """sha256 of the (key, identity, split) columns sorted by key: two manifests with the same
        fingerprint hold the same people in the same splits."""
        rows = self._table.select(["key", "identity", "split"]).sort_by("key")
        digest = hashlib.sha256()
        for name in rows.column_names:
            for value in rows.column(name).to_pylist():
                digest.update(value.encode("utf-8") + b"\0")
        return digest.hexdigest()

    def _locate(self, key: str) -> tuple[StoreReader, str]:
        import pyarrow.compute as pc

        row = pc.index(self._keys, key).as_py()  # a scan in Arrow's C++ (about 1 ms per million rows)
        if row < 0:
            raise LcaError(f"Manifest {self.url} has no group '{key}' (keys are <store stem>:<group>).")
        store = self._table.column("store")[row].as_py()
        if store not in self._readers:
            self._readers[store] = StoreReader(store, self.storage_options)
            if len(self._readers) > OPEN_STORES:
                self._readers.popitem(last=False)
        self._readers.move_to_end(store)
        return self._readers[store], self._table.column("group")[row].as_py()

    def attrs(self, key: str) -> dict[str, Any]:
        reader, group = self._locate(key)
        return reader.attrs(group)

    def meta(self, key: str) -> GroupMeta:
        """The group's metadata under its manifest key (read on first use, kept in a bounded cache)."""
        if key not in self._meta:
            reader, group = self._locate(key)
            self._meta[key] = replace(reader.meta(group), name=key)
            if len(self._meta) > CACHED_GROUPS:
                self._meta.popitem(last=False)
        self._meta.move_to_end(key)
        return self._meta[key]

    def read_frame(self, key: str, t: int, camera: int = 0) -> np.ndarray:
        reader, group = self._locate(key)
        return reader.read_frame(group, t, camera)

    def read_mask(self, key: str, t: int, camera: int = 0) -> np.ndarray:
        reader, group = self._locate(key)
        return reader.read_mask(group, t, camera)

    def stores(self) -> list[str]:
        """The distinct stores the manifest indexes, in order of first appearance."""
        import pyarrow.compute as pc

        return pc.unique(self._table.column("store")).to_pylist()


def _filesystem(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """pyarrow's view of an fsspec location and the path in it (None and the path for a local file)."""
    if "://" not in url:
        return None, url
    import fsspec
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return PyFileSystem(FSSpecHandler(fs)), path


def open_reader(url: str, storage_options: Mapping[str, Any] | None = None) -> StoreReader | ManifestReader:
    """A manifest's reader for a ``.parquet`` location, else the store's."""
    return ManifestReader(url, storage_options) if is_manifest(url) else StoreReader(url, storage_options)
