"""``lca avatar create --images ... --smplx ...``: photos with a body tracker's output for each (LHM's
JSON, SMPLer-X's npz + meta). The tracker describes each view in its camera's frame; the store describes
the same views in the world. Written here from a synthetic wild person's store views (the body moved into
each camera's frame with smplx's own pelvis, LHM's padded intrinsics, SMPLer-X's mean-relative hands), the
two must be the same references: the same pixels and masks, the anchors projected to the same pixels at
the same depths, and so the same avatar from the pixel-aligned tokenizer."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from avatar_helpers import make_run
from data_stores import make_store
from PIL import Image
from scipy.spatial.transform import Rotation

from lca.avatars import load_avatar
from lca.avatars.create import create_avatar_file, load_model, load_tracked_references, store_dataset
from lca.cli import main
from lca.contracts.sample import Views
from lca.model.avatar import reference_poses

PAD = 0.2
PAIRS = [(0, 0), (3, 0)]


def _camera_space(p: dict[str, np.ndarray], viewmat: np.ndarray, body) -> dict[str, np.ndarray]:
    """A frame's world parameters with the body moved into the frame of the camera ``viewmat``."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    with torch.no_grad():
        j0 = body(betas=torch.as_tensor(p["betas"])[None]).joints[0, 0].numpy()
    R, t = viewmat[:3, :3].astype(np.float64), viewmat[:3, 3].astype(np.float64)
    p["global_orient"] = (Rotation.from_matrix(R) * Rotation.from_rotvec(p["global_orient"])).as_rotvec()
    p["transl"] = R @ (j0 + p["transl"]) + t - j0
    return p


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import smplx

    from lca.data.reader import StoreReader
    from lca.data.synth import synthesize

    folder = tmp_path_factory.mktemp("tracked-avatar")
    studio = str(folder / "studio.zarr")
    make_store(studio, "studio", frames=2, cameras=2)
    wild = synthesize(
        "wild-video", folder / "wild.zarr", identities=1, frames=4, resolution=40, progress=False
    )
    run, _ = make_run(folder, {"studio": studio, "wild": str(wild)})
    model, _ = load_model(run)
    reader = StoreReader(str(wild))
    group = reader.group_names()[0]
    meta = reader.meta(group)
    with contextlib.redirect_stdout(io.StringIO()):
        body = smplx.create(
            str(model.template.model_file()), model_type="smplx", num_betas=10, num_expression_coeffs=10,
            use_pca=False, flat_hand_mean=True, dtype=torch.float64,
        )  # fmt: skip
    rng = np.random.default_rng(2)
    means = {"hands_meanl": rng.normal(0, 0.2, 45), "hands_meanr": rng.normal(0, 0.2, 45)}
    np.savez(folder / "SMPLX_NEUTRAL.npz", **means)
    files: dict[str, list[Path]] = {"rgba": [], "rgb": [], "masks": [], "lhm": [], "smplerx": []}
    (folder / "smplerx" / "smplx").mkdir(parents=True)
    (folder / "smplerx" / "meta").mkdir()
    for t, _ in PAIRS:
        frame, mask = reader.read_frame(group, t), reader.read_mask(group, t)
        viewmat, K = meta.camera(t, 0)
        p = _camera_space(meta.params(t), viewmat, body)
        files["rgba"].append(folder / f"{t}.png")
        Image.fromarray(np.concatenate([frame, mask[..., None]], axis=-1)).save(files["rgba"][-1])
        files["rgb"].append(folder / f"{t}-rgb.png")
        Image.fromarray(frame).save(files["rgb"][-1])
        files["masks"].append(folder / f"{t}-mask.png")
        Image.fromarray(mask).save(files["masks"][-1])
        padded = round((1 + PAD) * meta.width)
        offset = (padded - meta.width) // 2  # LHM's img_center_padding of a square frame
        files["lhm"].append(folder / f"{t + 1:05d}.json")
        files["lhm"][-1].write_text(json.dumps({
            "betas": p["betas"].tolist(), "root_pose": p["global_orient"].tolist(),
            "body_pose": p["body_pose"].reshape(21, 3).tolist(), "jaw_pose": p["jaw_pose"].tolist(),
            "leye_pose": p["leye_pose"].tolist(), "reye_pose": p["reye_pose"].tolist(),
            "lhand_pose": p["left_hand_pose"].reshape(15, 3).tolist(),
            "rhand_pose": p["right_hand_pose"].reshape(15, 3).tolist(), "trans": p["transl"].tolist(),
            "focal": [float(K[0, 0]), float(K[1, 1])],
            "princpt": [float(K[0, 2]) + offset, float(K[1, 2]) + offset],
            "img_size_wh": [padded, padded], "pad_ratio": PAD,
        }))  # fmt: skip
        q = dict(p, left_hand_pose=p["left_hand_pose"] - means["hands_meanl"],
                 right_hand_pose=p["right_hand_pose"] - means["hands_meanr"])  # fmt: skip
        files["smplerx"].append(folder / "smplerx" / "smplx" / f"{t:05d}_0.npz")
        np.savez(files["smplerx"][-1], **{k: np.asarray(v)[None] for k, v in q.items()})
        (folder / "smplerx" / "meta" / f"{t:05d}_0.json").write_text(
            json.dumps(
                {"focal": [float(K[0, 0]), float(K[1, 1])], "princpt": [float(K[0, 2]), float(K[1, 2])]}
            )
        )
    dataset = store_dataset(model.config, str(wild))
    views = dataset.references(dataset.meta(group), PAIRS)
    k = len(PAIRS)  # the store adds a face close-up; the photos here have none
    views = Views(**{
        f: getattr(views, f)[:k] if f != "params" else {n: v[:k] for n, v in views.params.items()}
        for f in Views.__dataclass_fields__
    })  # fmt: skip
    size, background = dataset.config.image_size, dataset.config.reference_background
    return {"folder": folder, "run": run, "model": model, "views": views, "files": files, "size": size,
            "background": background}  # fmt: skip


def _projected(poses, model) -> tuple[torch.Tensor, torch.Tensor]:
    """Each view's anchors, posed by its parameters, as pixels ``[V, N, 2]`` and depths ``[V, N]``."""
    params = poses.params
    anchors = model.template.shaped_anchors(params.betas, params.expression)
    points = model.template.pose_points(
        anchors, model.template.anchor_weights, model.template.joint_transforms(params)
    )
    cam = points @ poses.viewmats[:, :3, :3].transpose(1, 2) + poses.viewmats[:, None, :3, 3]
    pixels = cam @ poses.Ks.transpose(1, 2)
    return pixels[..., :2] / pixels[..., 2:], cam[..., 2]


@pytest.mark.parametrize("tracker", ["lhm", "smplerx"])
def test_tracker_views_are_the_store_views(tracked: dict, tracker: str) -> None:
    files = tracked["files"]
    images, betas, poses = load_tracked_references(
        files["rgba"], files[tracker], size=tracked["size"], background=tracked["background"],
        smplx_model=tracked["folder"] / "SMPLX_NEUTRAL.npz",
    )  # fmt: skip
    views, model = tracked["views"], tracked["model"]
    torch.testing.assert_close(images, views.images, atol=1e-5, rtol=0)
    torch.testing.assert_close(poses.masks, views.masks, atol=1e-5, rtol=0)
    torch.testing.assert_close(betas, views.params["betas"].mean(dim=0), atol=1e-5, rtol=0)
    store_poses = reference_poses(views)
    if tracker == "lhm":  # LHM's tracker estimates no expression: the store's views without theirs
        params = dataclasses.replace(
            store_poses.params, expression=torch.zeros_like(store_poses.params.expression)
        )
        store_poses = dataclasses.replace(store_poses, params=params)
    with torch.no_grad():
        (got, got_z), (want, want_z) = _projected(poses, model), _projected(store_poses, model)
    assert (want_z > 0).all()
    torch.testing.assert_close(got, want, atol=2e-3, rtol=0)  # pixels of the 32-pixel references
    torch.testing.assert_close(got_z, want_z, atol=1e-4, rtol=0)
    ours = create_avatar_file(model, images, betas, poses=poses)
    store = create_avatar_file(model, views.images, betas, poses=store_poses)
    for name in ("means", "colors", "scales", "opacities"):
        torch.testing.assert_close(getattr(ours.canonical_gaussians(), name),
                                   getattr(store.canonical_gaussians(), name), atol=1e-4, rtol=0)  # fmt: skip


def test_cli_creates_the_avatar_from_photos_and_tracker_files(tracked: dict, tmp_path: Path) -> None:
    """RGB photos with mask files and LHM's files: the avatar of the store's views (a pixel-aligned
    pipeline, which refuses photos without cameras)."""
    files, out = tracked["files"], tmp_path / "me.safetensors"
    args = ["avatar", "create", "--checkpoint", str(tracked["run"]), "--out", str(out)]
    for image, fit, mask in zip(files["rgb"], files["lhm"], files["masks"], strict=True):
        args += ["--images", str(image), "--smplx", str(fit), "--masks", str(mask)]
    assert main(args) == 0
    views = tracked["views"]
    _, _, poses = load_tracked_references(
        files["rgba"], files["lhm"], size=tracked["size"], background=tracked["background"]
    )  # the same views as RGBA cut-outs: checked against the store's views above
    want = create_avatar_file(tracked["model"], views.images, views.params["betas"].mean(dim=0), poses=poses)
    torch.testing.assert_close(load_avatar(out).canonical_gaussians().means, want.canonical_gaussians().means,
                               atol=1e-4, rtol=0)  # fmt: skip


def test_bad_tracker_input_is_named(tracked: dict, tmp_path: Path, capsys) -> None:
    files, out = tracked["files"], tmp_path / "x.safetensors"
    base = ["avatar", "create", "--checkpoint", str(tracked["run"]), "--out", str(out)]
    rgba, rgb = [str(p) for p in files["rgba"]], [str(p) for p in files["rgb"]]
    lhm, smplerx = str(files["lhm"][0]), str(files["smplerx"][0])
    cases = [
        (["--images", rgba[0], "--images", rgba[1], "--smplx", lhm],
         "one --smplx file (and one --masks file, if any) per --images: got 2 --images, 1 --smplx"),
        (["--images", rgb[0], "--smplx", lhm], "has no alpha channel and no --masks"),
        (["--images", rgba[0], "--smplx", smplerx], "set smplx_model"),
        (["--images", rgba[0], "--masks", str(files["masks"][0]), "--params", "p.npz"],
         "--masks goes with --smplx"),
        (["--images", rgba[0], "--smplx", rgba[1]], "expected LHM's tracker .json"),
        (["--images", rgb[0], "--smplx", lhm, "--masks", str(tmp_path / "m.png")], "m.png does not exist"),
    ]  # fmt: skip
    for extra, message in cases:
        assert main([*base, *extra]) == 2, extra
        err = " ".join(capsys.readouterr().err.split())
        assert message in err and "Traceback" not in err, (message, err)
    assert not out.exists()
