"""Checkpoints that survive a crash at any instant, and are loaded without unpickling arbitrary objects.

Layout (one directory per checkpoint, under ``<run>/checkpoints/<stage>/``)::

    step-000200/              periodic; the last ``run.keep_last`` of a stage are kept
    final/                    the stage's final weights; never pruned
        model.safetensors     the model's weights (safetensors)
        ema.safetensors       the EMA weights, when ``run.ema_decay`` is set: the model's names, so
                              they load like model.safetensors (``lca eval --ema``); the number of
                              updates averaged is in the file's metadata (``ema_updates``), for resuming
        state.pt              optimizer, scheduler, RNG and step state: tensors, dicts, lists and numbers
                              only, so it loads with ``torch.load(weights_only=True)`` (an FSDP run's
                              optimizer state is in ``sharded/`` instead)
        sharded/              FSDP runs (``run.parallel: fsdp``), periodic checkpoints: every process's
                              shard of the weights and optimizer state (``torch.distributed.checkpoint``)
        config.yaml           the resolved pipeline config with versions
        meta.json             stage, step, model signature (slot types) and the sha256 of every file above

Atomicity: everything is written into ``.tmp-<name>-<pid>/``, each file fsynced, ``meta.json`` last, then the
directory is renamed into place with ``os.replace`` and its parent fsynced (an FSDP run's processes write
their shards into that same temporary directory first, and the main process checksums them with the rest).
A ``kill -9`` therefore leaves either the complete checkpoint or a temporary directory that is ignored (and
removed by the next save). A checkpoint whose files do not match their recorded sha256 (truncated, bit rot,
edited) is refused with a message naming the file, and :func:`find_latest` falls back to the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError
from safetensors import safe_open
from safetensors.torch import load_model, save_file, save_model
from torch import nn
from torch.optim.swa_utils import AveragedModel

from lca.errors import LcaError
from lca.finite import non_finite_names

FORMAT = 1
MODEL_FILE, EMA_FILE, STATE_FILE, CONFIG_FILE, META_FILE = (
    "model.safetensors",
    "ema.safetensors",
    "state.pt",
    "config.yaml",
    "meta.json",
)
FINAL = "final"
EMA_UPDATES = "ema_updates"
"""Metadata key of ``ema.safetensors``: how many updates the average holds (a resumed average continues)."""
_STEP_DIR = re.compile(r"^step-(\d+)$")


class CheckpointError(LcaError):
    """A checkpoint that cannot be used: missing, corrupt or from another pipeline."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint directory whose files are missing or do not match their recorded checksums."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint written by a pipeline with other components (names the differing slots)."""


class _Meta(BaseModel):
    """The fields of ``meta.json`` that reading relies on, checked before use (others are kept as written)."""

    model_config = ConfigDict(extra="allow")
    stage: StrictStr
    stage_index: StrictInt = Field(ge=0)
    step: StrictInt = Field(ge=0)
    final: StrictBool
    files: dict[StrictStr, StrictStr]


def _read_meta(path: Path) -> dict[str, Any]:
    """``path/meta.json`` parsed and checked; :class:`CorruptCheckpointError` naming what is wrong."""
    meta_path = path / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptCheckpointError(f"Checkpoint {path} is incomplete: it has no {META_FILE}.") from None
    except (OSError, ValueError) as error:
        raise CorruptCheckpointError(f"Checkpoint {path}: {META_FILE} is unreadable ({error}).") from error
    try:
        _Meta.model_validate(meta)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'the file'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise CorruptCheckpointError(f"Checkpoint {path}: {META_FILE} is malformed ({problems}).") from None
    return meta


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint directory and what its ``meta.json`` says."""

    path: Path
    stage: str
    stage_index: int
    step: int
    final: bool
    meta: dict[str, Any]

    @property
    def order(self) -> tuple[int, int, int]:
        """Later stages, then later steps, then final over periodic: the resume order."""
        return (self.stage_index, self.step, int(self.final))


# ------------------------------------------------------------------------------------------ signature
def model_signature(config: Any) -> dict[str, str]:
    """What must agree for weights to be reused: every model slot's component type, the driver set and
    the shared model dimensions (``model.*``). Dataset slots do not count (stages read other data)."""
    data = config.to_dict()
    signature = {}
    for slot, body in data["slots"].items():
        if slot == "data":
            continue
        if slot == "drivers":
            for member, member_body in body.items():
                signature[f"drivers.{member}"] = str(member_body["type"])
        else:
            signature[slot] = str(body["type"])
    for field, value in data["model"].items():
        if field != "grad_checkpointing":  # a runtime option, not an architecture change
            signature[f"model.{field}"] = json.dumps(value)
    return signature


def check_compatible(checkpoint: Checkpoint, config: Any) -> None:
    """Raise :class:`CheckpointMismatchError` naming each slot that differs from ``config``'s."""
    theirs: Mapping[str, str] = checkpoint.meta.get("signature", {})
    ours = model_signature(config)
    differing = [
        f"  - {key}: checkpoint has {theirs.get(key, '(none)')}, this run has {ours.get(key, '(none)')}"
        for key in sorted(set(theirs) | set(ours))
        if theirs.get(key) != ours.get(key)
    ]
    if differing:
        raise CheckpointMismatchError(
            f"Checkpoint {checkpoint.path} was written by pipeline "
            f"'{checkpoint.meta.get('pipeline')}' with other components "
            f"than pipeline '{config.name}'; differing slots:\n" + "\n".join(differing)
        )


# ------------------------------------------------------------------------------------------ RNG state
def capture_rng_state() -> dict[str, Any]:
    """Every global generator's state as tensors, lists and numbers (weights_only-loadable)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------ writing
def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def step_name(step: int) -> str:
    return f"step-{step:06d}"


def save_checkpoint(
    directory: Path,
    name: str,
    *,
    model: nn.Module | Mapping[str, torch.Tensor],
    state: Mapping[str, Any] | None,
    ema: AveragedModel | None,
    config_yaml: str,
    meta: Mapping[str, Any],
    temporary: Path | None = None,
) -> Path:
    """Write ``directory/name`` atomically (see the module doc) and return its path. ``model`` is a module or
    its state dict (e.g. the full weights gathered from shards). ``meta`` must hold ``stage``,
    ``stage_index``, ``step``, ``final``, ``pipeline`` and ``signature``; an existing checkpoint of the same
    name is replaced as a whole. ``temporary``: a folder under ``directory`` already holding files other
    processes wrote for this checkpoint (the shards of an FSDP run); they are checksummed and moved into
    place with the rest."""
    weights = dict(model) if isinstance(model, Mapping) else model.state_dict()
    named = {f"model.{k}": v for k, v in weights.items()}
    if ema is not None:
        named |= {f"ema.{k}": v for k, v in ema.module.state_dict().items()}
    bad = non_finite_names(named)
    if bad:  # refused before anything is written: the previous checkpoint stays the newest
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CheckpointError(
            f"Refusing to write checkpoint {directory / name}: non-finite weights in {shown}. The earlier "
            "checkpoints are untouched; a non-finite weight means a step slipped past the non-finite guard "
            "(a custom loss or optimizer?), so resume from the last good one with a lower lr."
        )
    directory.mkdir(parents=True, exist_ok=True)
    if temporary is None:
        temporary = directory / f".tmp-{name}-{os.getpid()}"
        if temporary.exists():
            shutil.rmtree(temporary)
        temporary.mkdir()
    if isinstance(model, Mapping):
        save_file({k: v.contiguous() for k, v in weights.items()}, str(temporary / MODEL_FILE))
    else:
        save_model(model, str(temporary / MODEL_FILE))
    if ema is not None:  # the averaged model alone: the same names as model.safetensors
        updates = {EMA_UPDATES: str(int(ema.n_averaged))}
        save_model(ema.module, str(temporary / EMA_FILE), metadata=updates)
    if state is not None:
        torch.save(dict(state), temporary / STATE_FILE)
    (temporary / CONFIG_FILE).write_text(config_yaml, encoding="utf-8")
    files = sorted(p.relative_to(temporary).as_posix() for p in temporary.rglob("*") if p.is_file())
    for file in files:
        _fsync_file(temporary / file)
    record = {"format": FORMAT, **meta, "files": {f: _sha256(temporary / f) for f in files}}
    (temporary / META_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    _fsync_file(temporary / META_FILE)
    for folder in sorted({(temporary / f).parent for f in files}, reverse=True):
        _fsync_dir(folder)
    final = directory / name
    if final.exists():  # os.replace cannot replace a non-empty directory: move the old one aside first
        stale = directory / f".tmp-old-{name}-{os.getpid()}"
        os.replace(final, stale)
        os.replace(temporary, final)
        shutil.rmtree(stale)
    else:
        os.replace(temporary, final)
    _fsync_dir(directory)
    return final


def prune(directory: Path, keep_last: int) -> None:
    """Keep the newest ``keep_last`` periodic checkpoints of a stage directory (and ``final``); remove
    older ones and temporary directories left by interrupted saves of this or earlier processes."""
    periodic = sorted(
        (int(m.group(1)), p) for p in directory.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()
    )
    for _, path in periodic[: max(0, len(periodic) - keep_last)]:
        shutil.rmtree(path)
    for path in directory.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------------------ reading
def verify(path: Path) -> Checkpoint:
    """Read ``meta.json`` and check every recorded file against its sha256; raise
    :class:`CorruptCheckpointError` naming what is wrong."""
    meta = _read_meta(path)
    for file, digest in meta["files"].items():
        if not (path / file).is_file():
            raise CorruptCheckpointError(f"Checkpoint {path} is missing {file}.")
        if _sha256(path / file) != digest:
            raise CorruptCheckpointError(
                f"Checkpoint {path}: {file} is corrupt or truncated (its sha256 differs from the "
                f"one recorded when it was written); refusing it."
            )
    if MODEL_FILE not in meta["files"]:
        raise CorruptCheckpointError(f"Checkpoint {path} records no {MODEL_FILE}.")
    return Checkpoint(path, meta["stage"], meta["stage_index"], meta["step"], meta["final"], meta)


def _candidates(root: Path) -> list[Path]:
    """Checkpoint directories at ``root`` itself or up to three levels below it (run or stage dir)."""
    if (root / META_FILE).exists():
        return [root]
    found = []
    for pattern in ("*", "*/*", "*/*/*"):
        found += [
            p for p in root.glob(pattern) if p.is_dir() and (_STEP_DIR.match(p.name) or p.name == FINAL)
        ]
    return found


def find_latest(root: Path, *, stage: str | None = None) -> Checkpoint | None:
    """The newest valid checkpoint under ``root`` (a run, its ``checkpoints`` folder, a stage folder or a
    checkpoint itself), optionally only of ``stage``. Corrupt ones are refused with a warning naming them,
    and the one before is used."""
    if not root.exists():
        return None
    ordered = []
    for path in _candidates(root):
        try:
            meta = _read_meta(path)
        except CorruptCheckpointError as error:  # its place in the order is unknown: named, never used
            _refuse(error, "Skipping it.")
            continue
        ordered.append(((meta["stage_index"], meta["step"], int(meta["final"])), path))
    for _, path in sorted(ordered, key=lambda item: item[0], reverse=True):
        try:
            checkpoint = verify(path)
        except CorruptCheckpointError as error:
            _refuse(error, "Looking for an earlier valid one.")
            continue
        if stage is None or checkpoint.stage == stage:
            return checkpoint
    return None


def _refuse(error: CorruptCheckpointError, then: str) -> None:
    warnings.warn(f"{error} {then}", stacklevel=3)


def resolve(reference: str | Path) -> Checkpoint:
    """A checkpoint from a path: a checkpoint directory, or the newest valid one under a stage/run folder."""
    path = Path(reference)
    if not path.exists():
        raise CheckpointError(f"Checkpoint path {path} does not exist.")
    found = verify(path) if (path / META_FILE).exists() else find_latest(path)
    if found is None:
        raise CheckpointError(f"No valid checkpoint under {path}.")
    return found


def load_weights(checkpoint: Checkpoint, model: nn.Module, *, ema: bool = False) -> None:
    """Load the checkpoint's (or its EMA's) weights into ``model`` (the model itself, not an averaging
    wrapper: :func:`load_ema` resumes one); a shape or name mismatch is an error that names the
    checkpoint."""
    file = EMA_FILE if ema else MODEL_FILE
    if file not in checkpoint.meta["files"]:
        raise CheckpointError(f"Checkpoint {checkpoint.path} has no {file}.")
    try:
        load_model(model, str(checkpoint.path / file), strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"Checkpoint {checkpoint.path / file} does not fit this model: {error}"
        ) from error


def load_ema(checkpoint: Checkpoint, averaged: AveragedModel) -> None:
    """Resume an average (:func:`lca.train.optim.build_ema`) from the checkpoint's EMA: its weights and the
    number of updates it holds (with none, the next update would restart it from the current weights)."""
    load_weights(checkpoint, averaged.module, ema=True)
    with safe_open(str(checkpoint.path / EMA_FILE), framework="pt") as file:
        updates = (file.metadata() or {}).get(EMA_UPDATES)
    if updates is None:
        raise CheckpointError(
            f"Checkpoint {checkpoint.path / EMA_FILE} does not say how many updates its average holds "
            f"(no {EMA_UPDATES!r} metadata), so the EMA cannot continue: resume from another checkpoint "
            "or start the stage again."
        )
    averaged.n_averaged.fill_(int(updates))


def load_state(checkpoint: Checkpoint) -> dict[str, Any]:
    """The optimizer/scheduler/RNG/step state, loaded with ``weights_only=True``."""
    if STATE_FILE not in checkpoint.meta["files"]:
        raise CheckpointError(
            f"Checkpoint {checkpoint.path} holds weights only (no {STATE_FILE}); it cannot resume."
        )
    return torch.load(checkpoint.path / STATE_FILE, weights_only=True, map_location="cpu")
