"""Import from a nerfstudio transforms.json folder (images made with Pillow) into both layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from lca.data.check import check_store
from lca.data.importer import import_transforms
from lca.data.reader import StoreReader


def _c2w_opengl(position: np.ndarray) -> np.ndarray:
    """A camera at ``position`` looking at the origin, OpenGL axes (x right, y up, looking down -z)."""
    back = position / np.linalg.norm(position)
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([right, up, back], axis=1)
    c2w[:3, 3] = position
    return c2w


def _make_folder(root: Path, studio: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    (root / "smplx").mkdir(parents=True)
    frames, images, positions = [], [], []
    cams = ["cam0", "cam1"] if studio else [""]
    for step in range(3):
        for c, cam in enumerate(cams):
            position = np.array([np.sin(step + c), 0.3, 2.0 * np.cos(step + c)])
            rgba = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
            rel = Path(cam) / f"{step:04d}.png"
            (root / rel).parent.mkdir(exist_ok=True)
            Image.fromarray(rgba, "RGBA").save(root / rel)
            frames.append({"file_path": str(rel), "transform_matrix": _c2w_opengl(position).tolist()})
            images.append(rgba)
            positions.append(position)
        params = {
            "betas": np.ones(10).tolist(),
            "global_orient": [0.1, 0, 0],
            "body_pose": np.full(63, 0.2).tolist(),
            "transl": [0, 0, step],
            "face_box": [2, 3, 12, 15],
        }
        (root / "smplx" / f"{step:04d}.json").write_text(json.dumps(params))
    meta = {"camera_angle_x": 1.0, "w": 30, "h": 20, "frames": frames}
    (root / "transforms.json").write_text(json.dumps(meta))
    return images, positions


def test_import_wild_video(tmp_path: Path) -> None:
    images, positions = _make_folder(tmp_path / "clip", studio=False)
    store = str(tmp_path / "w.zarr")
    name = import_transforms(tmp_path / "clip", store, "wild-video", identity="person", split="val")
    assert check_store(store) == []
    reader = StoreReader(store)
    meta = reader.meta(name)
    assert reader.group_names("val") == [name] and meta.identity == "person"
    fx = 0.5 * 30 / np.tan(0.5)
    np.testing.assert_allclose(meta.Ks[0], [[fx, 0, 15], [0, fx, 10], [0, 0, 1]], rtol=1e-6)
    for t, (rgba, position) in enumerate(zip(images, positions, strict=True)):
        np.testing.assert_array_equal(reader.read_frame(name, t), rgba[..., :3])
        np.testing.assert_array_equal(reader.read_mask(name, t), rgba[..., 3])
        viewmat = meta.viewmats[t].astype(np.float64)
        np.testing.assert_allclose(viewmat @ [*position, 1.0], [0, 0, 0, 1], atol=1e-5)  # camera centre
        origin = viewmat @ [0.0, 0.0, 0.0, 1.0]  # the camera looks at the origin: +z ahead in OpenCV
        np.testing.assert_allclose(origin[:3], [0, 0, np.linalg.norm(position)], atol=1e-5)
        above = viewmat @ [0.0, 1.0, 0.0, 1.0]  # world up appears above the centre: smaller OpenCV y
        assert above[1] < 0
    np.testing.assert_allclose(meta.smplx["transl"][:, 2], [0, 1, 2])
    np.testing.assert_allclose(meta.smplx["left_hand_pose"], 0)
    np.testing.assert_allclose(meta.face_box[1], [2, 3, 12, 15])


def test_import_studio(tmp_path: Path) -> None:
    images, _ = _make_folder(tmp_path / "cap", studio=True)
    store = str(tmp_path / "s.zarr")
    name = import_transforms(tmp_path / "cap", store, "studio", codec="jpeg")
    assert check_store(store) == []
    reader = StoreReader(store)
    meta = reader.meta(name)
    assert (meta.num_frames, meta.num_cameras) == (3, 2) and meta.attrs["camera_ids"] == ["cam0", "cam1"]
    np.testing.assert_array_equal(reader.read_mask(name, 2, 1), images[2 * 2 + 1][..., 3])
