"""``transforms-json`` importer: a folder of images (or a video) with nerfstudio / instant-ngp
``transforms.json`` cameras and per-frame SMPL-X parameters, into a ``wild-video`` clip or a ``studio``
capture.

Input conventions:

- ``transforms.json``: intrinsics ``fl_x, fl_y, cx, cy`` (or ``camera_angle_x``, optionally
  ``camera_angle_y``), ``w``/``h`` optional, at top level or per frame (per frame wins); each frame has
  ``file_path`` and ``transform_matrix``, camera-to-world in the OpenGL/Blender convention (x right,
  y up, camera looking down -z). Converted here to OpenCV world-to-camera: ``inv(c2w @ diag(1,-1,-1,1))``.
- Masks: a frame's ``mask_path`` if given, else the image's alpha channel, else all foreground.
- SMPL-X: one file per frame named after the image stem (``000012.png`` -> ``smplx/000012.npz`` or
  ``.json``) with keys ``betas, global_orient, body_pose, transl`` (required) and ``left_hand_pose,
  right_hand_pose, jaw_pose, leye_pose, reye_pose, expression`` (zero when absent, as SMPL-X's own
  defaults), optionally ``face_box [4]`` (pixels) and ``gaze [2,3]``. Leading singleton axes are dropped.
- Video: frames of the video in order match ``frames`` of ``transforms.json`` in order (its
  ``file_path`` only names the SMPL-X file); decoded with imageio's ffmpeg plugin.
- Studio: a frame's camera is its ``camera_id`` key, else the folder of its ``file_path``
  (``cam03/000012.png``); time steps are the image stems, which every camera must share.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from pydantic import Field

from lca.contracts.importer import Importer, ImporterConfig
from lca.data.writer import StoreWriter
from lca_plugins.importers.smplx_files import load_smplx_file

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


class TransformsJsonConfig(ImporterConfig):
    transforms: str | None = None
    """The transforms.json file (default: SOURCE/transforms.json, or the video's folder's)."""
    smplx_dir: str | None = None
    """Folder of the per-frame SMPL-X files (default: <transforms.json folder>/smplx)."""
    fps: float = Field(30.0, gt=0)
    """Frame rate stored with the group (transforms.json carries none)."""


class TransformsJsonImporter(Importer):
    """One clip (wild-video) or capture (studio) from a transforms.json folder or a video, with SMPL-X files.

    ``source`` is a folder holding ``transforms.json`` and the images, or a video file; the group name
    defaults to the source's name (its stem for a video)."""

    Config: ClassVar[type[TransformsJsonConfig]] = TransformsJsonConfig
    config: TransformsJsonConfig

    def import_into(self, source: str | Path, store: str) -> list[str]:
        cfg = self.config
        source = Path(source)
        is_video = source.suffix.lower() in VIDEO_SUFFIXES
        folder = source.parent if is_video else source
        meta_path = Path(cfg.transforms) if cfg.transforms else folder / "transforms.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no transforms.json at {meta_path}")
        meta = json.loads(meta_path.read_text())
        frames = meta.get("frames")
        if not frames:
            raise ValueError(f"{meta_path}: no 'frames'")
        params_dir = Path(cfg.smplx_dir) if cfg.smplx_dir else meta_path.parent / "smplx"
        name = cfg.group or source.stem
        images = _video_frames(source) if is_video else (_load_image(meta_path.parent, f) for f in frames)
        identity = cfg.identity or name
        args = (meta_path, params_dir, name, identity, cfg.split_for(identity), cfg.fps, source)
        with StoreWriter(store, cfg.layout, **cfg.writer_options()) as writer:
            if cfg.layout == "studio":
                _write_studio(writer, meta, frames, list(images), *args)
            else:
                _write_wild(writer, meta, frames, images, *args)
        return [name]


def _write_wild(
    writer: StoreWriter,
    meta: dict[str, Any],
    frames: list[dict[str, Any]],
    images: Iterator[tuple[np.ndarray, np.ndarray]],
    meta_path: Path,
    params_dir: Path,
    name: str,
    identity: str,
    split: str,
    fps: float,
    source: Path,
) -> None:
    clip = None
    images = iter(images)
    for index, frame in enumerate(frames):
        rgb, mask = next(images, (None, None))
        if rgb is None:
            raise ValueError(f"{source}: the video has {index} frames, its transforms.json {len(frames)}")
        params = load_smplx_file(params_dir, Path(frame["file_path"]).stem, meta_path, index)
        if clip is None:
            clip = writer.add_clip(
                name,
                identity=identity,
                split=split,
                num_frames=len(frames),
                height=rgb.shape[0],
                width=rgb.shape[1],
                fps=fps,
                source=f"import:{source}",
                num_betas=params["betas"].shape[0],
                num_expression=params["expression"].shape[0],
                with_gaze="gaze" in params,
            )
        viewmat, K = _camera(meta, frame, rgb.shape[1], rgb.shape[0], meta_path, index)
        clip.append(
            image=rgb,
            mask=mask,
            smplx=params,
            face_box=params.get("face_box", np.zeros(4)),
            viewmat=viewmat,
            K=K,
            gaze=params.get("gaze"),
        )
    extra = sum(1 for _ in images)
    if extra:
        raise ValueError(
            f"{source}: the video has {len(frames) + extra} frames, its transforms.json {len(frames)}"
        )


def _write_studio(
    writer: StoreWriter,
    meta: dict[str, Any],
    frames: list[dict[str, Any]],
    images: list[tuple[np.ndarray, np.ndarray]],
    meta_path: Path,
    params_dir: Path,
    name: str,
    identity: str,
    split: str,
    fps: float,
    source: Path,
) -> None:
    by_camera: dict[str, dict[str, int]] = defaultdict(dict)
    for index, frame in enumerate(frames):
        camera = str(frame.get("camera_id", Path(frame["file_path"]).parent.name))
        by_camera[camera][Path(frame["file_path"]).stem] = index
    cameras = sorted(by_camera)
    steps = sorted(by_camera[cameras[0]])
    for camera in cameras:
        if sorted(by_camera[camera]) != steps:
            raise ValueError(
                f"{meta_path}: camera '{camera}' does not have the same frames as '{cameras[0]}'"
            )
    first = [by_camera[c][steps[0]] for c in cameras]
    height, width = images[first[0]][0].shape[:2]
    cams = [_camera(meta, frames[i], width, height, meta_path, i) for i in first]
    params0 = load_smplx_file(params_dir, steps[0], meta_path, first[0])
    capture = writer.add_capture(
        name,
        identity=identity,
        split=split,
        num_frames=len(steps),
        height=height,
        width=width,
        viewmats=np.stack([v for v, _ in cams]),
        Ks=np.stack([k for _, k in cams]),
        camera_ids=cameras,
        fps=fps,
        source=f"import:{source}",
        num_betas=params0["betas"].shape[0],
        num_expression=params0["expression"].shape[0],
        with_gaze="gaze" in params0,
    )
    for step in steps:
        indices = [by_camera[c][step] for c in cameras]
        params = load_smplx_file(params_dir, step, meta_path, indices[0])
        boxes = params.get("face_box", np.zeros(4))
        capture.append(
            image=np.stack([images[i][0] for i in indices]),
            mask=np.stack([images[i][1] for i in indices]),
            smplx=params,
            face_box=np.broadcast_to(boxes, (len(cameras), 4)),
            gaze=params.get("gaze"),
        )


def _camera(
    meta: dict[str, Any], frame: dict[str, Any], width: int, height: int, where: Path, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera ``[4,4]`` and ``K [3,3]`` of one transforms.json frame."""

    def get(key: str) -> Any:
        return frame.get(key, meta.get(key))

    w, h = float(get("w") or width), float(get("h") or height)
    fl_x, fl_y = get("fl_x"), get("fl_y")
    if fl_x is None:
        angle_x = get("camera_angle_x")
        if angle_x is None:
            raise ValueError(f"{where}: frame {index} has neither fl_x nor camera_angle_x")
        fl_x = 0.5 * w / math.tan(0.5 * float(angle_x))
    if fl_y is None:
        angle_y = get("camera_angle_y")
        fl_y = 0.5 * h / math.tan(0.5 * float(angle_y)) if angle_y is not None else fl_x
    # transforms.json's cx, cy follow the same pixel-centre convention as OpenCV (nerfstudio's default w/2).
    cx, cy = get("cx"), get("cy")
    cx = w / 2 if cx is None else float(cx)
    cy = h / 2 if cy is None else float(cy)
    K = np.array([[fl_x, 0, cx], [0, fl_y, cy], [0, 0, 1]], dtype=np.float64)
    scale_x, scale_y = width / w, height / h  # images stored at another size than the calibration
    K[0] *= scale_x
    K[1] *= scale_y
    c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)
    if c2w.shape == (3, 4):
        c2w = np.vstack([c2w, [0, 0, 0, 1]])
    if c2w.shape != (4, 4):
        raise ValueError(f"{where}: frame {index} transform_matrix has shape {c2w.shape}, expected 4x4")
    return np.linalg.inv(c2w @ OPENGL_TO_OPENCV).astype(np.float32), K.astype(np.float32)


def _load_image(folder: Path, frame: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    path = folder / frame["file_path"]
    if not path.suffix:  # instant-ngp allows file_path without extension
        matches = sorted(path.parent.glob(path.name + ".*"))
        path = matches[0] if matches else path
    if not path.is_file():
        raise FileNotFoundError(f"image {path} (file_path '{frame['file_path']}') does not exist")
    with Image.open(path) as image:
        rgba = np.array(image.convert("RGBA"))
        has_alpha = "A" in image.getbands()
    mask = rgba[..., 3] if has_alpha else np.full(rgba.shape[:2], 255, np.uint8)
    if "mask_path" in frame:
        with Image.open(folder / frame["mask_path"]) as image:
            mask = np.array(image.convert("L"))
    return np.ascontiguousarray(rgba[..., :3]), mask


def _video_frames(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    import imageio.v3 as iio

    for rgb in iio.imiter(path, plugin="FFMPEG"):
        yield np.ascontiguousarray(rgb[..., :3]), np.full(rgb.shape[:2], 255, np.uint8)
