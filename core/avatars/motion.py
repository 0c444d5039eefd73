"""Motions that drive an avatar: per-frame SMPL-X parameters plus the signals the drivers read.

The motion ``.npz`` format (all arrays have ``T`` frames first; float32 unless said):

- SMPL-X poses under :class:`~lca.contracts.template.TemplateParams` names: ``global_orient [T, 3]``,
  ``body_pose [T, 63]``, ``left_hand_pose [T, 45]``, ``right_hand_pose [T, 45]``, ``jaw_pose [T, 3]``,
  ``leye_pose [T, 3]``, ``reye_pose [T, 3]``, ``transl [T, 3]`` (axis-angle radians, flat hands, metres);
  any missing pose is zero, ``global_orient`` and ``transl`` included;
- ``expression [T, E]``: template expression coefficients (zero if missing; must match the template's E);
- ``betas``: ignored when animating (the avatar keeps its own shape; the motion is retargeted);
- optional driving signals: ``face_crop [T, 3, h, w]`` (uint8 0-255 or float 0-1) for the ``expression-code``
  driver, with optional ``face_valid [T]`` bool; ``blendshapes [T, 52]`` (ARKit) for ``blendshapes``;
  ``gaze [T, 2, 3]`` unit directions (left, right eye) for ``gaze``;
- optional ``fps`` (scalar).

A driver whose signal the motion lacks raises a :class:`~lca.errors.SignalError` naming it, except
face crops: without them the expression-code driver gets ``face_valid = False`` (the prior-mean code, a
neutral correction), which is stated in the output of ``lca avatar animate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lca.contracts.template import POSE_SIZES, TemplateParams
from lca.errors import LcaError
from lca.paths import not_a_file

POSE_KEYS = (*POSE_SIZES, "transl")
SIGNAL_KEYS = ("face_crop", "face_valid", "blendshapes", "gaze")


@dataclass
class MotionClip:
    """``T`` frames of pose parameters (``[T, d]`` numpy) and optional driving signals."""

    params: dict[str, np.ndarray]
    """Pose keys of :data:`POSE_KEYS` and ``expression``."""
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    """Optional ``face_crop`` (float [0, 1]), ``face_valid``, ``blendshapes``, ``gaze``."""
    fps: float = 10.0
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.params["body_pose"].shape[0])

    def select(self, frames: list[int]) -> MotionClip:
        """A clip of the given frames."""
        return MotionClip(
            {k: v[frames] for k, v in self.params.items()},
            {k: v[frames] for k, v in self.signals.items()},
            self.fps,
            self.source,
        )

    def template_params(self, betas: Tensor, num_expression: int) -> TemplateParams:
        """``[1, T]`` parameters with the avatar's ``betas [S]`` on every frame."""
        t = self.num_frames
        values = {k: torch.from_numpy(np.asarray(self.params[k], np.float32)) for k in POSE_KEYS}
        expression = torch.from_numpy(np.asarray(self.params["expression"], np.float32))
        if expression.shape[-1] != num_expression:
            raise LcaError(
                f"Motion {self.source}: expression has {expression.shape[-1]} coefficients per frame; the "
                f"avatar's template takes {num_expression}."
            )
        params = TemplateParams(betas=betas.expand(t, -1).float(), expression=expression, **values)
        return params.reshape(1, t)

    def driving_signals(self, params: TemplateParams, face_size: int | None) -> dict[str, Tensor]:
        """The drivers' signal dict (leading ``[1, T]``); see the module doc for missing face crops."""
        signals = {
            name: getattr(params, name)
            for name in ("body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose")
        }
        for name in ("blendshapes", "gaze"):
            if name in self.signals:
                signals[name] = torch.from_numpy(np.asarray(self.signals[name], np.float32))[None]
        if "face_crop" in self.signals:
            signals["face_crop"] = torch.from_numpy(np.asarray(self.signals["face_crop"], np.float32))[None]
            valid = self.signals.get("face_valid", np.ones(self.num_frames, dtype=bool))
            signals["face_valid"] = torch.from_numpy(np.asarray(valid, dtype=bool))[None]
        elif face_size is not None:
            signals["face_crop"] = torch.zeros(1, self.num_frames, 3, face_size, face_size)
            signals["face_valid"] = torch.zeros(1, self.num_frames, dtype=torch.bool)
        return signals


def save_motion(path: str | Path, clip: MotionClip) -> Path:
    """Write ``clip`` in the motion ``.npz`` format (face crops as uint8)."""
    arrays: dict[str, np.ndarray] = {k: np.asarray(v, np.float32) for k, v in clip.params.items()}
    for name, value in clip.signals.items():
        if name == "face_crop":
            value = (np.clip(value, 0, 1) * 255).round().astype(np.uint8)
        arrays[name] = value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, fps=np.float32(clip.fps), **arrays)
    return path


def load_motion(path: str | Path, num_expression: int | None = None) -> MotionClip:
    """Read a motion ``.npz`` (see the module doc); missing poses and expressions are zeros."""
    path = Path(path)
    reason = not_a_file(path)
    if reason:
        raise LcaError(f"Motion file {path} {reason}.")
    try:
        data = dict(np.load(path))
    except (OSError, ValueError) as error:
        raise LcaError(f"Motion file {path} is not a readable .npz: {error}") from error
    if "body_pose" not in data:
        raise LcaError(f"Motion file {path} has no 'body_pose [T, 63]' (it has {sorted(data)}).")
    frames = int(np.asarray(data["body_pose"]).shape[0])
    params: dict[str, np.ndarray] = {}
    for key in POSE_KEYS:
        size = POSE_SIZES.get(key, 3)
        value = np.asarray(data.get(key, np.zeros((frames, size))), np.float32)
        if value.shape != (frames, size):
            raise LcaError(f"Motion file {path}: '{key}' has shape {value.shape}, expected {(frames, size)}.")
        params[key] = value
    expression = data.get("expression")
    if expression is None:
        expression = np.zeros((frames, num_expression or 0), np.float32)
    params["expression"] = np.asarray(expression, np.float32).reshape(frames, -1)
    signals: dict[str, np.ndarray] = {}
    expected = {"face_crop": (frames, 3, None, None), "face_valid": (frames,), "blendshapes": (frames, None),
                "gaze": (frames, 2, 3)}  # fmt: skip
    for name, shape in expected.items():
        if name not in data:
            continue
        value = np.asarray(data[name])
        if value.ndim != len(shape) or any(
            s is not None and s != v for s, v in zip(shape, value.shape, strict=True)
        ):
            shown = tuple("*" if s is None else s for s in shape)
            raise LcaError(f"Motion file {path}: '{name}' has shape {value.shape}, expected {shown}.")
        if name == "face_crop":
            value = value.astype(np.float32) / 255.0 if value.dtype == np.uint8 else value.astype(np.float32)
        signals[name] = value
    fps = float(data["fps"]) if "fps" in data else 10.0
    return MotionClip(params, signals, fps, str(path))


def store_motion(store: str, group: str | None, face_size: int, face_margin: float = 1.4) -> MotionClip:
    """A store group's frames as a motion: its SMPL-X, the face crop of each frame from the camera seeing
    the face largest, its blendshapes and gaze. ``group`` defaults to the first group of the test split.
    ``store`` may be ``synthetic://LAYOUT``."""
    from lca.avatars.views import FixedViewsDataset
    from lca.data.locations import resolve_store_url

    path = resolve_store_url(store)
    dataset = FixedViewsDataset(
        FixedViewsDataset.Config(path=path, face_crop_size=face_size, face_margin=face_margin)
    )
    if group is None:
        tests = dataset.reader.group_names("test") or dataset.groups
        group = tests[0]
    meta = dataset.meta(group)
    frames = list(range(meta.num_frames))
    params = {k: np.stack([meta.params(t)[k] for t in frames]) for k in (*POSE_KEYS, "expression")}
    driving = dataset.driving(meta, [dataset.face_camera(meta, t) for t in frames], frames)
    signals = {"face_crop": driving.face.numpy(), "face_valid": driving.face_valid.numpy()}
    if driving.blendshapes is not None:
        signals["blendshapes"] = driving.blendshapes.numpy()
    if driving.gaze is not None:
        signals["gaze"] = driving.gaze.numpy()
    fps = float(meta.attrs.get("fps", 10.0))
    return MotionClip(params, signals, fps, f"{store}:{group}")


def open_motion(spec: str, num_expression: int, face_size: int) -> MotionClip:
    """``motion.npz`` or ``STORE[:GROUP]`` (a store path or ``synthetic://LAYOUT``, group after the last
    ``:`` that is not part of a URL scheme)."""
    if spec.endswith(".npz"):
        return load_motion(spec, num_expression)
    store, group = spec, None
    head, sep, tail = spec.rpartition(":")
    if sep and head and not tail.startswith("//") and not head.endswith(":"):
        store, group = head, tail
    return store_motion(store, group, face_size)
