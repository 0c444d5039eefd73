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
