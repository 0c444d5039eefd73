"""Avatar files (create, save/load round trip, self-contained animation) and PLY export."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from avatar_helpers import make_run, make_stores
from plyfile import PlyData

from lca.avatars import AvatarFileError, load_avatar, save_avatar
from lca.avatars.create import create_avatar_file, load_model, store_references
from lca.avatars.export import export_ply
from lca.avatars.motion import POSE_KEYS, MotionClip
from lca.avatars.player import load_player
from lca.cli import main
from lca.contracts.decoder import AnchorGaussians
from lca.model.avatar import reference_poses
from lca.ply import SH_C0, ply_property_names


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("avatar-io")
    stores = make_stores(folder)
    run, _ = make_run(folder, stores)
    model, found = load_model(run)
    views, source = store_references(model.config, stores["studio"], "g002", frame=1)
    file = create_avatar_file(
        model,
        views.images,
        views.params["betas"][0],
        view_mask=views.valid,
        poses=reference_poses(views),
        source_checkpoint=str(found.path),
        source=source,
    )  # fmt: skip
    path = save_avatar(folder / "person.safetensors", file)
    return {"folder": folder, "stores": stores, "run": run, "model": model, "file": file, "path": path,
            "views": views}  # fmt: skip


def _motion(frames: int, transl: tuple[float, float, float] = (0.0, 0.0, 0.0), seed: int = 0) -> MotionClip:
    rng = np.random.default_rng(seed)
    sizes = {"global_orient": 3, "body_pose": 63, "left_hand_pose": 45, "right_hand_pose": 45, "jaw_pose": 3,
             "leye_pose": 3, "reye_pose": 3, "transl": 3}  # fmt: skip
    params = {k: (0.3 * rng.normal(size=(frames, n))).astype(np.float32) for k, n in sizes.items()}
    params["transl"] = np.tile(np.asarray(transl, np.float32), (frames, 1))
    params["expression"] = rng.normal(size=(frames, 10)).astype(np.float32)
    signals = {
        "face_crop": rng.random((frames, 3, 16, 16)).astype(np.float32),
        "gaze": np.tile(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], np.float32), (frames, 1, 1)),
    }
    assert set(params) == {*POSE_KEYS, "expression"}
    return MotionClip(params, signals, 10.0, "test")


def test_create_uses_the_store_rule_and_the_frames_betas(made: dict) -> None:
    views = made["views"]
    # studio, K = 2 of 4 cameras spread evenly (0 and 2) at frame 1, plus the face close-up
    assert views.camera.tolist() == [0, 2, 0] and views.frame[:2].tolist() == [1, 1]
    assert views.is_face.tolist() == [False, False, True]
    assert torch.equal(made["file"].betas, views.params["betas"][0])


def test_round_trip_keeps_every_tensor_and_the_config(made: dict) -> None:
    file, loaded = made["file"], load_avatar(made["path"])
    for name in ("anchors", "features", "betas"):
        assert torch.equal(getattr(loaded, name), getattr(file, name)), name
    for f in fields(AnchorGaussians):
        assert torch.equal(getattr(loaded.canonical, f.name), getattr(file.canonical, f.name)), f.name
    assert loaded.skinning.keys() == file.skinning.keys()
    assert all(torch.equal(loaded.skinning[k], v) for k, v in file.skinning.items())
    assert loaded.weights.keys() == file.weights.keys() and any(
        k.startswith("drivers.") for k in loaded.weights
    )
    assert loaded.config().to_dict() == made["model"].config.to_dict()
    assert loaded.source_checkpoint.endswith("final") and "g002" in loaded.source
    assert loaded.metadata["template"] == "mannequin" and loaded.metadata["pipeline"] == "lca-tiny"
    n, k = file.anchors.shape[0], file.canonical.opacities.shape[1]
    assert loaded.num_gaussians == n * k


def test_loaded_avatar_drives_like_the_model_that_made_it(made: dict) -> None:
    """The player rebuilt from the file alone (weights inside) gives the model's own drive output."""
    model, loaded = made["model"], load_avatar(made["path"])
    clip = _motion(2)
    params = clip.template_params(loaded.betas, 10)
    signals = clip.driving_signals(params, None)
    viewmats = torch.eye(4).expand(1, 2, 4, 4).clone()
    viewmats[..., 2, 3] = 3.0
    Ks = torch.tensor([[20.0, 0, 16], [0, 20.0, 16], [0, 0, 1]]).expand(1, 2, 3, 3)
    with torch.no_grad():
        ours = load_player(loaded).drive(loaded.batched(), params, signals, viewmats, Ks, 32, 32)
        refs = made["views"]
        avatar = model.create_avatar(
            refs.images[None], refs.valid[None], refs.params["betas"][:1], reference_poses(refs).batched()
        )
        theirs = model.drive(avatar, params, signals, viewmats, Ks, 32, 32)
    for name in ("means", "quats", "scales", "opacities", "colors"):
        torch.testing.assert_close(
            getattr(ours.driven_gaussians, name), getattr(theirs.driven_gaussians, name), rtol=1e-5, atol=1e-6
        )
    torch.testing.assert_close(ours.driven.color, theirs.driven.color, rtol=1e-5, atol=1e-6)


def test_player_refuses_a_template_with_other_anchors(made: dict) -> None:
    loaded = load_avatar(made["path"])
    loaded.skinning["anchor_weights"] = loaded.skinning["anchor_weights"].roll(1, dims=0)
    with pytest.raises(AvatarFileError, match="anchor_weights differs"):
        load_player(loaded)


def test_load_avatar_errors_name_the_problem(made: dict, tmp_path: Path) -> None:
    with pytest.raises(AvatarFileError, match=r"missing\.safetensors does not exist"):
        load_avatar(tmp_path / "missing.safetensors")
    (tmp_path / "folder.safetensors").mkdir()
    with pytest.raises(AvatarFileError, match=r"folder\.safetensors is a directory, not a file"):
        load_avatar(tmp_path / "folder.safetensors")
    other = tmp_path / "weights.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(AvatarFileError, match="not an LCA avatar file"):
        load_avatar(other)


def test_an_avatar_with_non_finite_values_is_never_written(made: dict, tmp_path: Path) -> None:
    from dataclasses import replace

    file = made["file"]
    opacity = file.canonical.opacities.clone()
    opacity[0] = float("nan")
    broken = replace(file, canonical=replace(file.canonical, opacities=opacity))
    with pytest.raises(AvatarFileError, match=r"canonical\.opacities hold non-finite values"):
        save_avatar(tmp_path / "broken.safetensors", broken)
    assert list(tmp_path.iterdir()) == []


def test_canonical_ply_has_the_3dgs_layout_and_values(made: dict, tmp_path: Path) -> None:
    file = made["file"]
    path = export_ply(tmp_path / "canonical.ply", file)
    vertex = PlyData.read(str(path))["vertex"]
    assert [p.name for p in vertex.properties] == ply_property_names(0)
    n, k = file.canonical.opacities.shape
    assert vertex.count == n * k
    # independent of the exporter: anchor-major means = anchor + offset, 3DGS activations inverted
    means = (file.anchors[:, None] + file.canonical.offsets).reshape(-1, 3).numpy()
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], 1)
    np.testing.assert_allclose(xyz, means, rtol=1e-6, atol=1e-6)
    opacity = file.canonical.opacities.reshape(-1).double().numpy()
    np.testing.assert_allclose(vertex["opacity"], np.log(opacity / (1 - opacity)), rtol=1e-5, atol=1e-5)
    colors = file.canonical.colors.reshape(-1, 3).double().numpy()
    np.testing.assert_allclose(vertex["f_dc_0"], (colors[:, 0] - 0.5) / SH_C0, rtol=1e-5, atol=1e-5)
    scales = file.canonical.scales.reshape(-1, 3).double().numpy()
    np.testing.assert_allclose(vertex["scale_2"], np.log(scales[:, 2]), rtol=1e-5, atol=1e-5)


def test_posed_ply_moves_with_the_motion_translation(made: dict, tmp_path: Path) -> None:
    file = made["file"]
    still = export_ply(tmp_path / "a.ply", file, _motion(3, (0.0, 0.0, 0.0)), frame=1)
    moved = export_ply(tmp_path / "b.ply", file, _motion(3, (1.0, -2.0, 0.5)), frame=1)
    a, b = PlyData.read(str(still))["vertex"], PlyData.read(str(moved))["vertex"]
    for axis, shift in zip("xyz", (1.0, -2.0, 0.5), strict=True):
        np.testing.assert_allclose(b[axis] - a[axis], shift, atol=1e-5)
    canonical = file.canonical_gaussians().means.numpy()
    assert np.abs(np.stack([a["x"], a["y"], a["z"]], 1) - canonical).max() > 1e-3  # posed, not canonical


def test_cli_create_from_images_and_export(made: dict, tmp_path: Path, capsys) -> None:
    """Images without cameras: fine for position-only anchor tokens (``fourier``); a pipeline whose tokenizer
    reads the references at the anchors' projections says what it needs instead."""
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    images = []
    for i, shape in enumerate([(40, 30, 3), (20, 20, 4)]):
        images.append(tmp_path / f"ref{i}.png")
        iio.imwrite(images[-1], rng.integers(0, 256, shape, dtype=np.uint8))
    params = tmp_path / "params.npz"
    np.savez(params, betas=np.linspace(-1, 1, 10, dtype=np.float32))
    out = tmp_path / "from-images.safetensors"
    refs = [x for p in images for x in ("--images", str(p))]
    pixel = ["avatar", "create", "--checkpoint", str(made["run"]), "--out", str(out), "--params", str(params)]
    assert main([*pixel, *refs]) == 2 and not out.exists()
    assert "needs each reference's camera and template parameters" in capsys.readouterr().err
    run, _ = make_run(tmp_path / "fourier", made["stores"], overrides=("tokenizer=fourier",))
    args = ["avatar", "create", "--checkpoint", str(run), "--out", str(out), "--params", str(params)]
    assert main([*args, *refs]) == 0
    loaded = load_avatar(out)
    np.testing.assert_allclose(loaded.betas.numpy(), np.linspace(-1, 1, 10), rtol=1e-6)
    assert main(["avatar", "export", str(out), "--out", str(tmp_path / "x.ply")]) == 0
    assert PlyData.read(str(tmp_path / "x.ply"))["vertex"].count == loaded.num_gaussians


def test_cli_create_errors(made: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "x.safetensors")
    missing = [
        "avatar",
        "create",
        "--checkpoint",
        str(tmp_path / "nope"),
        "--store",
        made["stores"]["studio"],
    ]
    assert main([*missing, "--group", "g000", "--out", out]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad_group = ["avatar", "create", "--checkpoint", str(made["run"]), "--store", made["stores"]["studio"]]
    assert main([*bad_group, "--group", "g999", "--out", out]) == 2
    assert "g999" in capsys.readouterr().err
    assert main(["avatar", "create", "--checkpoint", str(made["run"]), "--out", out]) == 2
    assert "--store" in capsys.readouterr().err
    assert not Path(out).exists()


def test_load_images_composites_rgba_cutouts_onto_the_reference_background(tmp_path: Path) -> None:
    import imageio.v3 as iio

    from lca.avatars.create import load_images

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :4, 3] = 255  # left half: the person, right half: transparent background
    iio.imwrite(tmp_path / "cut.png", rgba)
    iio.imwrite(tmp_path / "plain.png", rgba[..., :3])
    cut, plain = load_images([tmp_path / "cut.png", tmp_path / "plain.png"], 8, background=1.0)
    torch.testing.assert_close(cut[:, :, :4], torch.full((3, 8, 4), 200 / 255))
    torch.testing.assert_close(cut[:, :, 4:], torch.ones(3, 8, 4))
    torch.testing.assert_close(plain, torch.full((3, 8, 8), 200 / 255))  # no alpha: used as it is
    kept = load_images([tmp_path / "cut.png"], 8, background=None)[0]
    torch.testing.assert_close(kept, plain)  # background None: alpha ignored
