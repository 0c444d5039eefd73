"""``lca data check STORE``: validate the schema, then read every image chunk (or a random sample).

Zarr returns the fill value for a chunk that does not exist, so a lost chunk file would read as a
black frame. The writer stores every chunk (``write_empty_chunks``), which makes a missing chunk a
defect that this check reports by key before decoding anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync  # zarr's own bridge to its async store API (no public sync `exists`)

from lca.data.schema import LAYOUT_ARRAYS, group_names, open_store, validate
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
    for name in group_names(root):
        group = root[name]
        for spec in LAYOUT_ARRAYS[layout]:
            if spec.name not in group:
                continue
            array = group[spec.name]
            if spec.name in ("frames", "masks"):
                problems += _check_images(array, str(url), name, spec.name, sample, rng)
            else:
                problems += _check_small(array, str(url), name, spec.name)
    return problems


def _check_small(array: zarr.Array, store: str, group: str, name: str) -> list[Problem]:
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
    tail = (0,) * (array.ndim - len(lead))
    for index in indices:
        key = f"{array.path}/{array.metadata.encode_chunk_key((*index, *tail))}"
        if not sync(array.store.exists(key)):
            problems.append(Problem(store, f"chunk '{key}' is missing", group, name, index))
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
