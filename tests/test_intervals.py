"""The 95% interval of held-out means resamples people, not images (lca.intervals): checked against a
plain numpy cluster bootstrap written here, and in the cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from lca.intervals import by_person, people_interval


def _naive_cluster_bootstrap(per_person: dict[str, list[float]], draws: int = 40000) -> tuple[float, float]:
    rng = np.random.default_rng(123)
    people = [np.asarray(v) for v in per_person.values()]
    means = []
    for _ in range(draws):
        chosen = rng.integers(0, len(people), len(people))
        images = np.concatenate([people[i] for i in chosen])
        means.append(images.mean())
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def test_interval_matches_a_plain_cluster_bootstrap() -> None:
    rng = np.random.default_rng(0)
    per_person = {
        f"p{i}": list(rng.normal(20 + 3 * rng.random(), 0.5, size=rng.integers(2, 9))) for i in range(12)
    }
    low, high = people_interval(per_person)
    ref_low, ref_high = _naive_cluster_bootstrap(per_person)
    assert low == pytest.approx(ref_low, abs=0.08) and high == pytest.approx(ref_high, abs=0.08)
    mean = np.mean(np.concatenate([np.asarray(v) for v in per_person.values()]))
    assert low < mean < high


def test_people_not_images_are_the_unit() -> None:
    """Two people, each with many identical images: resampling images would give a near-zero interval;
    resampling people spans from one person's value to the other's."""
    per_person = {"a": [20.0] * 50, "b": [30.0] * 50}
    low, high = people_interval(per_person)
    assert low == pytest.approx(20.0) and high == pytest.approx(30.0)


def test_identical_people_give_a_point_and_one_person_gives_none() -> None:
    low, high = people_interval({"a": [25.0, 25.0], "b": [25.0], "c": [25.0, 25.0, 25.0]})
    assert low == pytest.approx(25.0) and high == pytest.approx(25.0)
    assert people_interval({"a": [20.0, 21.0, 22.0]}) is None


def test_missing_values_are_left_out() -> None:
    """Face metrics of images without a visible face are None or NaN; a person left with none drops out."""
    per_person = {"a": [20.0, None, float("nan")], "b": [30.0], "c": [None]}
    assert people_interval(per_person) == pytest.approx(people_interval({"a": [20.0], "b": [30.0]}))


def test_by_person_groups_records() -> None:
    records = [{"identity": "a", "psnr": 1.0}, {"identity": "b", "psnr": 2.0}, {"identity": "a", "psnr": 3.0}]
    assert by_person(records, "psnr") == {"a": [1.0, 3.0], "b": [2.0]}
