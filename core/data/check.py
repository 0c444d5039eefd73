"""``lca data check STORE``: validate the schema, then read every image chunk (or a random sample).

Zarr returns the fill value for a chunk that does not exist, so a lost chunk file would read as a
black frame (or zero SMPL-X parameters). The writer stores every chunk (``write_empty_chunks``), which
makes a missing chunk a defect that this check reports by key before decoding anything
(:mod:`lca.data.chunks`, which the reader asks too).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import zarr

from lca.data.chunks import missing_chunks, missing_image_chunk
from lca.data.schema import EVERY_CHUNK_SINCE, LAYOUT_ARRAYS, group_names, open_store, validate
from lca.errors import Problem, StoreError


def check_store(
    url: str,
    *,
    sample: int | None = None,
    seed: int = 0,
    storage_options: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """Every problem of the store at ``url``; empty when it is valid and every chunk read decodes.

    Args:
        sample: read only this many random image chunks per array (``None``: all of them).
        seed: seed of that random choice.
    """
    try:
        root = open_store(str(url), "r", storage_options)
    except StoreError as error:
        return error.problems
    except Exception as error:  # unreadable metadata: name the cause
        return [Problem(str(url), f"cannot open: {type(error).__name__}: {error}")]
    problems = validate(root, str(url))
    if problems:
        return problems
    rng = np.random.default_rng(seed)
    layout = root.attrs["layout"]
    every_chunk = root.attrs["schema_version"] >= EVERY_CHUNK_SINCE
    for name in group_names(root):
        group = root[name]
        for spec in LAYOUT_ARRAYS[layout]:
            if spec.name not in group:
                continue
            array = group[spec.name]
            if spec.name in ("frames", "masks"):
                problems += _check_images(array, str(url), name, spec.name, sample, rng)
            else:
                problems += _check_small(array, str(url), name, spec.name, every_chunk)
    return problems


def _check_small(array: zarr.Array, store: str, group: str, name: str, every_chunk: bool) -> list[Problem]:
    missing = missing_chunks(array) if every_chunk else []  # schema v1 left out all-zero chunks
    if missing:
        return [Problem(store, f"chunk '{key}' is missing", group, name) for key in missing]
    try:
        values = array[...]
    except Exception as error:
        return [Problem(store, f"cannot read: {type(error).__name__}: {error}", group, name)]
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        return [Problem(store, f"{len(bad)} non-finite values", group, name, tuple(int(i) for i in bad[0]))]
    return []


def _check_images(
    array: zarr.Array, store: str, group: str, name: str, sample: int | None, rng: np.random.Generator
) -> list[Problem]:
    lead = array.shape[: len(array.shape) - (3 if name == "frames" else 2)]
    indices = list(itertools.product(*(range(n) for n in lead)))
    if sample is not None and sample < len(indices):
        indices = [indices[i] for i in sorted(rng.choice(len(indices), size=sample, replace=False))]
    problems = []
    for index in indices:
        missing = missing_image_chunk(array, index)
        if missing:
            problems.append(Problem(store, f"chunk '{missing}' is missing", group, name, index))
            continue
        try:
            array[index]
        except Exception as error:
            problems.append(
                Problem(
                    store, f"chunk cannot be decoded: {type(error).__name__}: {error}", group, name, index
                )
            )
    return problems
