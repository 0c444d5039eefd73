"""Whom a run saw: every training stage records, in the run folder, the store it read (location, layout,
fingerprint of its group list), the split and the identities of that split (``seen.json``). Evaluation reads
it back and refuses to call "held out" a person the run trained on (docs/evaluation.md).

Identities are compared by name, across stores: a synthetic person's identity is ``<layout>-s<seed>-<index>``
(the same person in any store made with that seed), a captured person's is their subject id.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lca.contracts.dataset import Provenance
from lca.data.json_file import write_json_atomically
from lca.errors import SeenInTrainingError

SEEN_FILE = "seen.json"


def record_stage(run_dir: Path, stage: str, data: str, provenance: Provenance) -> None:
    """Add (or replace) ``stage``'s record in ``run_dir/seen.json``, atomically."""
    path = Path(run_dir) / SEEN_FILE
    records = load_records(run_dir) or {}
    records[stage] = {"data": data, **dataclasses.asdict(provenance)}
    write_json_atomically(path, {"stages": records})


def load_records(run_dir: Path) -> dict[str, dict[str, Any]] | None:
    """``{stage: record}`` of a run folder, or None when the run recorded nothing (a run of an older
    toolkit, or a bare checkpoint folder)."""
    path = Path(run_dir) / SEEN_FILE
    if not path.is_file():
        return None
    return dict(json.loads(path.read_text(encoding="utf-8"))["stages"])


def seen_by(records: Mapping[str, Mapping[str, Any]], identities: Iterable[str]) -> dict[str, list[str]]:
    """``{identity: [stages that trained on it]}`` for each of ``identities`` some stage saw."""
    found: dict[str, list[str]] = {}
    for identity in identities:
        stages = [stage for stage, record in records.items() if identity in record["identities"]]
        if stages:
            found[identity] = stages
    return found


def check_held_out(
    records: Mapping[str, Mapping[str, Any]] | None,
    identities: Iterable[str],
    *,
    where: str,
    allow_seen: bool,
) -> dict[str, list[str]]:
    """The evaluated ``identities`` a run trained on (``{identity: stages}``; empty when none). Raises
    :class:`SeenInTrainingError` naming them unless ``allow_seen``; with it, the caller marks its results."""
    seen = seen_by(records or {}, identities)
    if seen and not allow_seen:
        raise SeenInTrainingError(where, seen)
    return seen
