"""The 95% interval of held-out means resamples people, not images (lca.intervals): checked against a
plain numpy cluster bootstrap written here, and in the cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from lca.errors import LcaError
from lca.intervals import by_person, paired_differences, people_interval


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


def _records(values: dict[str, list[float | None]]) -> list[dict]:
    """Per-image records as `evaluate_store` writes them: one group per person, camera = image index."""
    return [
        {"group": f"g-{person}", "identity": person, "frame": 0, "camera": i, "psnr": value}
        for person, images in values.items()
        for i, value in enumerate(images)
    ]


def test_paired_differences_of_a_constant_shift_are_that_shift() -> None:
    rng = np.random.default_rng(1)
    a = {f"p{i}": list(rng.normal(18 + 4 * i, 1.0, size=3)) for i in range(6)}
    b = {person: [v - 1.5 for v in images] for person, images in a.items()}
    differences = paired_differences(_records(a), _records(b), "psnr")
    assert all(v == pytest.approx(1.5) for images in differences.values() for v in images)
    low, high = people_interval(differences)
    assert low == pytest.approx(1.5) and high == pytest.approx(1.5)


def test_pairing_removes_each_persons_difficulty() -> None:
    """People 10 dB apart, one model 0.3 dB ahead of the other with small per-image noise: the unpaired
    intervals of the two overlap almost entirely, the paired one excludes zero and matches a plain cluster
    bootstrap of the differences computed here."""
    rng = np.random.default_rng(2)
    base = {f"p{i}": list(rng.normal(15 + 10 * rng.random(), 0.5, size=4)) for i in range(10)}
    better = {p: [v + 0.3 + rng.normal(0, 0.1) for v in images] for p, images in base.items()}
    differences = paired_differences(_records(better), _records(base), "psnr")
    low, high = people_interval(differences)
    by_hand = {p: [x - y for x, y in zip(better[p], base[p], strict=True)] for p in base}
    ref_low, ref_high = _naive_cluster_bootstrap(by_hand)
    assert low == pytest.approx(ref_low, abs=0.02) and high == pytest.approx(ref_high, abs=0.02)
    assert 0 < low < 0.3 < high
    unpaired_low, unpaired_high = people_interval(base)
    assert high - low < (unpaired_high - unpaired_low) / 10


def test_paired_differences_refuse_different_images_and_skip_missing_values() -> None:
    a = _records({"p": [20.0, 21.0], "q": [22.0, None]})
    with pytest.raises(LcaError, match=r"same images on both sides; 1 differ.*'camera': 1"):
        paired_differences(a, a[:1] + a[2:], "psnr")
    differences = paired_differences(a, _records({"p": [19.0, 20.0], "q": [21.0, 25.0]}), "psnr")
    assert differences == {"p": [1.0, 1.0], "q": [1.0, None]}
