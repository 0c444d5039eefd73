"""The ``actorshq`` importer on a fixture written here in ActorsHQ's documented layout (``calibration.csv``
with axis-angle camera-to-world rotations and intrinsics normalised by the image size, ``rgbs/``,
``masks/``) plus per-frame SMPL-X files, from a synthetic person whose truth is known: cameras and
parameters found again, the store checks and trains a step, the template lands on the masks; mixed image
sizes, a camera without frames and missing fits are located errors with no store left."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from importer_truth import jpeg, silhouette_iou, synthetic_truth, trains_one_step
from PIL import Image
from scipy.spatial.transform import Rotation

from lca.cli import main
from lca.data.check import check_store
from lca.data.reader import StoreReader

FRAMES, CAMERAS, SIZE = 2, 3, 48
NAMES = ["Cam001", "Cam002", "Cam003"]


def _write_actorshq(root: Path, truth: StoreReader, group: str) -> None:
    meta = truth.meta(group)
    root.mkdir(parents=True)
    rows = []
    for c, name in enumerate(NAMES):
        c2w = np.linalg.inv(meta.viewmats[c].astype(np.float64))
        K = meta.Ks[c].astype(np.float64)
        rx, ry, rz = Rotation.from_matrix(c2w[:3, :3]).as_rotvec()
        tx, ty, tz = c2w[:3, 3]
        fx, fy, px, py = K[0, 0] / SIZE, K[1, 1] / SIZE, K[0, 2] / SIZE, K[1, 2] / SIZE  # normalised
        values = (name, SIZE, SIZE, rx, ry, rz, tx, ty, tz, fx, fy, px, py)
        rows.append(
            dict(
                zip(
                    ("name", "w", "h", "rx", "ry", "rz", "tx", "ty", "tz", "fx", "fy", "px", "py"),
                    values,
                    strict=True,
                )
            )
        )
        (root / "rgbs" / name).mkdir(parents=True)
        (root / "masks" / name).mkdir(parents=True)
        for t in range(meta.num_frames):
            (root / "rgbs" / name / f"{name}_rgb{t:06d}.jpg").write_bytes(
                jpeg(truth.read_frame(group, t, c)).tobytes()
            )
            Image.fromarray(truth.read_mask(group, t, c)).save(
                root / "masks" / name / f"{name}_mask{t:06d}.png"
            )
    with open(root / "calibration.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "smplx").mkdir()
    for t in range(meta.num_frames):
        np.savez(root / "smplx" / f"{t:06d}.npz", **meta.params(t))


@pytest.fixture(scope="module")
def hq(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("actorshq")
    truth, group = synthetic_truth(folder, FRAMES, CAMERAS, SIZE)
    source = folder / "Actor01" / "Sequence1" / "1x"
    _write_actorshq(source, truth, group)
    store = folder / "imported.zarr"
    assert main(["data", "import", "--format", "actorshq", str(source), str(store), "--split", "train"]) == 0
    return {"truth": truth, "group": group, "source": source, "store": store}


def test_cameras_and_parameters_are_the_truth_and_the_store_trains(hq: dict, tmp_path: Path) -> None:
    truth, reader = hq["truth"].meta(hq["group"]), StoreReader(str(hq["store"]))
    meta = reader.meta("Actor01-Sequence1")
    assert meta.identity == "Actor01" and meta.attrs["camera_ids"] == NAMES
    np.testing.assert_allclose(meta.viewmats, truth.viewmats, atol=1e-5)
    np.testing.assert_allclose(meta.Ks, truth.Ks, atol=1e-4)
    for t in range(FRAMES):
        for key, value in truth.params(t).items():
            np.testing.assert_allclose(meta.params(t)[key], value, atol=1e-6, err_msg=f"frame {t} {key}")
    assert check_store(str(hq["store"])) == []
    assert silhouette_iou(reader, "Actor01-Sequence1", meta.viewmats) > 0.7
    assert silhouette_iou(reader, "Actor01-Sequence1", np.linalg.inv(meta.viewmats)) < 0.4  # c2w kept: wrong
    assert trains_one_step(hq["store"], tmp_path / "run")


def _portrait(source: Path) -> None:
    path = source / "calibration.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    rows[2]["w"], rows[2]["h"] = str(SIZE), str(SIZE * 2)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


BAD = [
    ("no-calibration", lambda s: (s / "calibration.csv").unlink(), "calibration.csv does not exist", ""),
    ("mixed-sizes", _portrait, "the cameras have 2 image sizes", "Cam003"),
    ("camera-without-frames", lambda s: shutil.rmtree(s / "rgbs" / "Cam002"), "camera 'Cam002' has no frames",
     ""),
    ("missing-mask", lambda s: (s / "masks/Cam001/Cam001_mask000001.png").unlink(), "Cam001_mask000001.png",
     "does not exist"),
    ("no-fits", lambda s: shutil.rmtree(s / "smplx"), "ActorsHQ ships none", "fit SMPL-X"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "damage", "first", "second"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_source_is_named_and_leaves_no_store(
    label: str, damage, first: str, second: str, hq: dict, tmp_path: Path, capsys
) -> None:
    source = tmp_path / "Actor01" / "Sequence1" / "1x"
    shutil.copytree(hq["source"], source)
    damage(source)
    store = tmp_path / "out.zarr"
    assert main(["data", "import", "--format", "actorshq", str(source), str(store)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert first in err and second in err and "Traceback" not in err, err
    assert not store.exists()
