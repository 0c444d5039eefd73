"""Whether the chunks an array is made of exist in its store.

Zarr reads a chunk that does not exist as the array's fill value (zarr-python 3.1 has no switch to make it
raise), so a lost chunk file, or a deleted array whose entry the consolidated metadata still holds, reads as
black frames, empty masks or zero SMPL-X parameters, and trains. The writer stores every chunk
(``write_empty_chunks``), so a missing one is always a defect: the reader and ``lca data check`` ask these
functions before they read (one existence query per image chunk: a ``stat`` locally, a ``HEAD`` on S3).
"""

from __future__ import annotations

import itertools

import zarr
from zarr.core.sync import sync  # zarr's own bridge to its async store API (no public sync `exists`)


def chunk_key(array: zarr.Array, coords: tuple[int, ...]) -> str:
    """The store key of the chunk at chunk-grid ``coords`` (the array's own key encoding, v2 or v3)."""
    return f"{array.path}/{array.metadata.encode_chunk_key(coords)}"


def chunk_exists(array: zarr.Array, coords: tuple[int, ...]) -> bool:
    """True when the chunk at chunk-grid ``coords`` is stored."""
    return bool(sync(array.store.exists(chunk_key(array, coords))))


def image_chunk(array: zarr.Array, index: tuple[int, ...]) -> tuple[int, ...]:
    """Chunk-grid coordinates of the image at leading ``index`` (frame, or frame and camera) of an array
    chunked one image per chunk (the schema's ``frames`` and ``masks``)."""
    return (*index, *([0] * (array.ndim - len(index))))


def missing_image_chunk(array: zarr.Array, index: tuple[int, ...]) -> str | None:
    """The key of the image chunk at leading ``index`` when it is not stored, else None."""
    coords = image_chunk(array, index)
    return None if chunk_exists(array, coords) else chunk_key(array, coords)


def missing_chunks(array: zarr.Array) -> list[str]:
    """Keys of every chunk of ``array`` that is not stored (meant for the small per-frame arrays: one query
    per chunk, and they have one or a few)."""
    grid = [range(-(-size // chunk)) for size, chunk in zip(array.shape, array.chunks, strict=True)]
    return [chunk_key(array, c) for c in itertools.product(*grid) if not chunk_exists(array, c)]
