"""Atomic checkpoints: round trip, weights_only state, corrupt ones refused with a fallback, pruning,
and the error naming differing slots."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_toy import toy_config, toy_registry

from lca.train import checkpoint as ckpt


def _save(directory: Path, step: int, model: torch.nn.Module, *, final: bool = False, config=None) -> Path:
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "rng": ckpt.capture_rng_state(),
        "bad_steps": 0,
    }
    signature = ckpt.model_signature(config) if config is not None else {}
    meta = {
        "stage": "fit",
        "stage_index": 0,
        "step": step,
        "final": final,
        "pipeline": "toy",
        "signature": signature,
    }
    name = ckpt.FINAL if final else ckpt.step_name(step)
    return ckpt.save_checkpoint(
        directory, name, model=model, state=state, ema=None, config_yaml="x: 1\n", meta=meta
    )


def test_round_trip_and_weights_only_state(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    path = _save(tmp_path, 2, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000002"]  # no temporary left
    found = ckpt.verify(path)
    assert (found.stage, found.step, found.final) == ("fit", 2, False)
    other = torch.nn.Linear(3, 2)
    ckpt.load_weights(found, other)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True)
    )
    state = ckpt.load_state(found)  # torch.load(weights_only=True) inside
    assert state["step"] == 2 and "exp_avg" in state["optimizer"]["state"][0]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_never_written(tmp_path: Path, value: float) -> None:
    """A checkpoint is refused before anything is written (the earlier one stays the newest), naming the
    tensor; a huge but finite weight (whose sum overflows) is written as it is."""
    model = torch.nn.Linear(3, 2)
    earlier = _save(tmp_path, 2, model)
    with torch.no_grad():
        model.bias[1] = value
    with pytest.raises(ckpt.CheckpointError, match=r"non-finite weights in model\.bias"):
        _save(tmp_path, 4, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000002"]
    assert ckpt.find_latest(tmp_path).path == earlier
    with torch.no_grad():
        model.bias[:] = 3e38  # finite; their sum is not
    assert ckpt.verify(_save(tmp_path, 6, model)).step == 6


def test_rng_state_round_trip() -> None:
    state = ckpt.capture_rng_state()
    first = torch.rand(3), __import__("numpy").random.rand(), __import__("random").random()
    ckpt.restore_rng_state(state)
    assert torch.equal(torch.rand(3), first[0])
    assert __import__("numpy").random.rand() == first[1] and __import__("random").random() == first[2]


def test_corrupt_checkpoint_is_refused_and_the_previous_one_used(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    _save(tmp_path, 2, model)
    newest = _save(tmp_path, 4, model)
    weights = newest / ckpt.MODEL_FILE
    weights.write_bytes(weights.read_bytes()[:-7])  # truncated
    with pytest.raises(ckpt.CorruptCheckpointError, match=r"model\.safetensors is corrupt or truncated"):
        ckpt.verify(newest)
    with pytest.warns(UserWarning, match="step-000004.*Looking for an earlier valid one"):
        found = ckpt.find_latest(tmp_path)
    assert found is not None and found.step == 2


BAD_META = {
    "null": None,
    "a list": [1, 2],
    "a string": "meta",
    "no stage": {"stage_index": 0, "step": 4, "final": False, "files": {}},
    "step as text": {"stage": "fit", "stage_index": 0, "step": "4", "final": False, "files": {}},
    "negative step": {"stage": "fit", "stage_index": 0, "step": -4, "final": False, "files": {}},
    "final as int": {"stage": "fit", "stage_index": 0, "step": 4, "final": 1, "files": {}},
    "files a list": {"stage": "fit", "stage_index": 0, "step": 4, "final": False, "files": ["a"]},
}


@pytest.mark.parametrize("content", BAD_META)
def test_malformed_meta_is_refused_by_name_and_the_previous_checkpoint_used(
    tmp_path: Path, content: str
) -> None:
    """Valid JSON of the wrong shape in the newest checkpoint's meta.json: a warning naming it and what is
    wrong, and resuming uses the checkpoint before (never a TypeError on every --resume)."""
    import json

    model = torch.nn.Linear(3, 2)
    _save(tmp_path, 2, model)
    newest = _save(tmp_path, 4, model)
    (newest / ckpt.META_FILE).write_text(json.dumps(BAD_META[content]))
    with pytest.raises(ckpt.CorruptCheckpointError, match=r"step-000004: meta\.json is malformed"):
        ckpt.verify(newest)
    with pytest.warns(UserWarning, match=r"step-000004: meta\.json is malformed.*Skipping it"):
        found = ckpt.find_latest(tmp_path)
    assert found is not None and found.step == 2


def test_incomplete_directory_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "step-000009").mkdir()  # a directory without meta.json
    with pytest.warns(UserWarning, match="step-000009 is incomplete"):
        assert ckpt.find_latest(tmp_path) is None
    _save(tmp_path, 2, torch.nn.Linear(3, 2))
    with pytest.warns(UserWarning, match="step-000009 is incomplete.*Skipping it"):  # named every time
        assert ckpt.find_latest(tmp_path).step == 2


def test_prune_keeps_the_last_n_and_final(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    for step in (2, 4, 6):
        _save(tmp_path, step, model)
    _save(tmp_path, 6, model, final=True)
    (tmp_path / ".tmp-step-000008-1").mkdir()
    ckpt.prune(tmp_path, keep_last=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final", "step-000004", "step-000006"]
    assert ckpt.find_latest(tmp_path).final


def test_mismatched_pipeline_names_the_differing_slots(tmp_path: Path) -> None:
    registry = toy_registry()
    ours = toy_config(registry, tmp_path)
    path = _save(tmp_path, 2, torch.nn.Linear(3, 2), config=ours)
    theirs = toy_config(registry, tmp_path, ["encoder=toy-other", "model.width=32"])
    ckpt.check_compatible(ckpt.verify(path), ours)
    with pytest.raises(ckpt.CheckpointMismatchError) as error:
        ckpt.check_compatible(ckpt.verify(path), theirs)
    message = str(error.value)
    assert "encoder: checkpoint has toy, this run has toy-other" in message
    assert "model.width: checkpoint has 64, this run has 32" in message
    assert "decoder" not in message
