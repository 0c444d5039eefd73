"""The ``mvhumannet`` importer on a fixture written here in MVHumanNet's layout (camera JSON with the
world-to-camera translation in millimetres of a rig scaled by ``camera_scale.pkl``, one full-size ``K``,
half-size ``images_lr/`` and ``fmask_lr/`` frames named by tick, EasyMocap SMPL-X fits with ``Rh``/``Th``
about the model's origin and 6 PCA coefficients per hand) from a synthetic person whose truth is known.
Checked: cameras in metres and parameters equal the truth; the body smplx poses from the imported
parameters equals the body EasyMocap's conventions pose from the fit files (smplx's own PCA and LBS, the
independent reference); the store checks, reads and trains a step; the posed template lands on the
imported masks. Bad inputs: located errors, exit code 2, no store left."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from importer_truth import RunsCode, jpeg, silhouette_iou, synthetic_truth, trains_one_step
from PIL import Image
from scipy.spatial.transform import Rotation

from lca.cli import main
from lca.data.check import check_store
from lca.data.reader import StoreReader

FRAMES, CAMERAS, SIZE = 2, 3, 48
SCALE = 120 / 65  # camera_scale.pkl of the release's first rig
NAMES = ("CC32871A004", "CC32871A015", "CC32871A059")
ROOT_SLOT = {1: np.array([0.1, -0.05, 0.02])}  # frame 1 also turns the pelvis in poses[0:3]
PCA = 6


def _smplx(model_file: Path, *, use_pca: bool):
    import smplx

    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.create(
            str(model_file), model_type="smplx", num_betas=10, num_expression_coeffs=10, use_pca=use_pca,
            num_pca_comps=PCA, flat_hand_mean=not use_pca, dtype=torch.float64,
        )  # fmt: skip


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, np.float64)).reshape(1, -1)


def _easymocap_fit(params: dict[str, np.ndarray], t: int, model: dict, body) -> dict:
    """The EasyMocap fit of the frame whose true SMPL-X parameters are ``params``."""
    R = Rotation.from_rotvec(params["global_orient"])
    root = ROOT_SLOT.get(t, np.zeros(3))
    Rh = (R * Rotation.from_rotvec(root).inv()).as_rotvec()  # R(Rh) R(root) = R
    with torch.no_grad():
        j0 = body(betas=_t(params["betas"]), expression=_t(np.zeros(10))).joints[0, 0].numpy()
    Th = params["transl"] - Rotation.from_rotvec(Rh).as_matrix() @ j0 + j0
    # least-squares PCA coefficients (the components are orthonormal)
    hands = [
        (params[f"{side}_hand_pose"] - model[f"hands_mean{side[0]}"])
        @ model[f"hands_components{side[0]}"][:PCA].T
        for side in ("left", "right")
    ]
    poses = np.concatenate([root, params["body_pose"], *hands, params["jaw_pose"], params["leye_pose"],
                            params["reye_pose"]])  # fmt: skip
    assert poses.shape == (66 + 2 * PCA + 9,)
    return {"id": 0, "Rh": [Rh.tolist()], "Th": [Th.tolist()], "poses": [poses.tolist()],
            "shapes": [params["betas"].tolist()], "expression": [params["expression"].tolist()]}  # fmt: skip


def _write_mvhumannet(root: Path, truth: StoreReader, group: str, model_file: Path) -> None:
    meta = truth.meta(group)
    K_full = np.diag([2.0, 2.0, 1.0]) @ meta.Ks[0].astype(np.float64)  # the frames are stored at half size
    extrinsics = {}
    for c, name in enumerate(NAMES):
        viewmat = meta.viewmats[c].astype(np.float64)
        extrinsics[f"1_{name}.png"] = {
            "focal_length": [K_full[0, 0], K_full[1, 1]],
            "image_center": [K_full[0, 2], K_full[1, 2], 2 * SIZE, 2 * SIZE],
            "translation": (viewmat[:3, 3] * 1000.0 / SCALE).tolist(),  # mm of the scaled rig
            "rotation": viewmat[:3, :3].tolist(),
            "quaternion": Rotation.from_matrix(viewmat[:3, :3]).as_quat().tolist(),
        }
    root.mkdir(parents=True)
    (root / "camera_extrinsics.json").write_text(json.dumps(extrinsics, indent=2))
    (root / "camera_intrinsics.json").write_text(json.dumps({"intrinsics": K_full.tolist(), "dist": []}))
    (root / "camera_scale.pkl").write_bytes(pickle.dumps(SCALE))
    model = dict(np.load(model_file))
    body = _smplx(model_file, use_pca=False)
    (root / "smplx" / "smpl").mkdir(parents=True)
    for t in range(meta.num_frames):
        tick = 5 * (t + 1)
        for c, name in enumerate(NAMES):
            for folder, array, suffix in (
                ("images_lr", truth.read_frame(group, t, c), "_img.jpg"),
                ("fmask_lr", np.where(truth.read_mask(group, t, c) > 127, 255, 0).astype(np.uint8),
                 "_img_fmask.png"),
            ):  # fmt: skip
                path = root / folder / name / f"{tick:04d}{suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                if suffix.endswith(".jpg"):
                    path.write_bytes(jpeg(array).tobytes())
                else:
                    Image.fromarray(array).save(path)
        fit = _easymocap_fit(meta.params(t), t, model, body)
        (root / "smplx" / "smpl" / f"{t:06d}.json").write_text(json.dumps([fit]))


@pytest.fixture(scope="module")
def mvh(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A synthetic studio person (the truth), its MVHumanNet folder, and the mannequin's SMPL-X model
    file standing in for the licensed one (it has every array the importer reads)."""
    from lca.data.synth import SynthConfig
    from lca.data.synth.generate import build_toolkit

    folder = tmp_path_factory.mktemp("mvh")
    truth, group = synthetic_truth(folder, FRAMES, CAMERAS, SIZE)
    model_file = build_toolkit(SynthConfig(layout="studio"))[0].model_file()
    source = folder / "100001"
    _write_mvhumannet(source, truth, group, model_file)
    store = folder / "imported.zarr"
    argv = [
        "data",
        "import",
        "--format",
        "mvhumannet",
        "--set",
        f"smplx_model={model_file}",
        "--split",
        "train",
    ]
    assert main([*argv, str(source), str(store)]) == 0
    return {"folder": folder, "truth": truth, "group": group, "source": source, "store": store,
            "model": model_file}  # fmt: skip


def test_cameras_in_metres_and_parameters_are_the_truth(mvh: dict) -> None:
    truth = mvh["truth"].meta(mvh["group"])
    reader = StoreReader(str(mvh["store"]))
    meta = reader.meta("100001")
    assert meta.attrs["camera_ids"] == list(NAMES) and (meta.num_frames, meta.width) == (FRAMES, SIZE)
    np.testing.assert_allclose(meta.viewmats, truth.viewmats, atol=1e-5)
    np.testing.assert_allclose(meta.Ks, truth.Ks, atol=1e-5)
    for t in range(FRAMES):  # the hands went through a 6-component PCA: checked on the body below
        for key, value in truth.params(t).items():
            if not key.endswith("hand_pose"):
                np.testing.assert_allclose(meta.params(t)[key], value, atol=1e-5, err_msg=f"frame {t} {key}")
    np.testing.assert_array_equal(
        reader.read_mask("100001", 1, 2) > 127, mvh["truth"].read_mask(mvh["group"], 1, 2) > 127
    )


def test_the_imported_body_is_the_body_easymocap_poses(mvh: dict) -> None:
    """smplx with PCA hands (mean added, as EasyMocap does), root slot and zero global transform, then
    EasyMocap's ``R(Rh) v + Th``, against smplx with the imported full hands, global orient and transl."""
    pca, full = _smplx(mvh["model"], use_pca=True), _smplx(mvh["model"], use_pca=False)
    meta = StoreReader(str(mvh["store"])).meta("100001")
    with torch.no_grad():
        for t in range(FRAMES):
            (fit,) = json.loads((mvh["source"] / "smplx" / "smpl" / f"{t:06d}.json").read_text())
            poses = np.asarray(fit["poses"][0])
            local = pca(
                betas=_t(fit["shapes"]), expression=_t(fit["expression"]), global_orient=_t(poses[:3]),
                body_pose=_t(poses[3:66]), left_hand_pose=_t(poses[66:72]), right_hand_pose=_t(poses[72:78]),
                jaw_pose=_t(poses[78:81]), leye_pose=_t(poses[81:84]), reye_pose=_t(poses[84:87]),
            ).vertices[0].numpy()  # fmt: skip
            easymocap = local @ Rotation.from_rotvec(fit["Rh"][0]).as_matrix().T + np.asarray(fit["Th"][0])
            imported = full(**{k: _t(v) for k, v in meta.params(t).items()}).vertices[0].numpy()
            assert np.abs(imported - easymocap).max() < 1e-4, f"frame {t}"


def test_the_store_checks_trains_and_the_template_lands_on_its_masks(mvh: dict, tmp_path: Path) -> None:
    """IoU above 0.7 with the imported cameras (measured 0.81, as for the other studio formats); keeping
    the translation in the rig's unscaled units (forgetting ``camera_scale``) draws the body too large
    (IoU below 0.55, measured 0.45): the check can fail."""
    assert check_store(str(mvh["store"])) == []
    reader = StoreReader(str(mvh["store"]))
    viewmats = reader.meta("100001").viewmats
    assert silhouette_iou(reader, "100001", viewmats) > 0.7
    unscaled = viewmats.copy()
    unscaled[:, :3, 3] /= SCALE
    assert silhouette_iou(reader, "100001", unscaled) < 0.55
    assert trains_one_step(mvh["store"], tmp_path / "run")


def test_ticks_missing_from_a_camera_or_a_fit_are_skipped_and_counted(mvh: dict, tmp_path: Path) -> None:
    source = tmp_path / "100001"
    shutil.copytree(mvh["source"], source)
    (source / "smplx" / "smpl" / "000001.json").unlink()
    with pytest.warns(UserWarning, match=r"1 of 2 frames have no SMPL-X fit .* skipped \(first: tick 10\)"):
        assert _run(mvh, source, tmp_path / "a.zarr") == 0
    assert StoreReader(str(tmp_path / "a.zarr")).meta("100001").num_frames == 1
    shutil.copytree(mvh["source"], source, dirs_exist_ok=True)
    (source / "images_lr" / NAMES[1] / "0005_img.jpg").unlink()
    with pytest.warns(
        UserWarning, match=r"1 frames are not seen by every chosen camera .* \(first: tick 5\)"
    ):
        assert _run(mvh, source, tmp_path / "b.zarr") == 0
    assert StoreReader(str(tmp_path / "b.zarr")).meta("100001").num_frames == 1


def test_pickled_code_in_the_camera_scale_is_refused_not_run(mvh: dict, tmp_path: Path, capsys) -> None:
    source = tmp_path / "100001"
    shutil.copytree(mvh["source"], source)
    marker = tmp_path / "ran"

    (source / "camera_scale.pkl").write_bytes(pickle.dumps(RunsCode(marker)))
    assert _run(mvh, source, tmp_path / "s.zarr") == 2
    assert "refused to unpickle (it names posix.system" in " ".join(capsys.readouterr().err.split())
    assert not marker.exists() and not (tmp_path / "s.zarr").exists()


# ------------------------------------------------------------------------------------------ bad input
def _run(mvh: dict, source: Path, store: Path, *extra: str) -> int:
    argv = ["data", "import", "--format", "mvhumannet", "--set", f"smplx_model={mvh['model']}", *extra]
    return main([*argv, str(source), str(store)])


def _edit_fit(t: int, edit):
    def damage(source: Path) -> None:
        path = source / "smplx" / "smpl" / f"{t:06d}.json"
        fits = json.loads(path.read_text())
        edit(fits[0])
        path.write_text(json.dumps(fits))

    return damage


def _rm(relative: str):
    return lambda source: (source / relative).unlink()


def _set(key: str, value):
    return lambda fit: fit.__setitem__(key, value)


BAD = [
    ("no-camera-scale", _rm("camera_scale.pkl"), "camera scale", "camera_scale.pkl does not exist"),
    ("no-extrinsics", _rm("camera_extrinsics.json"), "camera_extrinsics.json does not exist", ""),
    ("camera-without-frames", lambda s: shutil.rmtree(s / "images_lr" / NAMES[2]),
     f"camera '{NAMES[2]}' has no frames", ""),
    ("missing-last-mask", _rm(f"fmask_lr/{NAMES[2]}/0010_img_fmask.png"),  # found mid-write
     f"fmask_lr/{NAMES[2]}/0010_img_fmask.png does not exist", ""),
    ("smpl-not-smplx", _edit_fit(1, _set("poses", [[0.0] * 72])), "poses has 72 values",
     "needs a SMPL-X fit"),
    ("millimetres", _edit_fit(0, _set("Th", [[30.0, 1500.0, 2400.0]])), "is it in millimetres",
     "000000.json"),
    ("not-a-fit", lambda s: (s / "smplx" / "smpl" / "000000.json").write_text("{}"),
     "000000.json: not an EasyMocap SMPL-X fit", ""),
    ("tick-not-a-multiple", lambda s: shutil.copy(s / "images_lr" / NAMES[0] / "0005_img.jpg",
                                                  s / "images_lr" / NAMES[0] / "0007_img.jpg"),
     "0007_img.jpg: MVHumanNet frames are named <tick>_img.jpg", "multiple of 5"),
    ("frames-not-a-scaled-copy", lambda s: _widen(s), "are not a scaled copy of the 96x192 frames", ""),
    ("unknown-camera", None, "no camera ['CC0']", NAMES[0]),
]  # fmt: skip


def _widen(source: Path) -> None:
    path = source / "camera_extrinsics.json"
    extrinsics = json.loads(path.read_text())
    for entry in extrinsics.values():
        entry["image_center"][3] = 4 * SIZE
    path.write_text(json.dumps(extrinsics))


@pytest.mark.parametrize(("label", "damage", "first", "second"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_source_is_named_and_leaves_no_store(
    label: str, damage, first: str, second: str, mvh: dict, tmp_path: Path, capsys
) -> None:
    source = tmp_path / "100001"
    shutil.copytree(mvh["source"], source)
    if damage is not None:
        damage(source)
    store = tmp_path / "out.zarr"
    extra = ("--set", "cameras=[CC0]") if label == "unknown-camera" else ()
    assert _run(mvh, source, store, *extra) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert first in err and second in err and "Traceback" not in err, err
    assert not store.exists()


def test_the_smplx_model_is_required_and_named(mvh: dict, tmp_path: Path, capsys) -> None:
    store = tmp_path / "out.zarr"
    assert main(["data", "import", "--format", "mvhumannet", str(mvh["source"]), str(store)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "PCA hands" in err and "set smplx_model" in err and not store.exists()
