"""Lens undistortion for importers whose cameras carry distortion coefficients (``k1, k2, p1, p2, k3``,
OpenCV's model): done with OpenCV, an optional dependency, so a source that needs it and a machine
without it get one named error (before anything is written, where the importer checks early)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def distorted(D: np.ndarray) -> bool:
    return bool(np.any(np.abs(np.asarray(D)) > 1e-9))


def opencv(where: Path, D: np.ndarray) -> Any:
    """The ``cv2`` module; a ValueError naming ``where`` and what to install without it."""
    try:
        import cv2
    except ImportError as error:
        raise ValueError(
            f"{where}: the cameras have lens distortion (D = {np.asarray(D).ravel().tolist()}); undistorting "
            "needs OpenCV: pip install opencv-python-headless"
        ) from error
    return cv2


def undistort(image: np.ndarray, K: np.ndarray, D: np.ndarray, where: Path) -> np.ndarray:
    """``image`` as an ideal pinhole camera ``K`` would see it (unchanged without distortion)."""
    return opencv(where, D).undistort(image, K, D) if distorted(D) else image
