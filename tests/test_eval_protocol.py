"""`lca eval` on a real capture's terms: the references and held-out views a user names (by the store's
camera ids or indices, frames as lists or ranges), and the ``lhm`` protocol (renders and targets over
white, the frame padded by 20%, PSNR over the target mask's pixels only, as LHM's metric scripts compute
it), checked with closed-form values through the whole evaluation path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from avatar_helpers import make_run
from data_stores import make_store

from lca.avatars.create import load_model, store_dataset
from lca.cli import main
from lca.contracts.sample import Batch
from lca.eval_protocol import ViewSelection, get_protocol, parse_frames
from lca.evaluate import evaluate_store, plan_group

OFFSET = 0.1
IDS = ["C00", "C07", "C23", "C41"]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("protocol")
    studio, wild = str(folder / "studio.zarr"), str(folder / "wild.zarr")
    make_store(studio, "studio", frames=4, cameras=4, camera_ids=IDS)
    make_store(wild, "wild-video", frames=5)
    run, _ = make_run(folder, {"studio": studio, "wild": wild}, seed=3)
    model, _ = load_model(run)
    return {"folder": folder, "studio": studio, "run": run, "config": model.config}


def _white_target(batch: Batch) -> torch.Tensor:
    images, masks = batch.targets.images[0], batch.targets.masks[0]
    return (images * masks + 1 - masks).clamp(0, 1)


def offset_inside_the_person(batch: Batch) -> torch.Tensor:
    """RGBA whose composite over white is the white-composited target, except OFFSET away on the pixels
    of the target mask above 0.5 (toward the middle, so it stays in [0, 1])."""
    masks = batch.targets.masks[0]
    target = _white_target(batch)
    person = (masks > 0.5).expand_as(target)
    shifted = torch.where(target > 0.5, target - OFFSET, target + OFFSET)
    composite = torch.where(person, shifted, target)
    premultiplied = composite - (1 - masks)  # composite = color + (1 - alpha) * white, alpha = the mask
    return torch.cat([premultiplied, masks], dim=1)


def test_lhm_psnr_counts_only_the_person_over_white(made: dict) -> None:
    """PSNR over the person's pixels is exactly 20 dB whatever the background; the whole-image SSIM and the
    frame are LHM's: 64 px (asked), 10% of empty white frame on each side."""
    seen: list[Batch] = []

    def predictor(batch: Batch) -> torch.Tensor:
        seen.append(batch)
        return offset_inside_the_person(batch)

    protocol = get_protocol("lhm", 64)
    result = evaluate_store(made["config"], made["studio"], "test", predictor, protocol=protocol)
    entry = result["categories"]["identity"]
    assert entry["full"]["psnr"] == pytest.approx(-10 * math.log10(OFFSET**2), abs=1e-4)
    assert 0 < entry["full"]["ssim"] < 1
    assert result["image_size"] == 64 and result["protocol"]["name"] == "lhm"
    masks = seen[0].targets.masks[0]
    assert masks.shape[-1] == 64 and seen[0].references.images.shape[-1] == 32  # references: the pipeline's
    # the margin is 5.3 of the 64 pixels; roi_align gives samples less than a source pixel outside the
    # frame the edge's value, so the last 1.7 of them may hold the edge
    band = math.floor(64 * 0.1 / 1.2 - 64 / 38.4)
    assert masks[..., :band].max() == 0 and masks[..., -band:].max() == 0 and masks[..., band + 1].max() > 0
    whole = evaluate_store(made["config"], made["studio"], "test", predictor, protocol=get_protocol("lca"))
    assert whole["categories"]["identity"]["full"]["psnr"] > entry["full"]["psnr"] + 1  # errors diluted


def test_an_rgb_predictor_is_refused_where_the_background_is_white(made: dict) -> None:
    with pytest.raises(Exception, match="must return opacity"):
        evaluate_store(
            made["config"], made["studio"], "test", _white_target, protocol=get_protocol("lhm", 32)
        )


def test_named_references_and_held_out_views(made: dict) -> None:
    dataset = store_dataset(made["config"], made["studio"])
    selection = ViewSelection(("C07", "3"), 1, ("C00", "C23"), parse_frames("0:4:2"))
    plan = plan_group(dataset, "g002", selection)
    assert plan.references == [(1, 1), (1, 3)]
    assert plan.targets == [(0, 0), (0, 2), (2, 0), (2, 2)]
    assert all("views" in labels for labels in plan.categories)  # neither camera gave a reference
    same_camera = plan_group(dataset, "g002", ViewSelection(("C07",), 1, ("C07",), (0, 1)))
    assert same_camera.targets == [(0, 1)]  # the reference view itself is never a target


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (
            ViewSelection(("C99",), 0),
            "--reference-cameras C99: group 'g002' has no such camera (ids: C00, C07",
        ),
        (ViewSelection(None, 9), "Frame 9 is out of range: group 'g002' has 4 frames"),
        (ViewSelection(("C00",), 0, ("C00",), (0,)), "are all reference views"),
    ],
)
def test_bad_selections_are_named(made: dict, selection: ViewSelection, message: str) -> None:
    dataset = store_dataset(made["config"], made["studio"])
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace("[", r"\[")):
        plan_group(dataset, "g002", selection)


def test_cli_eval_with_the_lhm_protocol_and_named_views(made: dict, tmp_path: Path, capsys) -> None:
    args = ["eval", "--checkpoint", str(made["run"]), "--store", made["studio"], "--protocol", "lhm",
            "--resolution", "48", "--reference-cameras", "C00,C23", "--target-cameras", "1,3",
            "--target-frames", "1,2"]  # fmt: skip
    assert main(args) == 0
    out = made["run"] / "eval" / "studio-test-lhm"
    data = json.loads((out / "metrics.json").read_text())
    assert data["protocol"]["background"] == 1.0 and data["image_size"] == 48
    assert data["selection"]["reference_cameras"] == ["C00", "C23"]
    assert data["categories"]["identity"]["count"] == 4
    table = (out / "metrics.md").read_text()
    assert "Protocol `lhm`: over white, the frame padded by 20%, PSNR over the target mask's pixels" in table
    assert "Deviation: LPIPS uses AlexNet features" in table
    for bad, message in (
        (["--protocol", "lhm2"], "Unknown evaluation protocol 'lhm2': choose one of lca, lhm"),
        (["--target-frames", "1:x"], "Frames '1:x': give indices"),
        (["--protocol", "lhm", "--resolution", "16"], "--resolution 16 is too small"),
    ):
        base = ["eval", "--checkpoint", str(made["run"]), "--store", made["studio"]]
        assert main([*base, *bad]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert message in err and "Traceback" not in err, err


def test_lhm_psnr_is_skimages_on_the_persons_pixels(made: dict) -> None:
    """The model's renders under ``lhm``: each image's PSNR equals what LHM's ``compute_psnr.py`` computes,
    scikit-image's ``peak_signal_noise_ratio`` of the white-composited images on the mask's pixels."""
    from skimage.metrics import peak_signal_noise_ratio

    from lca.evaluate import ModelPredictor

    model, _ = load_model(made["run"])
    model_predictor = ModelPredictor(model, alpha=True)
    expected: list[float] = []

    def predictor(batch: Batch) -> torch.Tensor:
        rgba = model_predictor(batch).double()
        pred = (rgba[:, :3] + 1 - rgba[:, 3:]).clamp(0, 1).numpy()
        target, masks = _white_target(batch).double().numpy(), batch.targets.masks[0].numpy()
        for p, t, m in zip(pred, target, masks, strict=True):
            person = np.broadcast_to(m > 0.5, p.shape)
            expected.append(peak_signal_noise_ratio(t[person], p[person], data_range=1))
        return rgba

    result = evaluate_store(
        made["config"], made["studio"], "test", predictor, protocol=get_protocol("lhm", 40)
    )
    got = [record["psnr"] for record in result["images"]]
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert len(got) == result["categories"]["identity"]["count"] == 14
