"""`lca eval`: the held-out plan, closed-form metric values through the whole evaluation path, outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from avatar_helpers import make_run, make_stores

from lca.avatars.create import load_model, store_dataset
from lca.cli import main
from lca.contracts.sample import Batch
from lca.evaluate import EXPRESSION_SHARE, evaluate_store, expression_frames, plan_group, write_results

OFFSET = 0.1


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("eval")
    stores = make_stores(folder)
    run, _ = make_run(folder, stores, seed=2)
    model, _ = load_model(run)
    return {"folder": folder, "stores": stores, "run": run, "config": model.config}


def _target(batch: Batch) -> torch.Tensor:
    return (batch.targets.images[0] * batch.targets.masks[0]).clamp(0, 1)


def offset_predictor(batch: Batch) -> torch.Tensor:
    """Every pixel exactly OFFSET away from the target, inside [0, 1]: PSNR = -10 log10(OFFSET^2) = 20 dB."""
    target = _target(batch).double()
    return torch.where(target > 0.5, target - OFFSET, target + OFFSET)


def test_studio_plan_holds_out_views_and_expressions(made: dict) -> None:
    dataset = store_dataset(made["config"], made["stores"]["studio"])
    plan = plan_group(dataset, "g002")
    assert plan.references == [(0, 0), (0, 2)]  # K = 2 of 4 cameras, frame 0
    assert not set(plan.references) & set(plan.targets)
    assert len(plan.targets) == 4 * 4 - 2
    for (_t, c), labels in zip(plan.targets, plan.categories, strict=True):
        assert "identity" in labels
        assert ("views" in labels) == (c in (1, 3))
    meta = dataset.meta("g002")
    chosen = expression_frames(meta, [0])
    assert len(chosen) == math.ceil(EXPRESSION_SHARE * 3) and 0 not in chosen
    code = torch.cat(
        [torch.from_numpy(meta.smplx["expression"]), torch.from_numpy(meta.smplx["jaw_pose"])], 1
    )
    distance = (code - code[0]).norm(dim=1)
    assert chosen == [int(distance[1:].argmax()) + 1]  # the frame farthest from the reference frame
    expressive = {
        t for (t, _), labels in zip(plan.targets, plan.categories, strict=True) if "expressions" in labels
    }
    assert expressive == set(chosen)


def test_constant_offset_gives_the_closed_form_psnr(made: dict) -> None:
    result = evaluate_store(made["config"], made["stores"]["studio"], "test", offset_predictor)
    expected = -10 * math.log10(OFFSET**2)
    for category in ("identity", "views", "expressions"):
        entry = result["categories"][category]
        assert entry["full"]["psnr"] == pytest.approx(expected, abs=1e-4)
        # face crops are resized (antialiased, weights summing to 1), which can only shrink |error| <= OFFSET
        assert expected - 1e-6 <= entry["face"]["psnr"] < math.inf
        assert entry["face_count"] == entry["count"]  # the test store's face box is always visible
    assert result["categories"]["identity"]["count"] == 14 and result["groups"] == ["g002"]
    assert "lpips" not in result["categories"]["identity"]["full"]


def test_renders_against_themselves_are_perfect(made: dict) -> None:
    result = evaluate_store(made["config"], made["stores"]["wild"], "test", _target)
    entry = result["categories"]["identity"]
    for region in ("full", "face"):
        assert entry[region]["psnr"] == math.inf and entry[region]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert "views" not in result["categories"]  # a monocular clip has no held-out cameras
    assert entry["count"] == 5 - 2  # wild-video: the frames that are not references


def test_outputs_and_missing_lpips_note(made: dict, tmp_path: Path) -> None:
    note = "LPIPS not computed: weights missing"
    result = evaluate_store(
        made["config"], made["stores"]["studio"], "test", offset_predictor, lpips_note=note
    )
    json_path, md_path = write_results(tmp_path, result)
    data = json.loads(json_path.read_text())
    assert data["lpips"] == {"computed": False, "note": note}
    table = md_path.read_text()
    assert "| identity | full | 14 | 20.00 |" in table and "| views | face | 8 |" in table
    assert "n/a" in table and note in table


def test_cli_eval_runs_the_model_and_writes_files(made: dict, tmp_path: Path) -> None:
    out = tmp_path / "ev"
    args = ["eval", "--checkpoint", str(made["run"]), "--store", made["stores"]["wild"], "--out", str(out)]
    assert main(args) == 0
    data = json.loads((out / "metrics.json").read_text())
    assert data["categories"]["identity"]["count"] == 3 and data["pipeline"] == "lca-tiny"
    assert math.isfinite(data["categories"]["identity"]["full"]["psnr"])
    assert (out / "metrics.md").read_text().startswith("Evaluation of")
    assert data["refine_steps"] == 3  # the checkpoint's (lca-tiny's) count of colour refinement steps


def test_cli_eval_errors(made: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = made["stores"]["wild"]
    assert main(["eval", "--checkpoint", str(tmp_path / "none"), "--store", store]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(made["run"]), "--store", store, "--split", "dev"]) == 2
    assert "--split" in capsys.readouterr().err
