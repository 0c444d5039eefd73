"""The ``zju-mocap`` importer on a fixture written here in ZJU-MoCap's documented layout (``annots.npy``
with world-to-camera ``R``/``T`` in millimetres, ``Camera_B<n>/<frame>.jpg``, ``mask_cihp/`` part-label
masks, SMPL ``params/``) plus per-frame SMPL-X files in the toolkit's format, from a synthetic person whose
truth is known. Checked: cameras in metres and parameters equal the truth, the store checks, reads and
trains a step, the posed template lands on the imported masks; pickled code in ``annots.npy`` is never
run; bad inputs are located errors with no store left."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from importer_truth import RunsCode, jpeg, silhouette_iou, synthetic_truth, trains_one_step

from lca.cli import main
from lca.data.check import check_store
from lca.data.reader import StoreReader

FRAMES, CAMERAS, SIZE = 2, 3, 48


def _write_zju(root: Path, truth: StoreReader, group: str) -> None:
    meta = truth.meta(group)
    ims, cams = [], {"K": [], "D": [], "R": [], "T": []}
    for c in range(meta.num_cameras):
        viewmat = meta.viewmats[c].astype(np.float64)
        cams["K"].append(meta.Ks[c].astype(np.float64))
        cams["D"].append(np.zeros((5, 1)))
        cams["R"].append(viewmat[:3, :3])
        cams["T"].append(viewmat[:3, 3:4] * 1000.0)  # millimetres, as the release stores them
    (root / "params").mkdir(parents=True)
    (root / "smplx").mkdir()
    for t in range(meta.num_frames):
        views = []
        for c in range(meta.num_cameras):
            rel = Path(f"Camera_B{c + 1}") / f"{t:06d}.jpg"
            (root / rel).parent.mkdir(exist_ok=True)
            (root / rel).write_bytes(jpeg(truth.read_frame(group, t, c)).tobytes())
            mask = root / "mask_cihp" / rel.with_suffix(".png")
            mask.parent.mkdir(parents=True, exist_ok=True)
            labels = np.where(truth.read_mask(group, t, c) > 127, 14, 0).astype(np.uint8)  # a CIHP part label
            from PIL import Image

            Image.fromarray(labels).save(mask)
            views.append(str(rel))
        ims.append({"ims": views})
        np.save(root / "params" / f"{t}.npy", {"poses": np.zeros((1, 72)), "shapes": np.zeros((1, 10))})
        np.savez(root / "smplx" / f"{t:06d}.npz", **meta.params(t))
    np.save(root / "annots.npy", {"cams": cams, "ims": ims}, allow_pickle=True)


@pytest.fixture(scope="module")
def zju(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("zju")
    truth, group = synthetic_truth(folder, FRAMES, CAMERAS, SIZE)
    source = folder / "CoreView_377"
    _write_zju(source, truth, group)
    store = folder / "imported.zarr"
    assert main(["data", "import", "--format", "zju-mocap", str(source), str(store), "--split", "train"]) == 0
    return {"folder": folder, "truth": truth, "group": group, "source": source, "store": store}


def test_cameras_in_metres_and_parameters_are_the_truth(zju: dict) -> None:
    truth = zju["truth"].meta(zju["group"])
    reader = StoreReader(str(zju["store"]))
    meta = reader.meta("CoreView_377")
    assert meta.attrs["camera_ids"] == ["Camera_B1", "Camera_B2", "Camera_B3"]
    np.testing.assert_allclose(meta.viewmats, truth.viewmats, atol=1e-5)
    np.testing.assert_allclose(meta.Ks, truth.Ks, atol=1e-5)
    for t in range(FRAMES):
        for key, value in truth.params(t).items():
            np.testing.assert_allclose(meta.params(t)[key], value, atol=1e-6, err_msg=f"frame {t} {key}")
        np.testing.assert_array_equal(
            reader.read_mask("CoreView_377", t, 2) > 0, zju["truth"].read_mask(zju["group"], t, 2) > 127
        )


def test_the_store_checks_trains_and_the_template_lands_on_its_masks(zju: dict, tmp_path: Path) -> None:
    assert check_store(str(zju["store"])) == []
    reader = StoreReader(str(zju["store"]))
    viewmats = reader.meta("CoreView_377").viewmats
    assert silhouette_iou(reader, "CoreView_377", viewmats) > 0.7  # measured 0.81, as for DNA-Rendering
    wrong = viewmats.copy()
    wrong[:, :3, 3] *= 1000.0  # the millimetres kept: the body lands nowhere
    assert silhouette_iou(reader, "CoreView_377", wrong) < 0.1
    assert trains_one_step(zju["store"], tmp_path / "run")


def test_pickled_code_in_annots_is_refused_not_run(zju: dict, tmp_path: Path, capsys) -> None:
    source = tmp_path / "seq"
    shutil.copytree(zju["source"], source)
    marker = tmp_path / "ran"

    np.save(source / "annots.npy", np.array(RunsCode(marker), dtype=object), allow_pickle=True)
    assert main(["data", "import", "--format", "zju-mocap", str(source), str(tmp_path / "s.zarr")]) == 2
    assert "refused to unpickle (it names posix.system" in " ".join(capsys.readouterr().err.split())
    assert not marker.exists() and not (tmp_path / "s.zarr").exists()


def _annots(source: Path) -> dict:
    from lca_plugins.importers.safe_npy import load_pickled_npy

    return load_pickled_npy(source / "annots.npy")


def _save_annots(source: Path, annots: dict) -> None:
    np.save(source / "annots.npy", annots, allow_pickle=True)


def _metres(source: Path) -> None:
    annots = _annots(source)
    annots["cams"]["T"] = [t / 1000.0 for t in annots["cams"]["T"]]
    _save_annots(source, annots)


def _drop_view(source: Path) -> None:
    annots = _annots(source)
    annots["ims"][1]["ims"] = annots["ims"][1]["ims"][:2]
    _save_annots(source, annots)


def _pca_hands(source: Path) -> None:
    path = source / "smplx" / "000001.npz"
    params = dict(np.load(path))
    params["left_hand_pose"] = np.zeros(12)
    np.savez(path, **params)


def _millimetre_transl(source: Path) -> None:
    path = source / "smplx" / "000000.npz"
    params = dict(np.load(path))
    params["transl"] = params["transl"] * 1000.0 + 500.0
    np.savez(path, **params)


def _rm(relative: str):
    return lambda source: (source / relative).unlink()


BAD = [
    ("no-annots", lambda s: (s / "annots.npy").unlink(), "no annots.npy at", ""),
    ("smpl-only", lambda s: shutil.rmtree(s / "smplx"), "its params/ are SMPL fits", "needs SMPL-X"),
    ("missing-image", _rm("Camera_B2/000001.jpg"), "Camera_B2/000001.jpg", "does not exist"),
    ("missing-mask", _rm("mask_cihp/Camera_B3/000000.png"), "mask_cihp/Camera_B3/000000.png", "mask_dir"),
    ("camera-without-frame", _drop_view, "frame 1 has 2 images, expected one image per camera (3)", ""),
    ("translations-in-metres", _metres, "ZJU-MoCap's T is in millimetres", "already metres"),
    ("pca-hands", _pca_hands, "left_hand_pose has 12 values, expected 45", "PCA"),
    ("smplx-in-millimetres", _millimetre_transl, "is it in millimetres", "000000"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "damage", "first", "second"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_source_is_named_and_leaves_no_store(
    label: str, damage, first: str, second: str, zju: dict, tmp_path: Path, capsys
) -> None:
    source = tmp_path / "CoreView_377"
    shutil.copytree(zju["source"], source)
    damage(source)
    store = tmp_path / "out.zarr"
    assert main(["data", "import", "--format", "zju-mocap", str(source), str(store)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert first in err and second in err and "Traceback" not in err, err
    assert not store.exists()
