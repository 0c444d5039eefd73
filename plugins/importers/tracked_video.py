"""``tracked-video`` importer: one monocular video (or a folder of its frames) with a body tracker's
per-frame SMPL-X output and person masks, into a ``wild-video`` clip.

Layouts read:

- Frames: a video file (decoded with imageio's ffmpeg plugin) or a folder of images (sorted by name;
  RGBA images carry their own mask). A frame's *index* is its position in the video or folder.
- Tracker output, read by :mod:`lca.data.trackers` (which states each format's conventions):
  ``tracker="lhm"``, LHM's video tracker, writes ``smplx_params/<index + 1:05d>.json`` (its intrinsics are
  of the padded, downscaled frame it saw, taken back to the frames given here); ``tracker="smplerx"``,
  SMPLer-X, writes ``smplx/<frame:05d>_<person>.npz`` and ``meta/<frame:05d>_<person>.json``, with hands
  relative to the mean hand of the SMPL-X model file (``smplx_model``). ``<frame>`` is the number in the
  image's name (SMPLer-X reads ``<frame:06d>.jpg``), or the index for a video.
- Masks (``masks``): a folder of PNGs, one per frame in name order (SAM2's per-frame masks, RVM's
  ``png_sequence`` alpha), or a video of the alpha matte (RVM's ``output_type="video"`` alpha); the person
  where > 127. Without ``masks``, RGBA frames give their alpha.

Conversions: the camera is the tracker's (world = camera: identity world-to-camera, ``K`` per frame);
frames the tracker found no person in (no output file) are skipped and counted in a warning; PCA hands
and translations beyond 100 m are refused.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from PIL import Image
from pydantic import Field

from lca.contracts.importer import Importer
from lca.data.smplx_model_file import load_smplx_model_arrays
from lca.data.trackers import MEAN_HAND_KEYS, TrackedFrame, read_lhm_frame, read_smplerx_frame
from lca.data.writer import StoreWriter
from lca_plugins.importers.frame_files import read_video_file
from lca_plugins.importers.studio_config import FrameSelectionConfig

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class TrackedVideoConfig(FrameSelectionConfig):
    layout: Literal["wild-video"] = "wild-video"
    """A monocular clip: wild-video only."""
    tracker: Literal["lhm", "smplerx"] = "lhm"
    """Whose output ``tracks`` holds: LHM's video tracker or SMPLer-X."""
    tracks: str | None = None
    """The tracker's output folder (LHM: the ``smplx_params/`` folder; SMPLer-X: the folder holding
    ``smplx/`` and ``meta/``). Default: ``smplx_params/`` (LHM) or the folder itself (SMPLer-X) beside
    SOURCE, named after it (``<video stem>/``) or SOURCE's folder for a frame folder."""
    masks: str | None = None
    """Masks: a folder of per-frame PNGs or an alpha-matte video. Default: the frames' alpha channel."""
    person: int = Field(0, ge=0)
    """SMPLer-X: which detected person (``<frame>_<person>.npz``)."""
    smplx_model: str | None = None
    """SMPLer-X only: the SMPL-X model file whose mean hand is added to its mean-relative hands."""
    fps: float | None = Field(None, gt=0)
    """Frame rate stored with the clip (default: the video's, or 30 for a frame folder)."""


class TrackedVideoImporter(Importer):
    """A video or frame folder + LHM-tracker or SMPLer-X SMPL-X + SAM2/RVM masks -> one wild-video clip."""

    Config: ClassVar[type[TrackedVideoConfig]] = TrackedVideoConfig
    config: TrackedVideoConfig

    def import_into(self, source: str | Path, store: str) -> list[str]:
        cfg = self.config
        source = Path(source)
        frames, numbers, fps = _frames(source)
        masks = _masks(Path(cfg.masks), len(frames)) if cfg.masks else None
        if masks is not None and masks.shape[1:] != frames.shape[1:3]:
            raise ValueError(
                f"masks {cfg.masks}: {masks.shape[2]}x{masks.shape[1]} pixels, the frames of {source} are "
                f"{frames.shape[2]}x{frames.shape[1]}"
            )
        if masks is None and frames.shape[-1] != 4:
            raise ValueError(
                f"{source}: the frames have no alpha channel: set masks= to a folder of per-frame PNGs or an "
                "alpha-matte video (SAM2's masks, RVM's alpha output)"
            )
        read = _lhm_reader(self._tracks(source)) if cfg.tracker == "lhm" else self._smplerx_reader(source)
        tracked, missing = [], []
        for index, number in enumerate(numbers):
            fit = read(index, number, frames.shape[2], frames.shape[1])
            (tracked if fit is not None else missing).append((index, fit))
        if not tracked:
            raise FileNotFoundError(f"{source}: the tracker output {self._tracks(source)} has no frame of it")
        if missing:
            warnings.warn(
                f"{source}: {len(missing)} of {len(numbers)} frames have no tracker output (no person found) "
                f"and are skipped (first: frame {missing[0][0]})",
                stacklevel=2,
            )
        tracked = cfg.select(tracked)
        name = cfg.group or source.stem
        identity = cfg.identity or name
        with StoreWriter(store, "wild-video", **cfg.writer_options()) as writer:
            first = tracked[0][1][0]
            clip = writer.add_clip(
                name,
                identity=identity,
                split=cfg.split_for(identity),
                num_frames=len(tracked),
                height=frames.shape[1],
                width=frames.shape[2],
                fps=cfg.fps or fps,
                source=f"import:tracked-video:{cfg.tracker}:{source}",
                num_betas=first["betas"].shape[0],
                num_expression=first["expression"].shape[0],
            )
            for index, (params, K) in tracked:
                mask = masks[index] if masks is not None else frames[index, ..., 3]
                clip.append(
                    image=np.ascontiguousarray(frames[index, ..., :3]),
                    mask=np.where(mask > 127, 255, 0).astype(np.uint8),
                    smplx=params,
                    face_box=np.zeros(4, np.float32),
                    viewmat=np.eye(4),
                    K=K,
                )
        return [name]

    def _tracks(self, source: Path) -> Path:
        if self.config.tracks:
            return Path(self.config.tracks)
        base = source.parent / source.stem if source.is_file() else source
        return base / "smplx_params" if self.config.tracker == "lhm" else base

    def _smplerx_reader(self, source: Path):
        cfg = self.config
        mean = load_smplx_model_arrays(
            cfg.smplx_model,
            MEAN_HAND_KEYS,
            "SMPLer-X's hand poses are relative to SMPL-X's mean hand",
        )
        folder = self._tracks(source)
        if not (folder / "smplx").is_dir():
            raise FileNotFoundError(
                f"SMPLer-X output {folder}: no smplx/ folder (set tracks= to the output folder)"
            )

        def read(index: int, number: int, width: int, height: int) -> TrackedFrame | None:
            npz = folder / "smplx" / f"{number:05d}_{cfg.person}.npz"
            return read_smplerx_frame(npz, mean) if npz.is_file() else None

        return read


def _lhm_reader(folder: Path):
    if not folder.is_dir():
        raise FileNotFoundError(
            f"LHM tracker output {folder} does not exist (LHM's video2motion.py writes "
            "<output>/<video>/smplx_params/; set tracks= to it)"
        )

    def read(index: int, number: int, width: int, height: int) -> TrackedFrame | None:
        path = folder / f"{index + 1:05d}.json"
        return read_lhm_frame(path, width, height) if path.is_file() else None

    return read


def _frames(source: Path) -> tuple[np.ndarray, list[int], float]:
    """The frames ``[T,H,W,3|4]`` uint8, each one's number (image name or index) and the frame rate."""
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise FileNotFoundError(f"frame folder {source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        images = [_image(p) for p in paths]
        if len({i.shape for i in images}) > 1:
            raise ValueError(f"frame folder {source}: the images differ in size or channels")
        numbers = [int(p.stem) if p.stem.isdigit() else i for i, p in enumerate(paths)]
        return np.stack(images), numbers, 30.0
    if not source.is_file():
        raise FileNotFoundError(f"video or frame folder {source} does not exist")
    frames, fps = read_video_file(source)
    return frames, list(range(len(frames))), fps


def _image(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA" if image.mode in ("RGBA", "LA", "PA") else "RGB"))


def _masks(path: Path, count: int) -> np.ndarray:
    """Per-frame masks ``[T,H,W]`` from a PNG folder or an alpha-matte video."""
    if path.is_dir():
        files = sorted(path.glob("*.png"))
        masks = np.stack([np.asarray(Image.open(f).convert("L")) for f in files]) if files else np.zeros((0,))
    elif path.is_file():
        masks = read_video_file(path)[0].max(axis=-1)
    else:
        raise FileNotFoundError(f"masks {path} do not exist (a folder of per-frame PNGs or an alpha video)")
    if len(masks) != count:
        raise ValueError(f"masks {path}: {len(masks)} masks for {count} frames; one mask per frame, in order")
    return masks
