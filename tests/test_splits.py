"""Splits are a rule of the person alone (docs/evaluation.md, "Splits"): synthetic people by index, captured
subjects by a hash of their id; so a test person stays a test person in every store."""

from __future__ import annotations

import hashlib

import pytest

from lca.splits import subject_split, synthetic_split


def test_synthetic_split_rule_on_the_first_people() -> None:
    expected = ["train", "train", "test", "train", "train", "test", "train", "val", "test", "train", "train"]
    assert [synthetic_split(i) for i in range(11)] == expected
    assert all(synthetic_split(i) == synthetic_split(i + 12) for i in range(100))
    with pytest.raises(ValueError, match="index is >= 0"):
        synthetic_split(-1)


def test_subject_split_reads_the_id_hash_against_the_shares() -> None:
    ids = [f"subject-{i:05d}" for i in range(20000)]
    splits = [subject_split(s) for s in ids]
    assert abs(splits.count("test") / len(ids) - 0.2) < 0.01
    assert abs(splits.count("val") / len(ids) - 0.05) < 0.005
    for subject, split in zip(ids[:200], splits[:200], strict=True):
        u = int(hashlib.sha256(subject.encode()).hexdigest()[:16], 16) / 16**16  # the rule, independently
        assert split == ("test" if u < 0.2 else "val" if u < 0.25 else "train")
    # a subject's split never depends on who else is imported, nor on the order
    assert [subject_split(s) for s in reversed(ids[:50])] == list(reversed(splits[:50]))
    assert subject_split("anyone", test_share=1.0, val_share=0.0) == "test"
    assert subject_split("anyone", test_share=0.0, val_share=0.0) == "train"


def test_subject_split_refuses_what_it_cannot_decide() -> None:
    with pytest.raises(ValueError, match="subject id is needed"):
        subject_split("")
    with pytest.raises(ValueError, match="sum to <= 1"):
        subject_split("ann", test_share=0.8, val_share=0.3)
