"""The notebooks train through the trainer's own stage loop: `compare.train_small` gives the weights
`lca train` writes, bit for bit, with every stage option honoured (init_from through the earlier stage,
freezing, layer decay, gradient accumulation, EMA)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from train_toy import toy_config, toy_factory, toy_registry

from lca import compare
from lca.train import checkpoint as ckpt
from lca.train import train


def _checkpoint(run_dir: Path, stage: str, file: str = ckpt.MODEL_FILE) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "checkpoints" / stage / "final" / file)


def _assert_equal(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        assert torch.equal(value, theirs[key]), key


def test_train_small_equals_the_trainer_through_init_from_freeze_accumulation_and_ema(tmp_path: Path) -> None:
    registry = toy_registry()
    config = toy_config(registry, tmp_path, ["run.ema_decay=0.8"], grad_accumulation=2)
    run_dir = train(config, run_dir=tmp_path / "run", registry=registry, model_factory=toy_factory)

    result = compare.train_small(config, "tune", registry=registry, model_factory=toy_factory)

    ours = result.model.state_dict()
    _assert_equal(ours, _checkpoint(run_dir, "tune"))
    # the tune stage froze the encoder: it still holds the fit stage's final weights
    fit = _checkpoint(run_dir, "fit")
    assert torch.equal(ours["encoder.weight"], fit["encoder.weight"])
    assert not torch.equal(ours["head.weight"], fit["head.weight"])
    assert result.ema is not None
    _assert_equal(result.ema.state_dict(), _checkpoint(run_dir, "tune", ckpt.EMA_FILE))
    assert len(result.losses) == config.stage("tune").steps


def test_train_small_records_losses_and_evaluations_of_the_asked_stage(tmp_path: Path) -> None:
    registry = toy_registry()
    config = toy_config(registry, tmp_path)
    seen: list[bool] = []

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        seen.append(model.training)
        return {"head": float(model.head.weight.detach().sum())}

    result = compare.train_small(
        config, "fit", evaluate=evaluate, eval_every=3, registry=registry, model_factory=toy_factory
    )
    assert [step for step, _ in result.evaluations] == [0, 3, 6]
    assert seen == [False, False, False]  # evaluated in eval mode
    assert len(result.losses) == 6 and all(loss > 0 for loss in result.losses)
    assert result.evaluations[0][1] != result.evaluations[-1][1]


def test_a_checkpoint_path_in_init_from_is_loaded(tmp_path: Path) -> None:
    registry = toy_registry()
    config = toy_config(registry, tmp_path)
    run_dir = train(
        config, stage="fit", run_dir=tmp_path / "run", registry=registry, model_factory=toy_factory
    )
    final = run_dir / "checkpoints" / "fit" / "final"
    from_path = toy_config(
        registry, tmp_path, [f"schedule.tune.init_from={final}", "schedule.tune.freeze=[head]"]
    )
    result = compare.train_small(from_path, "tune", registry=registry, model_factory=toy_factory)
    assert torch.equal(result.model.state_dict()["head.weight"], _checkpoint(run_dir, "fit")["head.weight"])
