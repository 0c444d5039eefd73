"""Which split a person belongs to: a rule of the person alone, so a split never moves.

A person who is ``test`` in one store is ``test`` in every store that holds them: adding people, writing
them in another order or importing more subjects never moves anyone from ``test`` into ``train``. Two
rules, one for each way people get their identity (docs/evaluation.md, "Splits"):

- **Synthetic people** are numbered (a person is a function of the generator's seed and their index), so
  the split is a function of the index: every third person is ``test`` (``index % 3 == 2``), one in twelve
  ``val`` (``index % 12 == 7``), the rest ``train``. Any prefix of the people (a store of 20, of 40, of 64)
  has about a third of them in ``test`` and the same people there.
- **Captured people** have a subject id (a name, a dataset's subject number). The split is read from a
  hash of it: ``sha256(id)`` as a number in [0, 1) below :data:`TEST_SHARE` is ``test``, below
  ``TEST_SHARE + VAL_SHARE`` ``val``. Where a dataset publishes an official split list, the importer takes
  that instead (an explicit split in its config).

Nothing here reads a store; writers record the split as each group's ``split`` attribute.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")

TEST_EVERY, TEST_AT = 3, 2
"""Synthetic person ``index`` is ``test`` when ``index % TEST_EVERY == TEST_AT``."""
VAL_EVERY, VAL_AT = 12, 7
"""... and ``val`` when ``index % VAL_EVERY == VAL_AT`` (never a test index: 7 % 3 == 1)."""

TEST_SHARE = 0.2
"""Share of captured subjects (by id hash) in ``test``."""
VAL_SHARE = 0.05
"""Share of captured subjects (by id hash) in ``val``."""


def synthetic_split(index: int) -> str:
    """The split of synthetic person ``index`` (any seed): test, val or train by the index rule above."""
    if index < 0:
        raise ValueError(f"a synthetic person's index is >= 0; got {index}")
    if index % TEST_EVERY == TEST_AT:
        return "test"
    return "val" if index % VAL_EVERY == VAL_AT else "train"


def subject_split(subject: str, test_share: float = TEST_SHARE, val_share: float = VAL_SHARE) -> str:
    """The split of a captured subject from its id alone: ``sha256(id)`` read as a uniform number in
    [0, 1) against the shares (so a subject keeps its split however many others are imported)."""
    if not subject:
        raise ValueError("a subject id is needed to choose its split (got an empty id)")
    if not (test_share >= 0 and val_share >= 0 and test_share + val_share <= 1):
        raise ValueError(f"split shares must be >= 0 and sum to <= 1; got test {test_share}, val {val_share}")
    digest = hashlib.sha256(subject.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test_share:
        return "test"
    return "val" if u < test_share + val_share else "train"
