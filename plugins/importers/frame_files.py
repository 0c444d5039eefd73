"""Frames as the importers find them: one image file per camera and frame (ActorsHQ, MVHumanNet), read at
the size the calibration promises and resized for the store, or the frames of a video (HuGe100K's views,
a tracked video)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def read_frame_file(path: Path, mode: str, size: tuple[int, int], promised_by: str) -> np.ndarray:
    """The image at ``path`` in PIL ``mode`` (``"RGB"`` or ``"L"``), refused unless it is ``size``
    ``(W, H)`` pixels, as ``promised_by`` (the calibration's name, for the message) says."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist (every chosen camera needs each frame's image and mask)"
        )
    with Image.open(path) as image:
        array = np.asarray(image.convert(mode))
    if (array.shape[1], array.shape[0]) != size:
        raise ValueError(
            f"{path}: {array.shape[1]}x{array.shape[0]} pixels, {promised_by} says {size[0]}x{size[1]}"
        )
    return array


def resize_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size`` ``(W, H)`` (bilinear; unchanged when it is that size already)."""
    if (image.shape[1], image.shape[0]) == size:
        return np.ascontiguousarray(image)
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def read_video_file(path: Path) -> tuple[np.ndarray, float]:
    """Every frame of a video ``[T, H, W, 3]`` uint8 (imageio's ffmpeg plugin) and its frame rate."""
    import imageio.v3 as iio

    try:
        frames = np.asarray(iio.imread(path, plugin="FFMPEG"))
        fps = float(iio.immeta(path, plugin="FFMPEG").get("fps", 30.0))
    except (OSError, RuntimeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable video ({error})") from error
    return frames[..., :3], fps
