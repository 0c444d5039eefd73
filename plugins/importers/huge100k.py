"""``huge100k`` importer: HuGe100K subjects (IDOL's generated multi-view people) into ``studio``
captures, one per subject, each one frame seen by the subject's views (24 in the release).

Layout read (as IDOL's ``dataset/visualize_samples.py`` and ``lib/datasets/avatar_dataset.py`` read it):

- ``images<k>/param/<subject>.npy``: a pickled dict (``np.save`` of torch tensors) with ``smpl_params
  [189]`` = scale 1, transl 3, global orient 3, body 63, betas 10, left hand 45, right hand 45, jaw 3,
  left eye 3, right eye 3, expression 10; and ``poses``, per view ``[extrinsic [4,4], (fx, fy, cx, cy)]``
  with the extrinsic **world-to-camera** in OpenCV's axes (COLMAP's convention) and the intrinsics in
  pixels of the 640x896 views.
- ``images<k>/videos/<subject>.mp4``: the views as the frames of one video, in the order of ``poses``
  (decoded with imageio's ffmpeg plugin). ``<subject>.jpg`` beside it, the generated reference image,
  has no camera of its own and is not imported.
- No masks: the views are on white, and IDOL treats a pixel whose three channels all exceed 250 as
  background; the masks are made by that rule (``white_threshold``), or read from ``mask_dir``
  (``<mask_dir>/<subject>/<view:02d>.png``, e.g. from SAM2 or RVM).

Conversions: the pickle is read by the restricted unpickler with torch's weights-only loader for the
tensors (no code in the file runs); the hands are relative to SMPL-X's mean hand (IDOL's model uses
``flat_hand_mean=False``), so the mean hand of the SMPL-X model file (``smplx_model``) is added. IDOL poses
the body **without** ``scale`` and ``transl`` (its visualisation and training leave them out, and the
cameras are aligned to that body), so the capture's ``transl`` is zero, and a subject with other values is
named in a warning. SOURCE is one ``param/<subject>.npy`` file, or a folder (``images<k>/`` or its
``param/``) whose every subject is imported (``max_subjects`` to take the first few).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from lca.contracts.importer import Importer, ImporterConfig
from lca.data.smplx_model_file import load_smplx_model_arrays
from lca.data.writer import StoreWriter
from lca_plugins.importers.frame_files import read_frame_file, read_video_file, resize_frame
from lca_plugins.importers.safe_npy import load_pickled_npy

SMPL_PARAMS = {  # the 189 values of ``smpl_params``, in order
    "scale": 1, "transl": 3, "global_orient": 3, "body_pose": 63, "betas": 10, "left_hand_pose": 45,
    "right_hand_pose": 45, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3, "expression": 10,
}  # fmt: skip


class HuGe100KConfig(ImporterConfig):
    layout: Literal["studio"] = "studio"
    """Calibrated views of one moment: studio only."""
    smplx_model: str | None = None
    """SMPL-X model file (``SMPLX_NEUTRAL.npz``) whose mean hand is added to the mean-relative hand poses.
    Required."""
    videos_dir: str | None = None
    """Folder of the ``<subject>.mp4`` view videos (default: ``videos/`` beside ``param/``)."""
    mask_dir: str | None = None
    """Folder of per-view masks ``<subject>/<view:02d>.png`` (default: masks from the white background)."""
    white_threshold: int = Field(250, ge=0, le=254)
    """Without ``mask_dir``: a pixel whose three channels all exceed this is background (IDOL's rule)."""
    views: list[int] | None = None
    """Which views to import, by index into ``poses`` (default: all)."""
    image_size: int | None = Field(None, ge=8)
    """Resize so that the longer image side has this many pixels (intrinsics scaled with it)."""
    max_subjects: int | None = Field(None, ge=1)
    """For a folder SOURCE: import at most this many subjects (in name order)."""


class HuGe100KImporter(Importer):
    """HuGe100K subjects (``param/<subject>.npy`` + ``videos/<subject>.mp4``) -> one studio capture each."""

    Config: ClassVar[type[HuGe100KConfig]] = HuGe100KConfig
    config: HuGe100KConfig
    many_units_per_store: ClassVar[bool] = True

    def import_into(self, source: str | Path, store: str) -> list[str]:
        return self.import_units(self.units(source), store)

    def units(self, source: str | Path) -> list[str | Path]:
        """One unit per subject: the ``param/<subject>.npy`` files of SOURCE (at most ``max_subjects``)."""
        return list(_subjects(Path(source))[: self.config.max_subjects])

    def import_units(self, units: list[str | Path], store: str) -> list[str]:
        cfg = self.config
        mean = load_smplx_model_arrays(
            cfg.smplx_model,
            ("hands_meanl", "hands_meanr"),
            "HuGe100K's hand poses are relative to SMPL-X's mean hand",
        )
        params_files = [Path(unit) for unit in units]
        subjects = [_read_subject(path, mean) for path in params_files]  # every file checked before writing
        names = []
        with StoreWriter(store, "studio", **cfg.writer_options()) as writer:
            for path, (params, viewmats, Ks) in zip(params_files, subjects, strict=True):
                views = cfg.views if cfg.views is not None else list(range(len(viewmats)))
                bad = [v for v in views if not 0 <= v < len(viewmats)]
                if bad:
                    raise ValueError(
                        f"{path}: no view {bad} (it has {len(viewmats)}: 0..{len(viewmats) - 1})"
                    )
                frames = _video(self._video_path(path), len(viewmats))
                height, width = frames.shape[1:3]
                scale = 1.0 if cfg.image_size is None else cfg.image_size / max(height, width)
                size = (round(width * scale), round(height * scale))
                single = len(params_files) == 1  # group and identity options name one subject only
                name = (single and cfg.group) or re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-")
                identity = (single and cfg.identity) or name
                capture = writer.add_capture(
                    name,
                    identity=identity,
                    split=cfg.split_for(identity),
                    num_frames=1,
                    height=size[1],
                    width=size[0],
                    viewmats=viewmats[views],
                    Ks=np.diag([size[0] / width, size[1] / height, 1.0]) @ Ks[views],
                    camera_ids=[f"{v:02d}" for v in views],
                    fps=1.0,
                    source=f"import:huge100k:{path}",
                    num_betas=params["betas"].shape[0],
                    num_expression=params["expression"].shape[0],
                )
                masks = [self._mask(path, v, frames[v]) for v in views]
                capture.append(
                    image=np.stack([resize_frame(frames[v], size) for v in views]),
                    mask=np.stack([resize_frame(m, size) for m in masks]),
                    smplx=params,
                    face_box=np.zeros((len(views), 4), np.float32),
                )
                names.append(name)
        return names

    def _video_path(self, params_file: Path) -> Path:
        folder = (
            Path(self.config.videos_dir) if self.config.videos_dir else params_file.parent.parent / "videos"
        )
        return folder / f"{params_file.stem}.mp4"

    def _mask(self, params_file: Path, view: int, frame: np.ndarray) -> np.ndarray:
        if self.config.mask_dir is None:
            background = np.all(frame > self.config.white_threshold, axis=-1)
            return np.where(background, 0, 255).astype(np.uint8)
        path = Path(self.config.mask_dir) / params_file.stem / f"{view:02d}.png"
        size = (frame.shape[1], frame.shape[0])
        return read_frame_file(path, "L", size, f"the view video of {params_file.stem}")


def _subjects(source: Path) -> list[Path]:
    """The ``param/*.npy`` files SOURCE names, in order."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"HuGe100K source {source} does not exist")
    folder = source / "param" if (source / "param").is_dir() else source
    files = sorted(folder.glob("*.npy"))
    if not files:
        raise FileNotFoundError(f"HuGe100K source {source}: no param/<subject>.npy files in {folder}")
    return files


def _read_subject(
    path: Path, mean: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """One subject's SMPL-X parameters (the schema's keys), world-to-camera ``[V,4,4]`` and ``K [V,3,3]``."""
    data = load_pickled_npy(path, tensors=True)
    if not isinstance(data, dict) or "smpl_params" not in data or "poses" not in data:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: expected a dict with 'smpl_params' and 'poses', found {found}")
    values = _numpy(data["smpl_params"]).reshape(-1)
    if values.shape[0] != sum(SMPL_PARAMS.values()):
        raise ValueError(
            f"{path}: smpl_params has {values.shape[0]} values, expected {sum(SMPL_PARAMS.values())} "
            f"({', '.join(f'{k} {n}' for k, n in SMPL_PARAMS.items())})"
        )
    params = dict(zip(SMPL_PARAMS, np.split(values, np.cumsum(list(SMPL_PARAMS.values()))[:-1]), strict=True))
    scale, transl = params.pop("scale"), params["transl"]
    if not np.allclose(scale, 1.0) or not np.allclose(transl, 0.0):
        warnings.warn(
            f"{path}: smpl_params has scale {scale.tolist()} and transl {transl.tolist()}; IDOL poses the "
            "body without them (its cameras are aligned to that body), and so does this import",
            stacklevel=3,
        )
    params["transl"] = np.zeros(3)
    params["left_hand_pose"] = params["left_hand_pose"] + mean["hands_meanl"].reshape(45)
    params["right_hand_pose"] = params["right_hand_pose"] + mean["hands_meanr"].reshape(45)
    viewmats, Ks = [], []
    for index, view in enumerate(data["poses"]):
        try:
            extrinsic, (fx, fy, cx, cy) = _numpy(view[0]).reshape(4, 4), _numpy(view[1]).reshape(4)
        except (TypeError, ValueError, IndexError) as error:
            raise ValueError(
                f"{path}: poses[{index}] is not [extrinsic 4x4, (fx, fy, cx, cy)] ({error})"
            ) from error
        R = extrinsic[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
            raise ValueError(f"{path}: poses[{index}]'s extrinsic is not a rotation and translation")
        viewmats.append(extrinsic)
        Ks.append(np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]))
    if not viewmats:
        raise ValueError(f"{path}: poses holds no view")
    return {k: v.astype(np.float32) for k, v in params.items()}, np.stack(viewmats), np.stack(Ks)


def _numpy(value: Any) -> np.ndarray:
    """A torch tensor (as the release stores them), array or list as a float64 array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, np.float64)


def _video(path: Path, views: int) -> np.ndarray:
    """The view video's frames ``[V,H,W,3]``; one per view."""
    if not path.is_file():
        raise FileNotFoundError(
            f"HuGe100K view video {path} does not exist (set videos_dir if it is elsewhere)"
        )
    frames, _ = read_video_file(path)
    if frames.ndim != 4 or frames.shape[0] != views:
        raise ValueError(
            f"{path}: {frames.shape[0] if frames.ndim == 4 else 0} frames for {views} views in poses"
        )
    return frames
