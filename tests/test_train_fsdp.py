"""FSDP (``run.parallel=fsdp``, torch's FSDP2) on the CPU: lca-tiny at test size trained by 2 gloo processes
launched with ``accelerate launch``, against the same run under DDP (2 micro-batches per step, so gradient
accumulation without reduction is exercised too).

- the loss trajectory and the final weights equal DDP's within 1e-5 (relative; measured: identical);
- the periodic checkpoints hold real shards (every split parameter and its Adam moments in two chunks, one
  per process, in the ``torch.distributed.checkpoint`` metadata) beside the gathered full weights;
- a run resumed from a sharded checkpoint ends with exactly the straight run's weights;
- a damaged shard is refused by name and the previous checkpoint used;
- the mistakes: FSDP in one process, FSDP with an EMA, resuming a sharded checkpoint under DDP."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lca.cli import main
from lca.config import resolve_pipeline
from lca.errors import LcaError
from lca.testing.launch import accelerate_cpu_launch
from lca.train import TrainingError, train
from lca.train import checkpoint as ckpt

PIPELINE = "lca-tiny-posttrain-only"
STEPS, EVERY = 6, 2


def _overrides(store: Path) -> list[str]:
    return [
        "template.num_anchors=128",
        "template.num_head_anchors=64",
        "model.width=32",
        f"data.studio.path={store}",
        "data.studio.image_size=32",
        "data.studio.face_crop_size=16",
        f"schedule.posttrain.steps={STEPS}",
        "schedule.posttrain.warmup_steps=1",
        "schedule.posttrain.batch_size=1",
        "schedule.posttrain.grad_accumulation=2",  # the micro-batch before the last reduces nothing
        f"run.checkpoint_every={EVERY}",
        "run.log_every=1",
    ]


def _launch(run_dir: Path, store: Path, parallel: str, *extra: str) -> None:
    """``accelerate launch`` of 2 CPU processes training the test pipeline into ``run_dir``."""
    command = [
        *accelerate_cpu_launch(2),
        "-m",
        "lca",
        "train",
        PIPELINE,
        "--run-dir",
        str(run_dir),
        *_overrides(store),
        f"run.parallel={parallel}",
        *extra,
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    finished = (run_dir / "checkpoints" / "posttrain" / ckpt.FINAL / ckpt.META_FILE).is_file()
    if (
        result.returncode != 0
        and finished
        and "terminate called without an active exception" in result.stderr
    ):
        return  # gloo's known abort at interpreter teardown, after the run completed (docs/training.md)
    assert result.returncode == 0, result.stderr[-3000:]


def _losses(run_dir: Path) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return [event.value for event in events.Scalars("posttrain/loss/total")]


def _final(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "checkpoints" / "posttrain" / ckpt.FINAL / ckpt.MODEL_FILE)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lca.data.synth import synthesize

    out = tmp_path_factory.mktemp("fsdp-store") / "studio.zarr"
    return synthesize("studio", out, identities=2, frames=3, cameras=3, resolution=48, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, store: Path) -> dict[str, Path]:
    """The same training under DDP and under FSDP, straight through."""
    root = tmp_path_factory.mktemp("fsdp-runs")
    for parallel in ("ddp", "fsdp"):
        _launch(root / parallel, store, parallel)
    return {parallel: root / parallel for parallel in ("ddp", "fsdp")}


def test_fsdp_trains_like_ddp(runs: dict[str, Path]) -> None:
    ddp, fsdp = _losses(runs["ddp"]), _losses(runs["fsdp"])
    assert len(ddp) == len(fsdp) == STEPS
    torch.testing.assert_close(torch.tensor(fsdp), torch.tensor(ddp), rtol=1e-5, atol=0)
    assert len(set(ddp)) > 1  # a trajectory, not a constant
    a, b = _final(runs["ddp"]), _final(runs["fsdp"])
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-7, msg=key)


def test_fsdp_checkpoints_hold_one_shard_per_process(runs: dict[str, Path]) -> None:
    from torch.distributed.checkpoint import FileSystemReader

    step = ckpt.find_latest(runs["fsdp"] / "checkpoints" / "posttrain" / f"step-{EVERY * 2:06d}")
    assert step is not None and step.meta["sharded"] is True and step.meta["processes"] == 2
    assert "optimizer" not in ckpt.load_state(step)  # the optimizer state lives in the shards
    sharded = step.path / "sharded"
    assert sorted(p.name for p in sharded.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    metadata = FileSystemReader(str(sharded)).read_metadata().state_dict_metadata
    weights = load_file(step.path / ckpt.MODEL_FILE)
    split = [name for name, value in weights.items() if value.dim() >= 1 and value.shape[0] >= 2]
    assert split
    for name in split:
        for key in (f"model.{name}", f"optimizer.state.{name}.exp_avg"):
            chunks = metadata[key].chunks
            assert len(chunks) == 2, key
            assert sum(c.sizes[0] for c in chunks) == weights[name].shape[0], key
    # a DDP checkpoint is whole
    whole = ckpt.find_latest(runs["ddp"] / "checkpoints" / "posttrain" / f"step-{EVERY * 2:06d}")
    assert whole is not None and whole.meta["sharded"] is False and "optimizer" in ckpt.load_state(whole)


def test_a_sharded_checkpoint_resumes_to_the_straight_run(
    runs: dict[str, Path], store: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "resumed"
    name = f"step-{EVERY * 2:06d}"
    shutil.copytree(
        runs["fsdp"] / "checkpoints" / "posttrain" / name, run_dir / "checkpoints" / "posttrain" / name
    )
    _launch(run_dir, store, "fsdp", "--resume")
    resumed, straight = _final(run_dir), _final(runs["fsdp"])
    assert resumed.keys() == straight.keys()
    for key in straight:
        assert torch.equal(resumed[key], straight[key]), key


def test_a_damaged_shard_is_refused_and_the_previous_checkpoint_used(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    stage = tmp_path / "posttrain"
    shutil.copytree(runs["fsdp"] / "checkpoints" / "posttrain", stage)
    shutil.rmtree(stage / ckpt.FINAL)
    shard = stage / f"step-{EVERY * 2:06d}" / "sharded" / "__1_0.distcp"
    shard.write_bytes(shard.read_bytes()[:64])
    with pytest.warns(UserWarning, match=r"sharded/__1_0.distcp is corrupt or truncated"):
        found = ckpt.find_latest(stage)
    assert found is not None and found.step == EVERY


def test_fsdp_mistakes_are_named(
    runs: dict[str, Path], store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(LcaError, match=r"run.ema_decay is not supported with run.parallel=fsdp"):
        resolve_pipeline(PIPELINE, ["run.parallel=fsdp", "run.ema_decay=0.99"])
    one = resolve_pipeline(PIPELINE, [*_overrides(store), "run.parallel=fsdp"])
    with pytest.raises(TrainingError, match=r"run.parallel=fsdp shards the model over processes"):
        train(one, run_dir=tmp_path / "one")
    assert not (tmp_path / "one").exists()  # refused before the run folder or any data
    argv = ["train", PIPELINE, *_overrides(store), "run.parallel=fsdp", "--run-dir", str(tmp_path / "cli")]
    assert main(argv) == 2
    assert "run.parallel=fsdp shards the model over processes" in capsys.readouterr().err
    # a sharded checkpoint resumed under DDP: named, with both ways out
    run_dir = tmp_path / "other-layout"
    name = f"step-{EVERY * 2:06d}"
    shutil.copytree(
        runs["fsdp"] / "checkpoints" / "posttrain" / name, run_dir / "checkpoints" / "posttrain" / name
    )
    ddp = resolve_pipeline(PIPELINE, [*_overrides(store), "run.parallel=ddp"])
    with pytest.raises(TrainingError, match=r"written with run.parallel=fsdp; this run has run.parallel=ddp"):
        train(ddp, run_dir=run_dir, resume=True)


def test_accelerates_own_sharding_is_refused_with_the_way_to_ours() -> None:
    from accelerate.utils import DistributedType

    from lca.train.trainer import _check_launch

    for kind in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        with pytest.raises(TrainingError, match=r"set run.parallel=fsdp to shard the model"):
            _check_launch(kind)
    for kind in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU):
        _check_launch(kind)


@pytest.mark.parametrize(
    ("name", "machines", "processes"), [("one-node-8gpu", 1, 8), ("two-nodes-8gpu", 2, 16)]
)
def test_the_shipped_accelerate_configs_load_as_documented(name: str, machines: int, processes: int) -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    path = Path(__file__).parents[1] / "examples" / "accelerate" / f"{name}.yaml"
    config = load_config_from_file(str(path))
    assert config.distributed_type == DistributedType.MULTI_GPU  # plain processes: the toolkit shards
    assert (config.num_machines, config.num_processes) == (machines, processes)
    assert f"examples/accelerate/{name}.yaml" in (Path(__file__).parents[1] / "docs" / "scale.md").read_text()
