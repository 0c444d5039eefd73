"""The ``dna-rendering`` importer on a fixture written here in DNA-Rendering's documented layout (two HDF5
``.smc`` files: JPEG frames per camera, calibration with camera-to-world ``RT``, JPEG masks, SMPL-X fits
with ``fullpose [N,55,3]`` and mean-relative hands) from a synthetic person whose true cameras and
parameters are known. Checked: the imported cameras and parameters equal the truth, the store passes
`lca data check`, the studio dataset reads it and one training step runs on it, and the posed template
rendered with the imported cameras lands on the imported masks. Bad inputs: located errors, exit code 2,
and no store left behind."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from importer_truth import jpeg, silhouette_iou, synthetic_truth, trains_one_step

from lca.cli import main
from lca.data.check import check_store
from lca.data.reader import StoreReader
from lca.registry import default_registry

FRAMES, CAMERAS, SIZE = 2, 3, 48
HAND_MEAN_SEED = 7


def _hand_means() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(HAND_MEAN_SEED)
    return rng.normal(0, 0.2, 45).astype(np.float32), rng.normal(0, 0.2, 45).astype(np.float32)


def _write_dna(root: Path, truth: StoreReader, group: str, *, camera_ids=("0", "7", "23")) -> Path:
    """``root/main/<id>.smc`` and ``root/annotations/<id>_annots.smc`` of ``truth``'s capture, written by
    the layout of DNA-Rendering's SMCReader (camera groups by plain id, calibration by 2-digit id)."""
    meta = truth.meta(group)
    (root / "main").mkdir(parents=True)
    (root / "annotations").mkdir()
    main_path = root / "main" / "0001_01.smc"
    left_mean, right_mean = _hand_means()
    with h5py.File(main_path, "w") as smc:
        rig = smc.create_group("Camera_5mp")
        rig.attrs.update(num_device=len(camera_ids), num_frame=meta.num_frames, resolution=[SIZE, SIZE])
        for c, camera in enumerate(camera_ids):
            color = rig.create_group(f"{camera}/color")
            for t in range(meta.num_frames):
                color.create_dataset(str(t), data=jpeg(truth.read_frame(group, t, c)))
    with h5py.File(root / "annotations" / "0001_01_annots.smc", "w") as smc:
        for c, camera in enumerate(camera_ids):
            calib = smc.create_group(f"Camera_Parameter/{int(camera):02d}")
            calib["K"] = meta.Ks[c].astype(np.float64)
            calib["D"] = np.zeros(5)
            calib["RT"] = np.linalg.inv(meta.viewmats[c].astype(np.float64))  # camera-to-world, OpenCV axes
            calib["Color_Calibration"] = np.eye(3)
            masks = smc.create_group(f"Mask/{camera}/mask")
            for t in range(meta.num_frames):
                mask = truth.read_mask(group, t, c)
                masks.create_dataset(str(t), data=jpeg(np.repeat(mask[..., None], 3, axis=-1)))
        p = meta.smplx
        fullpose = np.concatenate(
            [
                p["global_orient"], p["body_pose"], p["jaw_pose"], p["leye_pose"], p["reye_pose"],
                p["left_hand_pose"] - left_mean, p["right_hand_pose"] - right_mean,
            ],
            axis=1,
        ).reshape(-1, 55, 3)  # fmt: skip
        fits = smc.create_group("SMPLx")
        fits["fullpose"] = fullpose
        betas = np.asarray(p["betas"])
        fits["betas"] = np.broadcast_to(betas, (meta.num_frames, betas.shape[-1])).copy()
        fits["expression"], fits["transl"], fits["scale"] = p["expression"], p["transl"], np.ones(1)
    return main_path


@pytest.fixture(scope="module")
def dna(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A synthetic studio person (the truth), its DNA-Rendering files and a stand-in SMPL-X model file
    holding only the mean hands (the real one is licensed; only these two arrays are read)."""
    folder = tmp_path_factory.mktemp("dna")
    truth, group = synthetic_truth(folder, FRAMES, CAMERAS, SIZE)
    main_path = _write_dna(folder / "dna", truth, group)
    model = folder / "SMPLX_NEUTRAL.npz"
    left, right = _hand_means()
    np.savez(model, hands_meanl=left, hands_meanr=right)
    return {"folder": folder, "truth": truth, "group": group, "main": main_path, "model": model}


def _import(dna: dict, store: Path, **params: object) -> list[str]:
    importer = default_registry().build(
        "importer", "dna-rendering", {"smplx_model": str(dna["model"]), **params}
    )
    return importer.import_into(dna["main"], str(store))


@pytest.fixture(scope="module")
def imported(dna: dict) -> dict:
    store = dna["folder"] / "imported.zarr"
    (name,) = _import(dna, store, identity="actor-0001", split="train")
    return {"store": store, "name": name, "reader": StoreReader(str(store))}


def test_cameras_parameters_and_pixels_are_the_truth(dna: dict, imported: dict) -> None:
    truth, reader = dna["truth"].meta(dna["group"]), imported["reader"].meta(imported["name"])
    assert (reader.num_frames, reader.num_cameras) == (FRAMES, CAMERAS)
    assert reader.attrs["camera_ids"] == ["0", "7", "23"] and reader.identity == "actor-0001"
    np.testing.assert_allclose(reader.viewmats, truth.viewmats, atol=1e-5)
    np.testing.assert_allclose(reader.Ks, truth.Ks, atol=1e-5)
    for t in range(FRAMES):  # every key, hands with the mean hand added back
        got, want = reader.params(t), truth.params(t)
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_allclose(got[key], want[key], atol=1e-6, err_msg=f"frame {t} {key}")
    for t in range(FRAMES):  # JPEG-coded in the fixture: equal up to its loss
        image = imported["reader"].read_frame(imported["name"], t, 1).astype(float)
        assert np.abs(image - dna["truth"].read_frame(dna["group"], t, 1)).mean() < 4.0


def test_the_store_checks_reads_and_trains_one_step(imported: dict, tmp_path: Path) -> None:
    assert check_store(str(imported["store"])) == []
    assert main(["data", "check", str(imported["store"])]) == 0
    assert trains_one_step(imported["store"], tmp_path / "run")


def test_the_posed_template_lands_on_the_imported_masks(imported: dict) -> None:
    """With the imported cameras the body falls on the masks (IoU above 0.7, measured 0.81: the synthetic
    clothes stand off the template's anchors); reading RT as world-to-camera, the mistake this importer
    must not make, puts it elsewhere (IoU below 0.4, measured 0.19): the check can fail."""
    reader, name = imported["reader"], imported["name"]
    viewmats = reader.meta(name).viewmats
    assert silhouette_iou(reader, name, viewmats) > 0.7
    assert silhouette_iou(reader, name, np.linalg.inv(viewmats)) < 0.4


# ------------------------------------------------------------------------------------------ bad input
def _edit(path: Path, edit) -> None:
    with h5py.File(path, "r+") as smc:
        edit(smc)


def _annots(main_path: Path) -> Path:
    return main_path.parent.parent / "annotations" / f"{main_path.stem}_annots.smc"


def _set(key: str, value: np.ndarray, where: str = "annotations"):
    """A damage: replace ``key`` of the annotations (or the main file) with ``value``."""
    return lambda m: _edit(_annots(m) if where == "annotations" else m, lambda smc: _replace(smc, key, value))


def _drop(key: str, where: str = "annotations"):
    """A damage: delete ``key`` from the annotations (or the main file)."""
    return lambda m: _edit(_annots(m) if where == "annotations" else m, lambda smc: smc.__delitem__(key))


BAD = [
    ("annotations-missing", lambda m: _annots(m).unlink(), "annotations .smc file", "does not exist"),
    ("camera-without-frames", lambda m: [_drop(f"Camera_5mp/7/color/{t}", "main")(m) for t in ("0", "1")],
     "camera '7' has no frames", ""),
    ("mask-frames-differ", _drop("Mask/7/mask/1"), "camera '7' has 1 mask frames for 2 image frames", ""),
    ("fits-of-other-length", _set("SMPLx/transl", np.zeros((5, 3))), "SMPLx/transl has 5 frames",
     "fullpose 2"),
    ("smpl-not-smplx", _set("SMPLx/fullpose", np.zeros((2, 24, 3))), "expected [N, 55, 3]",
     "needs a SMPL-X fit"),
    ("millimetres", _set("SMPLx/transl", np.full((2, 3), 1500.0)), "is it in millimetres", "divide by 1000"),
    ("no-smplx-group", lambda m: _edit(_annots(m), lambda smc: smc.move("SMPLx", "SMPL")), "no 'SMPLx' group",
     "SMPL fits"),
    ("no-calibration", _drop("Camera_Parameter/23"), "no Camera_Parameter/23 for camera '23'", ""),
    ("corrupt-last-frame", _set("Camera_5mp/23/color/1", np.zeros(9, np.uint8), "main"),  # found mid-write
     "/Camera_5mp/23/color/1 is not a decodable image", "0001_01.smc"),
    ("distorted-without-opencv", _set("Camera_Parameter/00/D", np.array([0.1, 0, 0, 0, 0])),
     "lens distortion", "opencv-python-headless"),
]  # fmt: skip


def _replace(smc: h5py.File, key: str, value: np.ndarray) -> None:
    del smc[key]
    smc[key] = value


@pytest.mark.parametrize(("label", "damage", "first", "second"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_source_is_named_and_leaves_no_store(
    label: str,
    damage,
    first: str,
    second: str,
    dna: dict,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if label == "distorted-without-opencv":
        monkeypatch.setitem(sys.modules, "cv2", None)  # a machine without OpenCV: importing it fails
    shutil.copytree(dna["main"].parent.parent, tmp_path / "dna")
    main_path = tmp_path / "dna" / "main" / dna["main"].name
    damage(main_path)
    store = tmp_path / "out.zarr"
    argv = ["data", "import", "--format", "dna-rendering", "--set", f"smplx_model={dna['model']}"]
    assert main([*argv, str(main_path), str(store)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert first in err and second in err and "Traceback" not in err, err
    assert not store.exists()


def test_the_mean_hand_is_required_and_named(
    dna: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "out.zarr"
    assert main(["data", "import", "--format", "dna-rendering", str(dna["main"]), str(store)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "set smplx_model" in err and "SMPLX_NEUTRAL.npz" in err and not store.exists()
    bad = tmp_path / "other.npz"
    np.savez(bad, v_template=np.zeros(3))
    argv = ["data", "import", "--format", "dna-rendering", "--set", f"smplx_model={bad}"]
    assert main([*argv, str(dna["main"]), str(store)]) == 2
    assert "has no ['hands_meanl', 'hands_meanr']" in capsys.readouterr().err


def _distort(image: np.ndarray, K: np.ndarray, D: np.ndarray) -> np.ndarray:
    """What a lens with distortion ``D`` shows of the ideal pinhole image ``image``: each distorted pixel
    samples the ideal image where OpenCV's model says it came from."""
    import cv2

    h, w = image.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 1, 2).astype(np.float64)
    ideal = cv2.undistortPoints(grid, K, D, P=K).reshape(h, w, 2).astype(np.float32)
    return cv2.remap(image, ideal[..., 0], ideal[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def test_distorted_cameras_are_undistorted(dna: dict, tmp_path: Path) -> None:
    """Frames and masks written through a barrel-distorting lens come back as the pinhole views (within the
    two resamplings' blur: mean error 3.6-4.4 grey levels against 12.1-12.4 for the distorted frames),
    with the intrinsics unchanged, so the template lands on the masks again."""
    pytest.importorskip("cv2")
    D = np.array([-0.3, 0.08, 0.0, 0.0, 0.0])
    truth, group = dna["truth"], dna["group"]
    meta = truth.meta(group)
    shutil.copytree(dna["main"].parent.parent, tmp_path / "dna")
    main_path = tmp_path / "dna" / "main" / dna["main"].name
    error_distorted = []
    with h5py.File(main_path, "r+") as smc, h5py.File(_annots(main_path), "r+") as annots:
        for c, camera in enumerate(("0", "7", "23")):
            K = meta.Ks[c].astype(np.float64)
            _replace(annots, f"Camera_Parameter/{int(camera):02d}/D", D)
            for t in range(FRAMES):
                frame = _distort(truth.read_frame(group, t, c), K, D)
                error_distorted.append(np.abs(frame.astype(float) - truth.read_frame(group, t, c)).mean())
                _replace(smc, f"Camera_5mp/{camera}/color/{t}", jpeg(frame))
                mask = _distort(truth.read_mask(group, t, c), K, D)
                _replace(annots, f"Mask/{camera}/mask/{t}", jpeg(np.repeat(mask[..., None], 3, axis=-1)))
    store = tmp_path / "undistorted.zarr"
    importer = default_registry().build("importer", "dna-rendering", {"smplx_model": str(dna["model"])})
    (name,) = importer.import_into(main_path, str(store))
    reader = StoreReader(str(store))
    np.testing.assert_allclose(reader.meta(name).Ks, meta.Ks, atol=1e-5)
    errors = [
        np.abs(reader.read_frame(name, t, c).astype(float) - truth.read_frame(group, t, c)).mean()
        for t in range(FRAMES) for c in range(CAMERAS)
    ]  # fmt: skip
    assert max(errors) < 0.5 * min(error_distorted), (errors, error_distorted)
    assert silhouette_iou(reader, name, reader.meta(name).viewmats) > 0.7
