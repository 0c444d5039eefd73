"""`lca avatar animate`: frames through `drive` only, MP4/GIF written and readable, motion files."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from avatar_helpers import make_run, make_stores

from lca.avatars import load_avatar, save_avatar
from lca.avatars.animate import render_motion
from lca.avatars.create import create_avatar_file, load_model, store_references
from lca.avatars.motion import load_motion, open_motion, save_motion, store_motion
from lca.cli import main
from lca.model.avatar import reference_poses
from lca.model.backbone import Backbone


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("avatar-animate")
    stores = make_stores(folder)
    run, _ = make_run(folder, stores, seed=1)
    model, _found = load_model(run)
    views, source = store_references(model.config, stores["wild"], "g002")
    file = create_avatar_file(
        model, views.images, views.params["betas"][0], view_mask=views.valid, poses=reference_poses(views),
        source=source,
    )  # fmt: skip
    return {"folder": folder, "stores": stores, "path": save_avatar(folder / "p.safetensors", file),
            "encoder": type(model.encoder)}  # fmt: skip


@pytest.fixture
def no_encoder(made: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any encoder or backbone call fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("animation called the encoder or the backbone")

    monkeypatch.setattr(made["encoder"], "forward", refuse)
    monkeypatch.setattr(Backbone, "forward", refuse)


def test_animate_writes_mp4_and_gif_without_encoder_or_backbone(made: dict, no_encoder: None) -> None:
    folder = made["folder"]
    motion = f"{made['stores']['studio']}:g001"
    mp4, gif = folder / "out.mp4", folder / "out.gif"
    args = ["avatar", "animate", str(made["path"]), "--motion", motion, "--out", str(mp4), "--gif", str(gif)]
    assert main([*args, "--size", "32", "--camera", "turntable"]) == 0
    video = iio.imread(mp4, plugin="FFMPEG")
    assert video.shape == (4, 32, 32, 3)  # the studio group has 4 frames
    assert iio.imread(gif, index=None).shape[:3] == (4, 32, 32)
    assert video.max() > 0  # the avatar is visible


def test_store_cameras_and_fixed_camera(made: dict, no_encoder: None) -> None:
    folder = made["folder"]
    for camera in ("store", "fixed"):
        out = folder / f"{camera}.mp4"
        args = ["avatar", "animate", str(made["path"]), "--motion", f"{made['stores']['wild']}:g000"]
        assert main([*args, "--out", str(out), "--size", "16", "--camera", camera, "--frames", "3"]) == 0
        assert iio.imread(out, plugin="FFMPEG").shape == (3, 16, 16, 3)


def test_fixed_camera_background_fills_empty_pixels(made: dict) -> None:
    avatar = load_avatar(made["path"])
    clip = store_motion(made["stores"]["wild"], "g000", 16).select([0])
    frames = render_motion(avatar, clip, camera="fixed", size=16, background="white")
    assert frames.shape == (1, 16, 16, 3) and frames[0, 0, 0].tolist() == [255, 255, 255]


def test_motion_npz_round_trip_and_defaults(made: dict, tmp_path: Path) -> None:
    clip = store_motion(made["stores"]["studio"], "g002", 16)
    assert clip.num_frames == 4 and clip.signals["face_crop"].shape == (4, 3, 16, 16)
    path = save_motion(tmp_path / "m.npz", clip)
    back = load_motion(path)
    for key, value in clip.params.items():
        np.testing.assert_array_equal(back.params[key], value)
    np.testing.assert_allclose(back.signals["face_crop"], clip.signals["face_crop"], atol=0.5 / 255 + 1e-6)
    np.testing.assert_array_equal(back.signals["gaze"], clip.signals["gaze"])
    minimal = tmp_path / "pose-only.npz"
    np.savez(minimal, body_pose=np.zeros((2, 63), np.float32))
    only = load_motion(minimal, num_expression=10)
    assert only.params["transl"].shape == (2, 3) and only.params["expression"].shape == (2, 10)
    assert open_motion(f"{made['stores']['studio']}:g002", 10, 16).source.endswith(":g002")


def test_motion_errors_are_precise(tmp_path: Path) -> None:
    from lca.errors import LcaError

    bad = tmp_path / "bad.npz"
    np.savez(bad, body_pose=np.zeros((2, 63)), gaze=np.zeros((2, 3)))
    with pytest.raises(LcaError, match="'gaze' has shape"):
        load_motion(bad)
    with pytest.raises(LcaError, match=r"missing.npz does not exist"):
        load_motion(tmp_path / "missing.npz")


def test_animate_cli_errors(made: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "x.mp4")
    assert (
        main(["avatar", "animate", str(tmp_path / "none.safetensors"), "--motion", "m.npz", "--out", out])
        == 2
    )
    assert "none.safetensors does not exist (create one with `lca avatar create`)" in capsys.readouterr().err
    args = [
        "avatar",
        "animate",
        str(made["path"]),
        "--motion",
        f"{made['stores']['wild']}:nope",
        "--out",
        out,
    ]
    assert main(args) == 2
    assert "nope" in capsys.readouterr().err
    assert main([*args[:4], str(tmp_path / "none.npz"), "--out", out, "--camera", "store"]) == 2


def test_demo_motion_dances_with_changing_expressions(tmp_path: Path) -> None:
    path = tmp_path / "demo.npz"
    assert main(["avatar", "demo-motion", "--out", str(path), "--frames", "4", "--face-size", "16"]) == 0
    clip = load_motion(path)
    assert clip.num_frames == 4 and clip.signals["face_crop"].shape == (4, 3, 16, 16)
    assert clip.signals["blendshapes"].shape == (4, 52) and clip.signals["gaze"].shape == (4, 2, 3)
    assert np.ptp(clip.params["body_pose"], axis=0).max() > 0.05  # the body moves
    assert np.ptp(clip.params["expression"], axis=0).max() > 0.05  # the expression changes
    faces = torch.from_numpy(clip.signals["face_crop"])
    assert faces.mean() > 0.05  # the performer's face is in the crops
