"""Per-frame SMPL-X files that body trackers write for a photo or a video frame, read into the schema's
parameters and the camera's intrinsics. The body is in the camera's frame (world = camera), so the
world-to-camera matrix is the identity. Used by the ``tracked-video`` importer and by ``lca avatar create
--images ... --smplx ...``.

- LHM's video tracker (Multi-HMR + ViTPose + SMPLify, ``engine/pose_estimation/video2motion.py``): one
  JSON per frame with ``betas, root_pose, body_pose [21,3], jaw_pose, leye_pose, reye_pose,
  lhand_pose [15,3], rhand_pose, trans, focal [2], princpt [2], img_size_wh [2], pad_ratio``. Hands are
  absolute (its SMPL-X layer has ``flat_hand_mean=True``), there is no expression (zeros), and the
  intrinsics are those of the frame as the tracker saw it: downscaled to its resolution limit, then padded
  on every side by ``pad_ratio`` (``img_size_wh`` is the padded size). :func:`lhm_intrinsics` takes the
  padding offset back out of the principal point and scales ``K`` to the frame you have.
- SMPLer-X (``main/inference.py``): ``smplx/<frame:05d>_<person>.npz`` with ``global_orient, body_pose,
  left_hand_pose, right_hand_pose, jaw_pose, leye_pose, reye_pose, betas, expression, transl`` and
  ``meta/<frame:05d>_<person>.json`` with ``focal, princpt`` in pixels of the full frame. Its SMPL-X layer
  has ``flat_hand_mean=False``: the hands are relative to the model's mean hand, which is added here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lca.data.json_file import read_json_object
from lca.data.schema import MAX_TRANSLATION_M

LHM_KEYS = {"betas": "betas", "root_pose": "global_orient", "body_pose": "body_pose", "jaw_pose": "jaw_pose",
            "leye_pose": "leye_pose", "reye_pose": "reye_pose", "lhand_pose": "left_hand_pose",
            "rhand_pose": "right_hand_pose", "trans": "transl"}  # fmt: skip
SMPLERX_KEYS = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose", "leye_pose",
                "reye_pose", "betas", "expression", "transl")  # fmt: skip
MEAN_HAND_KEYS = ("hands_meanl", "hands_meanr")
"""What SMPLer-X's files need of the SMPL-X model file (``lca.data.smplx_model_file``)."""

TrackedFrame = tuple[dict[str, np.ndarray], np.ndarray]
"""A frame's SMPL-X parameters (the schema's keys, float32, flat) and its intrinsics ``K [3,3]``."""


def read_lhm_frame(path: Path, width: int, height: int) -> TrackedFrame:
    """One LHM tracker JSON, with ``K`` for a ``width x height`` frame."""
    data = read_json_object(path, "tracker file")
    missing = [k for k in (*LHM_KEYS, "focal", "princpt", "img_size_wh") if k not in data]
    if missing:
        raise ValueError(f"{path}: lacks {missing}; is it LHM's tracker output?")
    params = {ours: np.asarray(data[theirs], np.float64).reshape(-1) for theirs, ours in LHM_KEYS.items()}
    for key in ("left_hand_pose", "right_hand_pose"):
        _full_hand(params[key], path, key)
    params["expression"] = np.asarray(data.get("expression", np.zeros(10)), np.float64).reshape(-1)
    return _checked(params, path), lhm_intrinsics(data, path, width, height)


def lhm_intrinsics(data: dict[str, Any], where: Path, width: int, height: int) -> np.ndarray:
    """LHM's ``K`` of the padded, downscaled frame -> ``K`` of the ``width x height`` frame."""
    (fx, fy), (cx, cy) = data["focal"], data["princpt"]
    padded_w, padded_h = data["img_size_wh"]
    ratio = float(data.get("pad_ratio", 0.0))
    seen_w, seen_h = round(padded_w / (1 + ratio)), round(padded_h / (1 + ratio))  # before the padding
    if abs(seen_w / seen_h - width / height) > 0.02 * width / height:
        raise ValueError(
            f"{where}: the tracker saw {seen_w}x{seen_h} frames (img_size_wh {padded_w}x{padded_h} with "
            f"pad_ratio {ratio}), not of the {width}x{height} frames' shape: is it the output of this video?"
        )
    cx, cy = cx - (padded_w - seen_w) // 2, cy - (padded_h - seen_h) // 2
    sx, sy = width / seen_w, height / seen_h
    return np.array([[fx * sx, 0, cx * sx], [0, fy * sy, cy * sy], [0, 0, 1]], np.float64)


def smplerx_meta_path(npz: Path) -> Path:
    """Where SMPLer-X writes the camera of ``smplx/<stem>.npz``: ``meta/<stem>.json`` beside ``smplx/``."""
    return npz.parent.parent / "meta" / f"{npz.stem}.json"


def read_smplerx_frame(npz: Path, mean_hands: dict[str, np.ndarray]) -> TrackedFrame:
    """One SMPLer-X result (``.npz`` and its meta JSON), with the mean hand of ``mean_hands`` added."""
    meta = smplerx_meta_path(npz)
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} does not exist: SMPLer-X writes the camera of {npz} there")
    with np.load(npz) as data:
        missing = [k for k in SMPLERX_KEYS if k not in data.files]
        if missing:
            raise ValueError(f"{npz}: lacks {missing}; is it SMPLer-X's output?")
        params = {k: np.asarray(data[k], np.float64).reshape(-1) for k in SMPLERX_KEYS}
    for key, mean in (("left_hand_pose", "hands_meanl"), ("right_hand_pose", "hands_meanr")):
        params[key] = _full_hand(params[key], npz, key) + mean_hands[mean].reshape(45)
    camera = read_json_object(meta, "tracker file")
    try:
        (fx, fy), (cx, cy) = camera["focal"], camera["princpt"]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{meta}: expected 'focal' [2] and 'princpt' [2] ({error!r})") from error
    return _checked(params, npz), np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)


def _full_hand(values: np.ndarray, where: Path, key: str) -> np.ndarray:
    if values.size != 45:
        raise ValueError(
            f"{where}: {key} has {values.size} values, expected 45 (15 joints x 3, full axis-angle); PCA "
            "hand components must be turned into full poses first"
        )
    return values


def _checked(params: dict[str, np.ndarray], where: Path) -> dict[str, np.ndarray]:
    far = float(np.abs(params["transl"]).max())
    if far > MAX_TRANSLATION_M:
        raise ValueError(
            f"{where}: the translation reaches {far:.0f}, beyond {MAX_TRANSLATION_M:.0f} m: is it in "
            "millimetres?"
        )
    return {k: v.astype(np.float32) for k, v in params.items()}
