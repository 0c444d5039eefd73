"""Held out means held out (docs/evaluation.md): the default stores have held-out sets that can rank
models, a training run records whom it saw, and `lca eval` and `bench/main_job.py` refuse to report those
people as held out unless told to (then they mark them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from avatar_helpers import TINY_OVERRIDES, make_run, make_stores

from lca.avatars.create import load_model
from lca.cli import main
from lca.data.locations import resolve_store_url
from lca.data.reader import StoreReader
from lca.train.seen import SEEN_FILE, load_records

ROOT = Path(__file__).resolve().parents[1]
WILD, STUDIO = "synthetic://wild-video", "synthetic://studio"


@pytest.fixture(scope="module")
def default_stores() -> dict[str, StoreReader]:
    """The default synthetic stores (generated into the test cache on first use, about half a minute)."""
    return {url: StoreReader(resolve_store_url(url)) for url in (WILD, STUDIO)}


def _listed(capsys: pytest.CaptureFixture[str], url: str, split: str) -> list[list[str]]:
    assert main(["data", "list", url, "--split", split]) == 0
    return [line.split() for line in capsys.readouterr().out.splitlines()[2:] if line.strip()]


def test_default_stores_hold_enough_held_out_people(default_stores, capsys) -> None:
    wild, studio = _listed(capsys, WILD, "test"), _listed(capsys, STUDIO, "test")
    assert len({row[1] for row in wild}) >= 20 and len({row[1] for row in studio}) >= 8
    assert all(row[2] == "test" for row in wild + studio)
    assert len(_listed(capsys, WILD, "train")) >= 38


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, default_stores) -> Path:
    """A tiny lca-tiny trained 2 + 2 steps on the default synthetic stores, keeping an EMA (decay 0.5) and a
    checkpoint after every step."""
    run = tmp_path_factory.mktemp("heldout") / "run"
    steps = [
        "schedule.pretrain.steps=2",
        "schedule.pretrain.warmup_steps=0",
        "schedule.posttrain.steps=2",
        "schedule.posttrain.warmup_steps=0",
        "run.preview_every=100",
        "run.checkpoint_every=1",
        "run.ema_decay=0.5",
    ]
    assert main(["train", "lca-tiny", *TINY_OVERRIDES, *steps, "--run-dir", str(run)]) == 0
    return run


def test_a_run_records_the_stores_and_people_of_each_stage(trained_run: Path, default_stores) -> None:
    records = load_records(trained_run)
    assert records is not None and set(records) == {"pretrain", "posttrain"}
    wild, studio = default_stores[WILD], default_stores[STUDIO]
    assert records["pretrain"]["store"] == wild.url and records["pretrain"]["layout"] == "wild-video"
    assert records["pretrain"]["fingerprint"] == wild.fingerprint()
    assert records["pretrain"]["split"] == "train" and records["pretrain"]["data"] == "wild"
    assert records["pretrain"]["identities"] == sorted(set(wild.identities("train").values()))
    assert records["posttrain"]["identities"] == sorted(set(studio.identities("train").values()))


def test_eval_refuses_people_the_run_trained_on_unless_allowed(
    trained_run: Path, default_stores, tmp_path: Path, capsys
) -> None:
    args = ["eval", "--checkpoint", str(trained_run), "--store", WILD, "--split", "train"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    error = capsys.readouterr().err
    assert "were in the run's training data" in error and "wild-s0-0000 (stage pretrain)" in error
    assert "--allow-seen" in error and not (tmp_path / "refused").exists()

    assert main([*args, "--allow-seen", "--out", str(tmp_path / "seen")]) == 0
    result = json.loads((tmp_path / "seen" / "metrics.json").read_text())
    train_people = set(default_stores[WILD].identities("train").values())
    assert set(result["seen_in_training"]) == train_people
    assert all(record["seen_in_training"] for record in result["images"])
    table = (tmp_path / "seen" / "metrics.md").read_text()
    assert f"Seen in training: {len(train_people)} of these {len(train_people)} people" in table
    assert "| seen in training | region |" in table


def test_eval_of_held_out_people_runs_and_gives_intervals_over_people(
    trained_run: Path, default_stores, tmp_path: Path
) -> None:
    args = ["eval", "--checkpoint", str(trained_run), "--store", STUDIO, "--split", "test"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["seen_in_training"] == {} and not any(r["seen_in_training"] for r in result["images"])
    identity = result["categories"]["identity"]
    assert identity["people"] == len(set(default_stores[STUDIO].identities("test").values())) >= 8
    low, high = identity["interval"]["full"]["psnr"]
    assert low < identity["full"]["psnr"] < high
    assert "| held out | region |" in (tmp_path / "metrics.md").read_text()


def test_main_job_refuses_a_run_that_trained_on_the_default_test_people(
    tmp_path: Path, default_stores
) -> None:
    """A run whose record says it trained on the default wild store's test people, as a run on a bigger
    store of the same seed would have before splits were stable."""
    run, _ = make_run(tmp_path, make_stores(tmp_path))
    test_people = sorted(set(default_stores[WILD].identities("test").values()))
    seen = {"stages": {"pretrain": {"data": "wild", "identities": ["someone-else", *test_people]}}}
    (run / SEEN_FILE).write_text(json.dumps(seen))
    command = [sys.executable, str(ROOT / "bench" / "main_job.py"), "--eval-only", str(run)]
    refused = subprocess.run(command, capture_output=True, text=True, env=os.environ, check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"{len(test_people)} of the evaluated people were in the run's training data" in refused.stderr
    assert f"{test_people[0]} (stage pretrain)" in refused.stderr


def test_the_ema_weights_load_as_the_model_and_are_the_closed_form_average(
    trained_run: Path, default_stores, tmp_path: Path
) -> None:
    """With decay 0.5 over two steps the average is (w1 + w2) / 2 of the weights after each step: what
    `lca eval --ema` (and `lca avatar create --ema`) load into the model itself; `--refine-steps`
    overrides the checkpoint's colour refinement."""
    stage = trained_run / "checkpoints" / "posttrain"
    average = load_model(stage / "final", ema=True)[0].state_dict()
    after_1, after_2 = (load_model(stage / name)[0].state_dict() for name in ("step-000001", "final"))
    assert average.keys() == after_2.keys()
    moved = 0
    for name, value in average.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (after_1[name] + after_2[name]) / 2, msg=name)
            moved += not torch.equal(after_1[name], after_2[name])
    assert moved > 10  # the two steps changed the weights, so the average differs from either
    args = ["eval", "--checkpoint", str(trained_run), "--store", STUDIO, "--split", "test", "--ema"]
    assert main([*args, "--out", str(tmp_path / "refined")]) == 0
    # the colour refinement is an inference setting: the same checkpoint evaluates with any count
    assert main([*args, "--out", str(tmp_path / "plain"), "--refine-steps", "0"]) == 0
    refined, plain = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("refined", "plain"))
    assert (refined["refine_steps"], plain["refine_steps"]) == (3, 0)
    psnr = [r["categories"]["identity"]["full"]["psnr"] for r in (refined, plain)]
    assert psnr[0] > psnr[1]  # refined against its references, the avatar renders held-out views better


def _heldout_file(folder: Path, rows: dict[str, dict[str, list[float]]]) -> Path:
    """A run folder holding `heldout-test.json` as `bench/main_job.py` writes it: per row and layout, the
    per-image records (`{person: [psnr per image]}` here)."""
    folder.mkdir(parents=True)
    written = {
        label: {
            layout: {"images": [
                {"group": person, "identity": person, "frame": 0, "camera": i, "psnr": v}
                for person, values in people.items() for i, v in enumerate(values)
            ]}
            for layout in ("wild", "studio")
        }
        for label, people in rows.items()
    }  # fmt: skip
    (folder / "heldout-test.json").write_text(json.dumps({"split": "test", "rows": written}))
    return folder


def test_paired_bench_compares_rows_of_two_runs_on_the_same_images(tmp_path: Path) -> None:
    people = {"a": [20.0, 22.0], "b": [30.0, 31.0], "c": [25.0, 25.0]}
    shifted = {person: [v + 0.5 for v in values] for person, values in people.items()}
    base = _heldout_file(tmp_path / "base", {"per-person fit, 30 steps": people})
    run = _heldout_file(tmp_path / "run", {"after pretrain": people, "after posttrain": shifted,
                                           "after posttrain (EMA)": people})  # fmt: skip
    script = [sys.executable, str(ROOT / "bench" / "paired.py")]
    against = ["--against", f"{base}:per-person fit, 30 steps"]
    done = subprocess.run([*script, str(run), *against], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"| {run}:after posttrain | +0.50 [+0.50, +0.50] | +0.50 [+0.50, +0.50] |" in done.stdout
    missing = subprocess.run([*script, f"{run}:after nothing", *against], capture_output=True, text=True)
    assert (
        missing.returncode == 2 and "has no row 'after nothing'; its rows: after pretrain" in missing.stderr
    )
    other = _heldout_file(tmp_path / "other", {"after posttrain": {"a": [20.0]}})
    refused = subprocess.run([*script, str(other), *against], capture_output=True, text=True)
    assert refused.returncode == 2 and "need the same images on both sides" in refused.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "heldout-test.json").write_text("{not json")
    broken = subprocess.run([*script, str(tmp_path / "broken"), *against], capture_output=True, text=True)
    assert broken.returncode == 2 and "heldout-test.json: not JSON" in broken.stderr
    absent = subprocess.run([*script, str(tmp_path / "absent"), *against], capture_output=True, text=True)
    assert absent.returncode == 2 and "does not exist: evaluate the run first" in absent.stderr
