"""What the viewer's controls set, as one frame of a :class:`~lca.avatars.motion.MotionClip`: a body-pose
preset plus slider offsets for the main joints, expression coefficients and a gaze direction.

Joints are SMPL-X's (``body_pose`` holds joints 1-21, three axis-angle values each); the body faces +z
with y up, so a positive x rotation bends a knee forward and a z rotation lifts an arm sideways."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lca.avatars.motion import MotionClip
from lca.contracts.template import POSE_SIZES
from lca.data.schema import ARKIT52_NAMES

JOINTS = {  # SMPL-X joint index -> name, for the joints the viewer has sliders for
    1: "left hip", 2: "right hip", 3: "spine", 4: "left knee", 5: "right knee", 12: "neck", 15: "head",
    16: "left shoulder", 17: "right shoulder", 18: "left elbow", 19: "right elbow",
}  # fmt: skip
AXES = "xyz"
BLENDSHAPE_SLIDERS = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft", "eyeBlinkRight",
                      "browInnerUp", "mouthPucker", "cheekPuff")  # fmt: skip
"""The ARKit blendshapes the viewer has sliders for (pipelines with a blendshape driver)."""


def _pose(**joints: tuple[float, float, float]) -> dict[int, tuple[float, float, float]]:
    """A preset: SMPL-X joint name -> axis-angle (radians)."""
    index = {name.replace(" ", "_"): j for j, name in JOINTS.items()}
    return {index[name]: value for name, value in joints.items()}


PRESETS = {
    "rest": {},
    "A-pose": _pose(left_shoulder=(0, 0, -0.9), right_shoulder=(0, 0, 0.9)),
    "wave": _pose(left_shoulder=(0, 0, -1.2), right_shoulder=(0, 0, -1.2), right_elbow=(0, 0, -1.0),
                  head=(0, 0.3, 0)),
    "walk": _pose(left_hip=(-0.5, 0, 0), right_hip=(0.4, 0, 0), right_knee=(0.6, 0, 0),
                  left_shoulder=(0.4, 0, -1.2), right_shoulder=(-0.4, 0, 1.2), left_elbow=(0, -0.3, 0)),
    "sit": _pose(left_hip=(-1.5, 0, 0), right_hip=(-1.5, 0, 0), left_knee=(1.6, 0, 0), right_knee=(1.6, 0, 0),
                 left_shoulder=(0, 0, -1.1), right_shoulder=(0, 0, 1.1)),
}  # fmt: skip
"""Body-pose presets the viewer offers (the sliders add to them)."""


@dataclass
class PoseControls:
    """The controls' values: a preset, per-joint offsets in degrees, expression coefficients, gaze."""

    preset: str = "A-pose"
    offsets_deg: dict[tuple[int, int], float] = field(default_factory=dict)
    """``(joint, axis)`` -> degrees added to the preset."""
    expression: list[float] = field(default_factory=list)
    gaze_deg: tuple[float, float] = (0.0, 0.0)
    """Yaw (to the body's left) and pitch (up) of both eyes, degrees."""
    blendshapes: dict[str, float] = field(default_factory=dict)
    """ARKit blendshape name -> weight in [0, 1] (for pipelines with a blendshape driver)."""

    def body_pose(self) -> np.ndarray:
        """``body_pose [63]``: the preset plus the offsets."""
        pose = np.zeros((21, 3), np.float32)
        for joint, value in PRESETS[self.preset].items():
            pose[joint - 1] = value
        for (joint, axis), degrees in self.offsets_deg.items():
            pose[joint - 1, axis] += math.radians(degrees)
        return pose.reshape(-1)

    def gaze(self) -> np.ndarray:
        """``[2, 3]`` unit directions of the left and right eye (both the same), the body facing +z."""
        yaw, pitch = (math.radians(a) for a in self.gaze_deg)
        direction = [math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)]
        return np.tile(np.asarray(direction, np.float32), (2, 1))

    def clip(self, num_expression: int) -> MotionClip:
        """The one-frame motion these controls describe."""
        params = {k: np.zeros((1, n), np.float32) for k, n in POSE_SIZES.items()}
        params["transl"] = np.zeros((1, 3), np.float32)
        params["body_pose"] = self.body_pose()[None]
        expression = np.zeros(num_expression, np.float32)
        values = np.asarray(self.expression[:num_expression], np.float32)
        expression[: len(values)] = values
        params["expression"] = expression[None]
        weights = np.zeros(len(ARKIT52_NAMES), np.float32)
        for name, value in self.blendshapes.items():
            weights[ARKIT52_NAMES.index(name)] = value
        signals = {"gaze": self.gaze()[None], "blendshapes": weights[None]}
        return MotionClip(params, signals, fps=1.0, source="viewer controls")
