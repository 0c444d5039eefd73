"""Smooth, deterministic motions in SMPL-X parameters: a simple dance, finger curls, jaw, expressions, gaze.

Every signal is a sum of a few sinusoids with random frequencies and phases (smooth at any frame rate,
a pure function of the seed). Axis conventions of the SMPL-X rest pose: y up, +z front, +x the body's
left; arms along +-x, legs along -y. So lowering the left arm is a negative rotation about z,
swinging a leg forward a negative one about x, opening the jaw a positive one about x.

The 10 expression coefficients follow the mannequin's blend shapes: mouth open, smile, brow raise,
frown, cheek puff, pucker, left squint, right squint, jaw shift, nose wrinkle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch

from lca.contracts.template import TemplateParams
from lca.data.schema import ARKIT52_NAMES

EXPRESSION_RANGES = np.array(
    [[0, 1.2], [0, 1.8], [0, 1.5], [0, 1.0], [0, 0.8], [0, 1.0], [0, 0.8], [0, 0.8], [-0.6, 0.6], [0, 0.8]]
)
"""Range of each mannequin expression coefficient used by the generator (studio: the full range)."""
JAW_MAX = 0.35
"""Widest jaw opening in radians (ARKit ``jawOpen`` = 1)."""
GAZE_MAX = (0.4, 0.25)
"""Largest eye yaw and pitch in radians (ARKit ``eyeLook*`` = 1)."""


def smooth(rng: np.random.Generator, times: np.ndarray, size: int, speed: float = 1.0) -> np.ndarray:
    """``[T, size]`` smooth signals in [-1, 1]: three sinusoids each, frequencies 0.2-1.2 Hz x ``speed``."""
    freq = rng.uniform(0.2, 1.2, (3, size)) * speed
    phase = rng.uniform(0, 2 * np.pi, (3, size))
    amp = rng.uniform(0.3, 1.0, (3, size))
    wave = (amp[None] * np.sin(2 * np.pi * freq[None] * times[:, None, None] + phase[None])).sum(1)
    return wave / amp.sum(0)


@dataclass
class Motion:
    """A clip's SMPL-X parameters (numpy ``[T, d]``, float32) plus the raw signals behind the face."""

    params: dict[str, np.ndarray]
    """The keys of :data:`lca.data.schema.SMPLX_POSE_DIMS` plus ``expression [T, E]``, ``betas [T, S]``."""
    gaze_angles: np.ndarray
    """``[T, 2]`` eye yaw and pitch in radians (both eyes)."""

    def template_params(self) -> TemplateParams:
        return TemplateParams(**{k: torch.from_numpy(v) for k, v in self.params.items()})

    @property
    def mouth_opening(self) -> np.ndarray:
        """``[T]`` in about [0, 1.5]: jaw angle over :data:`JAW_MAX` plus the mouth-open coefficient."""
        return self.params["jaw_pose"][:, 0] / JAW_MAX + 0.5 * self.params["expression"][:, 0]

    @property
    def smile(self) -> np.ndarray:
        return np.clip(self.params["expression"][:, 1] / EXPRESSION_RANGES[1, 1], 0, 1)


def _axis_angle(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray | None = None) -> np.ndarray:
    """Axis-angle ``[T, 3]`` of R_y(yaw) R_x(pitch) R_z(roll)."""
    roll = np.zeros_like(yaw) if roll is None else roll
    axes = torch.eye(3, dtype=torch.float64)
    rot = [
        roma.rotvec_to_rotmat(torch.from_numpy(a)[:, None] * axes[i])
        for a, i in ((yaw, 1), (pitch, 0), (roll, 2))
    ]
    return roma.rotmat_to_rotvec(rot[0] @ rot[1] @ rot[2]).numpy()


def make_motion(
    rng: np.random.Generator,
    frames: int,
    fps: float,
    betas: np.ndarray,
    num_expression: int,
    *,
    yaw: float,
    expressive: float,
) -> Motion:
    """A dance of ``frames`` frames facing ``yaw`` radians (0: facing +z); ``expressive`` scales the
    face signals (1: the full ranges of :data:`EXPRESSION_RANGES`)."""
    t = np.arange(frames) / fps
    tempo = rng.uniform(0.5, 0.9)
    beat = 2 * np.pi * tempo * t + rng.uniform(0, 2 * np.pi)
    body = np.zeros((frames, 21, 3))

    def joint(j: int) -> np.ndarray:
        return body[:, j - 1]

    arm_down, swing, bend = rng.uniform(1.0, 1.35), rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.7)
    wave = smooth(rng, t, 6)
    for side, j_sh, j_el in ((1.0, 16, 18), (-1.0, 17, 19)):
        phase = beat if side > 0 else beat + np.pi
        joint(j_sh)[:, 2] = -side * (arm_down - swing * np.sin(phase) - 0.3 * wave[:, 0 if side > 0 else 1])
        joint(j_sh)[:, 1] = -side * 0.35 * wave[:, 2 if side > 0 else 3]
        joint(j_el)[:, 1] = -side * (bend + 0.5 * bend * (1 + np.sin(phase + 1.0)) + 0.2 * wave[:, 4])
    step = rng.uniform(0.1, 0.35)
    for side, j_hip, j_knee in ((1.0, 1, 4), (-1.0, 2, 5)):
        phase = beat if side > 0 else beat + np.pi
        joint(j_hip)[:, 0] = -step * np.sin(phase)
        joint(j_hip)[:, 2] = side * 0.08 * (1 + np.sin(beat))
        joint(j_knee)[:, 0] = step * (1 + np.sin(phase + 0.8))
    sway = rng.uniform(0.03, 0.12)
    twist = smooth(rng, t, 3)
    for j in (3, 6, 9):
        joint(j)[:, 1] = 0.08 * twist[:, 0]
        joint(j)[:, 2] = -0.3 * sway * np.sin(beat)
    head = smooth(rng, t, 3)
    joint(15)[:] = _axis_angle(0.35 * head[:, 0], 0.15 * head[:, 1], 0.1 * head[:, 2])

    turn = smooth(rng, t, 1, speed=0.4)[:, 0]
    global_orient = _axis_angle(yaw + 0.35 * turn, np.zeros(frames), sway * np.sin(beat))
    transl = np.stack(
        [0.6 * sway * np.sin(beat), 0.02 * np.abs(np.sin(beat)), 0.05 * smooth(rng, t, 1)[:, 0]], -1
    )

    hands = []
    for side in (1.0, -1.0):
        curl = 0.5 * (1 + smooth(rng, t, 5)) * rng.uniform(0.3, 1.3)  # per finger, index..thumb
        pose = np.zeros((frames, 15, 3))
        for finger in range(5):
            for k, share in enumerate((0.8, 1.0, 0.7)):
                pose[:, 3 * finger + k, 2] = -side * share * curl[:, finger] * (0.4 if finger == 4 else 1.0)
        hands.append(pose.reshape(frames, 45))

    face = 0.5 * (1 + smooth(rng, t, num_expression, speed=1.5))  # [0, 1]
    active = rng.random(num_expression) < 0.4 + 0.5 * expressive
    ranges = np.zeros((num_expression, 2))
    ranges[: len(EXPRESSION_RANGES)] = EXPRESSION_RANGES[:num_expression]
    expression = (ranges[:, 0] + face * (ranges[:, 1] - ranges[:, 0])) * active * expressive
    jaw = np.zeros((frames, 3))
    jaw[:, 0] = (
        JAW_MAX * expressive * np.clip(0.5 * (1 + smooth(rng, t, 1, speed=1.5)[:, 0]) * 1.3 - 0.3, 0, 1)
    )
    gaze = smooth(rng, t, 2, speed=0.8) * np.array(GAZE_MAX)
    eye = _axis_angle(gaze[:, 0], gaze[:, 1])

    params = {
        "betas": np.repeat(betas[None], frames, 0),
        "expression": expression,
        "global_orient": global_orient,
        "body_pose": body.reshape(frames, 63),
        "left_hand_pose": hands[0],
        "right_hand_pose": hands[1],
        "jaw_pose": jaw,
        "leye_pose": eye,
        "reye_pose": eye,
        "transl": transl,
    }
    return Motion({k: v.astype(np.float32) for k, v in params.items()}, gaze.astype(np.float32))


def arkit_blendshapes(motion: Motion) -> np.ndarray:
    """``[T, 52]`` ARKit coefficients in [0, 1] derived from the motion (docs/data.md lists the mapping).

    Each used ARKit shape is one generator signal over its largest value: ``jawOpen`` = jaw angle /
    :data:`JAW_MAX`; mouth open -> ``mouthLowerDown*``; smile -> ``mouthSmile*``; brow raise ->
    ``browInnerUp``, ``browOuterUp*``; frown -> ``browDown*``; cheek puff -> ``cheekPuff``; pucker ->
    ``mouthPucker``; squints -> ``eyeSquint*``; jaw shift -> ``jawLeft``/``jawRight``; nose wrinkle ->
    ``noseSneer*``; gaze yaw/pitch over :data:`GAZE_MAX` -> ``eyeLook{In,Out,Up,Down}*``. Others are 0.
    """
    e = motion.params["expression"]
    frames = e.shape[0]
    top = np.maximum(EXPRESSION_RANGES[:, 1], np.abs(EXPRESSION_RANGES[:, 0]))
    c = np.clip(e[:, : len(top)] / top[: e.shape[1]], -1, 1)
    out = np.zeros((frames, len(ARKIT52_NAMES)), dtype=np.float32)
    index = {name: i for i, name in enumerate(ARKIT52_NAMES)}

    def put(names: tuple[str, ...], value: np.ndarray) -> None:
        for name in names:
            out[:, index[name]] = np.clip(value, 0, 1)

    put(("jawOpen",), motion.params["jaw_pose"][:, 0] / JAW_MAX)
    put(("mouthLowerDownLeft", "mouthLowerDownRight"), c[:, 0])
    put(("mouthSmileLeft", "mouthSmileRight"), c[:, 1])
    put(("browInnerUp", "browOuterUpLeft", "browOuterUpRight"), c[:, 2])
    put(("browDownLeft", "browDownRight"), c[:, 3])
    put(("cheekPuff",), c[:, 4])
    put(("mouthPucker",), c[:, 5])
    put(("eyeSquintLeft",), c[:, 6])
    put(("eyeSquintRight",), c[:, 7])
    put(("jawLeft",), c[:, 8])  # positive shift moves the jaw to the body's left (+x)
    put(("jawRight",), -c[:, 8])
    put(("noseSneerLeft", "noseSneerRight"), c[:, 9])
    yaw = motion.gaze_angles[:, 0] / GAZE_MAX[0]  # positive yaw looks to the body's left (+x)
    pitch = motion.gaze_angles[:, 1] / GAZE_MAX[1]  # positive pitch (about +x) looks down
    put(("eyeLookOutLeft", "eyeLookInRight"), yaw)
    put(("eyeLookInLeft", "eyeLookOutRight"), -yaw)
    put(("eyeLookDownLeft", "eyeLookDownRight"), pitch)
    put(("eyeLookUpLeft", "eyeLookUpRight"), -pitch)
    return out
