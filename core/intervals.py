"""Confidence intervals of held-out metrics, resampling *people*, not images (docs/evaluation.md).

A metric's mean over held-out images is an average over a few people with several images each; images of
one person are strongly correlated, so resampling images would pretend to far more evidence than there
is. The interval here is scipy's percentile bootstrap of the image mean with people as the resampled unit
(a cluster bootstrap): draw as many people as there are, with replacement, and take the mean over all
their images. With one person there is nothing to resample and no interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from scipy.stats import bootstrap

from lca.errors import LcaError

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
"""Fixed, so the same numbers always give the same interval."""


def _mean_of_images(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    return sums.sum(axis=axis) / counts.sum(axis=axis)


def people_interval(
    per_person: Mapping[str, Iterable[float | None]], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The ``confidence`` interval of the mean over all images when people are resampled.

    ``per_person`` maps a person to their images' values; ``None`` and NaN values (e.g. face metrics of
    images without a visible face) are left out, and so is a person left with none. Returns None with
    fewer than two people."""
    sums, counts = [], []
    for values in per_person.values():
        kept = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=np.float64)
        if kept.size:
            sums.append(kept.sum())
            counts.append(kept.size)
    if len(sums) < 2:
        return None
    result = bootstrap(
        (np.asarray(sums), np.asarray(counts, dtype=np.float64)),
        _mean_of_images,
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(SEED),
    )
    low, high = result.confidence_interval
    return float(low), float(high)


def by_person(records: Iterable[Mapping[str, Any]], key: str, person: str = "identity") -> dict[str, list]:
    """``{person: [record[key] ...]}`` from per-image records."""
    grouped: dict[str, list] = {}
    for record in records:
        grouped.setdefault(str(record[person]), []).append(record.get(key))
    return grouped


def paired_differences(
    a: Iterable[Mapping[str, Any]],
    b: Iterable[Mapping[str, Any]],
    key: str,
    match: tuple[str, ...] = ("group", "frame", "camera"),
    person: str = "identity",
) -> dict[str, list[float | None]]:
    """``{person: [a[key] - b[key] per image]}`` of two evaluations of the same images (per-image records of
    :func:`lca.evaluate.evaluate_store`, matched by ``match``).

    Two predictors scored on the same people share each person's difficulty, which dominates an unpaired
    interval; the interval of the paired differences (:func:`people_interval` of this) is what says
    whether one beats the other on these people. A missing value on either side gives None (left out).
    Raises :class:`~lca.errors.LcaError` naming an image that only one side evaluated."""

    def index(records: Iterable[Mapping[str, Any]]) -> dict[tuple, Mapping[str, Any]]:
        return {tuple(r[m] for m in match): r for r in records}

    left, right = index(a), index(b)
    if left.keys() != right.keys():
        only = sorted(left.keys() ^ right.keys(), key=str)
        raise LcaError(
            f"paired differences need the same images on both sides; {len(only)} differ, e.g. "
            f"{dict(zip(match, only[0], strict=True))}: evaluate both on the same store, split and views."
        )
    out: dict[str, list[float | None]] = {}
    for image, x in left.items():
        y = right[image]
        value = None if x.get(key) is None or y.get(key) is None else float(x[key]) - float(y[key])
        out.setdefault(str(x[person]), []).append(value)
    return out
