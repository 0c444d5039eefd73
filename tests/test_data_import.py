"""Importers as a registry kind: the built-in ``transforms-json`` (a nerfstudio folder made with Pillow)
into both layouts, through the registry and through ``lca data import``; the kind's conformance check; and
a new format added by an installed plugin package and used by ``lca data import --format``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lca.cli import main
from lca.data.check import check_store
from lca.data.reader import StoreReader
from lca.registry import build_registry, default_registry
from lca.testing.importer import check_importer


def _import(source: Path, store: str, **params: object) -> str:
    (name,) = default_registry().build("importer", "transforms-json", params).import_into(source, store)
    return name


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


def test_imported_splits_follow_the_subject_id_unless_given(tmp_path: Path) -> None:
    """By default a subject's split is the stable hash rule of its id (re-importing more subjects never
    moves one); an explicit split (a dataset's official list) wins."""
    from lca.splits import subject_split

    _make_folder(tmp_path / "clip", studio=False)
    for identity in ("ann", "bob", "subject-0007"):
        store = str(tmp_path / f"{identity}.zarr")
        name = _import(tmp_path / "clip", store, layout="wild-video", identity=identity)
        assert StoreReader(store).attrs(name)["split"] == subject_split(identity)
    store = str(tmp_path / "given.zarr")
    name = _import(tmp_path / "clip", store, layout="wild-video", identity="ann", split="test")
    assert StoreReader(store).attrs(name)["split"] == "test"


def test_import_wild_video(tmp_path: Path) -> None:
    images, positions = _make_folder(tmp_path / "clip", studio=False)
    store = str(tmp_path / "w.zarr")
    name = _import(tmp_path / "clip", store, layout="wild-video", identity="person", split="val")
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
    name = _import(tmp_path / "cap", store, layout="studio", codec="jpeg")
    assert check_store(store) == []
    reader = StoreReader(store)
    meta = reader.meta(name)
    assert (meta.num_frames, meta.num_cameras) == (3, 2) and meta.attrs["camera_ids"] == ["cam0", "cam1"]
    np.testing.assert_array_equal(reader.read_mask(name, 2, 1), images[2 * 2 + 1][..., 3])


@pytest.mark.parametrize("layout", ["wild-video", "studio"])
def test_transforms_json_conforms_to_the_importer_contract(tmp_path: Path, layout: str) -> None:
    _make_folder(tmp_path / "src", studio=layout == "studio")
    names = check_importer(build_registry(), "transforms-json", tmp_path / "src", {"layout": layout})
    assert names == ["src"]


def test_cli_import_keeps_its_flags_and_takes_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_folder(tmp_path / "cap", studio=True)
    store = str(tmp_path / "s.zarr")
    args = ["data", "import", str(tmp_path / "cap"), store, "--layout", "studio", "--codec", "jpeg"]
    assert main([*args, "--identity", "ann", "--set", "split=val", "--set", "fps=12"]) == 0
    assert "imported group(s) 'cap'" in capsys.readouterr().out
    reader = StoreReader(store)
    assert (reader.layout, reader.codec, reader.group_names("val")) == ("studio", "jpeg", ["cap"])
    assert reader.attrs("cap")["identity"] == "ann" and reader.attrs("cap")["fps"] == 12


def test_cli_import_mistakes_exit_2_with_a_located_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_folder(tmp_path / "clip", studio=False)
    source, store = str(tmp_path / "clip"), str(tmp_path / "w.zarr")
    assert main(["data", "import", "--format", "transform-json", source, store]) == 2
    err = capsys.readouterr().err
    assert "Unknown importer 'transform-json'" in err and "Did you mean 'transforms-json'" in err
    assert main(["data", "import", source, store, "--set", "fsp=12"]) == 2
    assert "did you mean 'fps'" in capsys.readouterr().err
    assert main(["data", "import", source, store, "--split", "val", "--set", "split=test"]) == 2
    assert "disagree" in capsys.readouterr().err
    assert not Path(store).exists()


# A third-party package adding the importer "npz-clip": one .npz holding a whole clip's arrays.
_PLUGIN_FILES = {
    "lca_npz/__init__.py": "",
    "lca_npz/hooks.py": """
        from importlib import resources

        from lca.hookspecs import hookimpl


        @hookimpl
        def lca_registry_files():
            return [resources.files("lca_npz") / "registry.yaml"]
    """,
    "lca_npz/registry.yaml": """
        version: 1
        components:
          importer:
            npz-clip: {target: "lca_npz.importer:NpzClipImporter", summary: "one .npz per clip (test plugin)"}
    """,
    "lca_npz/importer.py": """
        from pathlib import Path
        from typing import Any, ClassVar

        import numpy as np

        from lca.contracts.importer import Importer, ImporterConfig
        from lca.data.schema import SMPLX_POSE_DIMS
        from lca.data.writer import StoreWriter


        class NpzClipConfig(ImporterConfig):
            fps: float = 25.0
            \"\"\"Frame rate of the clip.\"\"\"


        class NpzClipImporter(Importer):
            Config: ClassVar[type[NpzClipConfig]] = NpzClipConfig
            test_config: ClassVar[dict[str, Any]] = {}

            def import_into(self, source, store):
                cfg, name = self.config, self.config.group or Path(source).stem
                identity = cfg.identity or name
                with np.load(source) as data:
                    images, viewmats, Ks = data["images"], data["viewmats"], data["Ks"]
                    betas = data["betas"]
                frames, height, width = images.shape[:3]
                with StoreWriter(store, "wild-video", **cfg.writer_options()) as writer:
                    clip = writer.add_clip(
                        name, identity=identity, split=cfg.split_for(identity), num_frames=frames,
                        height=height, width=width, fps=cfg.fps, source=f"npz:{source}",
                        num_betas=betas.shape[0], num_expression=10, with_gaze=False,
                    )
                    for t in range(frames):
                        smplx = {k: np.zeros(d, np.float32) for k, d in SMPLX_POSE_DIMS.items()}
                        smplx.update(betas=betas, expression=np.zeros(10, np.float32))
                        clip.append(
                            image=images[t], mask=np.full((height, width), 255, np.uint8), smplx=smplx,
                            face_box=np.zeros(4), viewmat=viewmats[t], K=Ks[t],
                        )
                return [name]
    """,
}


def test_a_plugin_package_adds_an_importer_used_by_lca_data_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    for relative, text in _PLUGIN_FILES.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(textwrap.dedent(text).lstrip())
    info = site / "lca_npz-0.1.dist-info"  # what `pip install` leaves for importlib.metadata
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lca-npz\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lca.plugins]\nnpz = lca_npz.hooks\n")
    monkeypatch.syspath_prepend(str(site))
    rng = np.random.default_rng(0)
    source = tmp_path / "walk.npz"
    np.savez(
        source,
        images=rng.integers(0, 256, (3, 16, 24, 3), dtype=np.uint8),
        viewmats=np.tile(np.eye(4, dtype=np.float32), (3, 1, 1)),
        Ks=np.tile(np.array([[20, 0, 12], [0, 20, 8], [0, 0, 1]], np.float32), (3, 1, 1)),
        betas=np.ones(10, np.float32),
    )
    assert main(["data", "import", "--list-formats"]) == 0
    listed = capsys.readouterr().out
    assert "npz-clip" in listed and "transforms-json" in listed
    store = str(tmp_path / "walk.zarr")
    assert main(["data", "import", "--format", "npz-clip", str(source), store, "--split", "test"]) == 0
    assert "imported group(s) 'walk'" in capsys.readouterr().out
    reader = StoreReader(store)
    assert reader.group_names("test") == ["walk"] and reader.meta("walk").num_frames == 3
    assert check_importer(default_registry(), "npz-clip", source) == ["walk"]
    again = ["data", "import", "--format", "npz-clip", str(source), store, "--overwrite"]
    assert main([*again, "--fps", "5"]) == 0  # a shorthand maps onto the plugin's own config field
    assert StoreReader(store).attrs("walk")["fps"] == 5
    assert main([*again, "--transforms", "t.json"]) == 2  # a field npz-clip does not have
    assert "transforms" in capsys.readouterr().err


def test_import_help_names_every_built_in_format() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "lca", "data", "import", "--help"], capture_output=True, text=True, check=True
    )
    registry = build_registry()
    builtin = [n for n in registry.names("importer") if registry.get("importer", n).origin == "builtin"]
    assert len(builtin) >= 2 and all(name in result.stdout for name in builtin), (builtin, result.stdout)


def _video_clip(root: Path, frames: int, video_frames: int) -> list[np.ndarray]:
    """A transforms.json of ``frames`` frames beside a video of ``video_frames`` (48x32, no alpha)."""
    import imageio.v3 as iio

    rng = np.random.default_rng(1)
    (root / "smplx").mkdir(parents=True)
    pictures = [np.repeat(np.repeat(rng.integers(0, 256, (4, 6, 3), dtype=np.uint8), 8, 0), 8, 1)
                for _ in range(video_frames)]  # fmt: skip
    iio.imwrite(root / "walk.mp4", np.stack(pictures), plugin="FFMPEG", fps=10, quality=10)
    entries = []
    for t in range(frames):
        position = np.array([np.sin(t), 0.2, 2.5])
        entries.append({"file_path": f"{t:04d}.png", "transform_matrix": _c2w_opengl(position).tolist()})
        params = {"betas": np.zeros(10).tolist(), "global_orient": [0, 0, 0], "body_pose": [0.0] * 63,
                  "transl": [0, 0, 0]}  # fmt: skip
        (root / "smplx" / f"{t:04d}.json").write_text(json.dumps(params))
    meta = {"fl_x": 40.0, "fl_y": 40.0, "cx": 24.0, "cy": 16.0, "w": 48, "h": 32, "frames": entries}
    (root / "transforms.json").write_text(json.dumps(meta))
    return pictures


def test_import_a_video_with_its_transforms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The video path: frames of the video in order are the frames of transforms.json; no alpha, so the
    whole frame is the person; a video of another length is an error naming both counts."""
    pictures = _video_clip(tmp_path / "clip", 3, 3)
    store = str(tmp_path / "v.zarr")
    assert main(["data", "import", str(tmp_path / "clip" / "walk.mp4"), store, "--split", "train"]) == 0
    reader = StoreReader(store)
    meta = reader.meta("walk")
    assert (meta.num_frames, meta.width, meta.height) == (3, 48, 32) and check_store(store) == []
    for t, picture in enumerate(pictures):  # 8x8 blocks survive the video coding nearly unchanged
        assert np.abs(reader.read_frame("walk", t).astype(float) - picture).mean() < 6.0
        assert reader.read_mask("walk", t).min() == 255
        expected = np.linalg.inv(_c2w_opengl(np.array([np.sin(t), 0.2, 2.5])) @ np.diag([1.0, -1, -1, 1]))
        np.testing.assert_allclose(meta.viewmats[t], expected, atol=1e-5)
    for video_frames in (2, 4):
        folder = tmp_path / f"clip{video_frames}"
        _video_clip(folder, 3, video_frames)
        out = tmp_path / f"v{video_frames}.zarr"
        assert main(["data", "import", str(folder / "walk.mp4"), str(out)]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"has {video_frames} frames, its transforms.json 3" in err and not out.exists(), err
