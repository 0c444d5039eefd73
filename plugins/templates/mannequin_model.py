"""A licence-free procedural body in the exact SMPL-X ``.npz`` format (the ``mannequin`` template's model).

Real SMPL-X files cannot be redistributed, so tests, synthetic data and the default pipeline use this
body instead. It is an artist's-mannequin style figure: one closed, smoothly tapered tube per body region
(torso, neck, head, legs, feet, arms, palms, 15 finger tubes, eyeballs), overlapping at the joints like
the segments of a wooden mannequin, built in the SMPL-X rest pose (T-pose, y up, +z = front, +x = the
body's left, soles at y = -1.2 m, about 1.71 m tall) on the real 55-joint SMPL-X kinematic tree.

What the file holds (numpy only, deterministic for a seed; :func:`build_mannequin` returns the arrays):

- ``v_template`` ``[V, 3]`` with V about 10.5k, ``f`` ``[F, 3]`` uint32, outward-facing triangles.
- ``J_regressor`` ``[55, V]``: each joint is the mean of one ring of vertices built exactly around it
  (the jaw: a mirror pair of head vertices), so the regressed joints are the designed joints and follow
  every blend shape.
- ``weights`` ``[V, 55]``: each tube is skinned along its axis to the joints on it, with smoothstep
  blends a few centimetres wide around each joint; the lower face blends to the jaw.
- ``shapedirs`` ``[V, 3, 20]`` (SMPL-X v1.0 layout: 10 shape + 10 expression columns, which smplx 0.1.28
  reads as such, with a warning). Shape: height, girth, belly, shoulder width, hip width, leg length,
  head size, arm length, chest depth, limb muscle. Expression (head vertices only): mouth open, smile,
  brow raise, frown, cheek puff, pucker, left/right eye squint, jaw shift, nose wrinkle.
- ``posedirs`` ``[V, 3, 486]`` zeros (no pose correctives), ``kintree_table`` ``[2, 55]`` with the
  SMPL-X parents, ``hands_componentsl/r`` (orthonormal 45x45 from the seed), ``hands_meanl/r`` (a
  slight curl), ``lmk_faces_idx``/``lmk_bary_coords`` (51 face landmarks on brows, nose, eyes, mouth)
  and ``dynamic_lmk_faces_idx``/``dynamic_lmk_bary_coords`` (17 jaw-contour points, the same for all 79
  head yaw bins).

Vertex ids: smplx 0.1.28 hard-codes 21 vertex ids (nose 9120, eyes, ears, fingertips, toes, heels,
all below 9930) for its extra keypoints and offers no way to pass others. The mesh therefore has more
than 9930 vertices and its vertex order is permuted so that each of those ids *is* the named feature
(nose tip, front of each eyeball, outermost ear point, the pole at each finger tip, big/small toe tips,
heel): plain ``smplx.create`` works unchanged and its 127 output joints are meaningful.

The file is written with fixed zip timestamps, so its bytes depend only on the seed and
:data:`GENERATOR_VERSION`.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.interpolate import PchipInterpolator
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

GENERATOR_VERSION = 1
"""Bumped whenever the generated geometry changes (it is part of the cache folder name)."""

GROUND_Y = -1.2
"""Height of the soles in the rest pose (SMPL-X's template also stands at about -1.2 m)."""

NUM_JOINTS = 55
SMPLX_PARENTS = np.array(
    [
        *(-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15),
        *(20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38),
        *(21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53),
    ],
    dtype=np.int64,
)
"""Parents of SMPL-X's 55 joints (pelvis..right_wrist 0-21, jaw 22, eyes 23-24, left hand 25-39 and
right hand 40-54 as index, middle, pinky, ring, thumb x 3)."""

NUM_SHAPE = 10
NUM_EXPRESSION = 10

# Left-side joint -> right-side joint (SMPL-X numbering); the right half is the mirror image of the left.
_LEFT_TO_RIGHT = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21, 23: 24}
_LEFT_TO_RIGHT.update({25 + k: 40 + k for k in range(15)})

# Finger tubes of the left hand, offsets from the wrist (x out along the fingers, palm facing -y):
# (SMPL-X joints of the 3 phalanges, base offset, direction, phalanx lengths, base radius, tip radius).
_FINGERS = {
    "index": ((25, 26, 27), (0.085, 0.0, 0.026), (1.0, 0.0, 0.0), (0.040, 0.024, 0.022), 0.0085, 0.0070),
    "middle": ((28, 29, 30), (0.090, 0.0, 0.006), (1.0, 0.0, 0.0), (0.045, 0.028, 0.023), 0.0088, 0.0072),
    "pinky": (
        (31, 32, 33),
        (0.077, -0.002, -0.030),
        (1.0, 0.0, -0.08),
        (0.031, 0.020, 0.020),
        0.0072,
        0.0060,
    ),
    "ring": ((34, 35, 36), (0.085, 0.0, -0.013), (1.0, 0.0, -0.03), (0.041, 0.026, 0.022), 0.0082, 0.0068),
    "thumb": (
        (37, 38, 39),
        (0.020, -0.012, 0.022),
        (0.8, -0.15, 0.58),
        (0.040, 0.032, 0.028),
        0.0110,
        0.0085,
    ),
}
_SMPLX_TIP_NAMES = {"index": "index", "middle": "middle", "pinky": "pinky", "ring": "ring", "thumb": "thumb"}


def _smoothstep(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(
    p: np.ndarray, centre: tuple[float, float, float], sigma: tuple[float, float, float]
) -> np.ndarray:
    d = (p - np.asarray(centre)) / np.asarray(sigma)
    return np.exp(-0.5 * (d**2).sum(-1))


@dataclass
class _Part:
    """One closed tube: vertices, faces (local indices) and per-vertex axis data for skinning and shapes."""

    name: str
    verts: np.ndarray
    faces: np.ndarray
    s: np.ndarray
    """Axial coordinate of each vertex (metres from the tube's origin along its direction)."""
    axis: np.ndarray
    """The point on the axis each vertex's ring is centred on (for radial shape directions)."""
    rings: dict[float, np.ndarray]
    """Axial station -> local vertex indices of the ring built exactly there (joint rings)."""
    start_pole: int
    end_pole: int
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _frame(direction: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = direction / np.linalg.norm(direction)
    e1 = up - (up @ d) * d
    e1 /= np.linalg.norm(e1)
    return d, e1, np.cross(d, e1)


def _tube(
    name: str,
    origin: tuple[float, float, float],
    direction: tuple[float, float, float],
    up: tuple[float, float, float],
    keys: list[tuple[float, float, float, float, float]],
    n_around: int,
    spacing: float,
    cap: tuple[float, float],
    cap_rings: int,
    exact: tuple[float, ...] = (),
) -> _Part:
    """A closed generalised cylinder along a straight axis.

    ``keys``: (s, a, b, off1, off2) profile keyframes (radius ``a`` along ``up``, ``b`` along the third
    axis, centre offset in the ring plane), interpolated monotonically (PCHIP). Stations are spaced about
    ``spacing`` apart and include every ``exact`` value (joint rings). ``cap`` = lengths of the rounded
    start/end caps.
    """
    d, e1, e2 = _frame(np.asarray(direction, float), np.asarray(up, float))
    o = np.asarray(origin, float)
    k = np.asarray(keys, float)
    s0, s1 = k[0, 0], k[-1, 0]
    n_st = max(2, round((s1 - s0) / spacing) + 1)
    stations = np.unique(np.round(np.concatenate([np.linspace(s0, s1, n_st), exact]), 9))
    if len(k) > 1:
        prof = np.stack([PchipInterpolator(k[:, 0], k[:, c])(stations) for c in range(1, 5)], -1)
    else:
        prof = k[:, 1:]
    phi = 2.0 * np.pi * np.arange(n_around) / n_around
    rows, s_list, ax_list = [], [], []

    def ring(s: float, a: float, b: float, o1: float, o2: float) -> None:
        centre = o + s * d + o1 * e1 + o2 * e2
        rows.append(centre + a * np.cos(phi)[:, None] * e1 + b * np.sin(phi)[:, None] * e2)
        s_list.append(np.full(n_around, s))
        ax_list.append(np.repeat(centre[None], n_around, 0))

    cap_t = np.linspace(0.0, np.pi / 2, cap_rings + 2)[1:-1]
    for t in cap_t[::-1]:  # start cap, from the pole side inwards
        a, b, o1, o2 = prof[0]
        ring(stations[0] - cap[0] * np.sin(t), a * np.cos(t), b * np.cos(t), o1, o2)
    first_station_ring = len(rows)
    for s, (a, b, o1, o2) in zip(stations, prof, strict=True):
        ring(s, a, b, o1, o2)
    for t in cap_t:
        a, b, o1, o2 = prof[-1]
        ring(stations[-1] + cap[1] * np.sin(t), a * np.cos(t), b * np.cos(t), o1, o2)
    n_rings = len(rows)
    o10, o20 = prof[0, 2:]
    o11, o21 = prof[-1, 2:]
    p_start = o + (stations[0] - cap[0]) * d + o10 * e1 + o20 * e2
    p_end = o + (stations[-1] + cap[1]) * d + o11 * e1 + o21 * e2
    verts = np.concatenate([*rows, p_start[None], p_end[None]])
    s_all = np.concatenate([*s_list, [stations[0] - cap[0], stations[-1] + cap[1]]])
    axis = np.concatenate([*ax_list, p_start[None], p_end[None]])
    start, end = n_rings * n_around, n_rings * n_around + 1
    faces = []
    j = np.arange(n_around)
    jn = (j + 1) % n_around
    for r in range(n_rings - 1):
        a_, b_ = r * n_around, (r + 1) * n_around
        faces.append(np.stack([a_ + j, b_ + j, b_ + jn], -1))
        faces.append(np.stack([a_ + j, b_ + jn, a_ + jn], -1))
    faces.append(np.stack([np.full(n_around, start), jn, j], -1))
    last = (n_rings - 1) * n_around
    faces.append(np.stack([np.full(n_around, end), last + j, last + jn], -1))
    faces = np.concatenate(faces)
    # Orient outwards: a closed surface has positive signed volume when its normals point out.
    tri = verts[faces]
    if np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() < 0:
        faces = faces[:, ::-1]
    rings = {
        float(np.round(s, 9)): np.arange(n_around) + (first_station_ring + i) * n_around
        for i, s in enumerate(stations)
    }
    return _Part(name, verts, faces.copy(), s_all, axis, rings, start, end)


def _skin_along(part: _Part, chain: list[tuple[int, float, float]]) -> np.ndarray:
    """Weights ``[v, 55]`` along the tube axis: ``chain`` = [(joint, s_start, blend half-width), ...];
    the first joint owns everything before the second one's start, and so on, with smoothstep blends."""
    w = np.zeros((len(part.s), NUM_JOINTS))
    f_prev = np.ones(len(part.s))
    for i, (joint, _, _) in enumerate(chain):
        if i + 1 < len(chain):
            _, s_next, half = chain[i + 1]
            f_next = _smoothstep((part.s - s_next + half) / (2.0 * half))
        else:
            f_next = np.zeros(len(part.s))
        w[:, joint] += f_prev - f_next
        f_prev = f_next
    return w


def _mirror(part: _Part, name: str) -> _Part:
    """The right-side twin of a left-side part (x -> -x, winding reversed, joints renamed)."""
    flip = np.array([-1.0, 1.0, 1.0])
    weights = np.zeros_like(part.weights)
    for j in range(NUM_JOINTS):
        weights[:, _LEFT_TO_RIGHT.get(j, j)] += part.weights[:, j]
    return _Part(
        name,
        part.verts * flip,
        part.faces[:, ::-1].copy(),
        part.s.copy(),
        part.axis * flip,
        part.rings,
        part.start_pole,
        part.end_pole,
        weights,
    )


def _h(height: float) -> float:
    """Height above the ground -> y coordinate."""
    return GROUND_Y + height


def _left_parts() -> dict[str, _Part]:
    """The parts of the left side, with skinning weights; joint rings sit at the designed joint stations."""
    parts: dict[str, _Part] = {}
    # Leg: down from inside the pelvis through hip (0.88 m), knee (0.48) and ankle (0.08).
    leg = _tube(
        "left_leg", (0.09, _h(0.97), 0.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0),
        [(0.0, 0.085, 0.085, 0, 0), (0.09, 0.085, 0.088, 0, 0), (0.19, 0.080, 0.082, 0, 0.005),
         (0.35, 0.064, 0.066, 0, 0.0), (0.49, 0.050, 0.052, 0, 0.0), (0.57, 0.052, 0.056, 0, -0.008),
         (0.67, 0.049, 0.051, 0, -0.006), (0.79, 0.036, 0.038, 0, -0.002), (0.89, 0.032, 0.034, 0, 0)],
        n_around=24, spacing=0.022, cap=(0.03, 0.03), cap_rings=4, exact=(0.09, 0.49, 0.89),
    )  # fmt: skip
    leg.weights = _skin_along(leg, [(0, 0, 0), (1, 0.07, 0.04), (4, 0.49, 0.04), (7, 0.89, 0.03)])
    parts["left_leg"] = leg
    # Foot: forward from the heel; the ball of the foot is SMPL-X's "foot" joint.
    foot = _tube(
        "left_foot", (0.095, _h(0.0), 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0),
        [(-0.05, 0.034, 0.040, 0, 0.044), (0.0, 0.040, 0.050, 0, 0.052), (0.06, 0.046, 0.040, 0, 0.044),
         (0.12, 0.049, 0.028, 0, 0.029), (0.17, 0.045, 0.020, 0, 0.022)],
        n_around=20, spacing=0.018, cap=(0.028, 0.03), cap_rings=4, exact=(0.12,),
    )  # fmt: skip
    foot.weights = _skin_along(foot, [(7, 0, 0), (10, 0.12, 0.025)])
    parts["left_foot"] = foot
    # Arm: along +x from inside the chest through collar, shoulder, elbow, wrist (T-pose).
    arm = _tube(
        "left_arm", (0.0, _h(1.41), -0.01), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0),
        [(0.05, 0.058, 0.060, 0, 0), (0.075, 0.060, 0.062, 0, 0), (0.12, 0.062, 0.062, -0.002, 0),
         (0.18, 0.056, 0.054, -0.008, 0), (0.26, 0.047, 0.049, -0.010, 0), (0.36, 0.041, 0.043, -0.010, 0),
         (0.44, 0.035, 0.037, -0.010, 0), (0.50, 0.037, 0.040, -0.010, 0), (0.60, 0.029, 0.033, -0.010, 0),
         (0.69, 0.021, 0.029, -0.010, 0)],
        n_around=20, spacing=0.02, cap=(0.03, 0.015), cap_rings=3, exact=(0.075, 0.18, 0.44, 0.69),
    )  # fmt: skip
    arm.weights = _skin_along(
        arm, [(9, 0, 0), (13, 0.075, 0.02), (16, 0.18, 0.04), (18, 0.44, 0.03), (20, 0.69, 0.012)]
    )
    parts["left_arm"] = arm
    wrist = np.array([0.69, _h(1.40), -0.01])
    palm = _tube(
        "left_palm", tuple(wrist), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0),
        [(-0.005, 0.016, 0.030, 0, 0.0), (0.03, 0.017, 0.040, 0, 0.0), (0.075, 0.014, 0.043, 0, -0.002)],
        n_around=16, spacing=0.012, cap=(0.01, 0.012), cap_rings=3,
    )  # fmt: skip
    palm.weights = _skin_along(palm, [(20, 0, 0)])
    parts["left_palm"] = palm
    for finger, (joints, base, direction, lengths, r0, r1) in _FINGERS.items():
        starts = np.cumsum((0.0, *lengths))
        total = starts[-1] - 0.006
        keys = [(-0.004, r0 * 1.05, r0 * 1.1, 0, 0)]
        keys += [
            (s, r0 + (r1 - r0) * s / total, (r0 + (r1 - r0) * s / total) * 1.08, 0, 0)
            for s in (starts[1], total)
        ]
        tube = _tube(
            f"left_{finger}", tuple(wrist + np.asarray(base)), direction, (0.0, 1.0, 0.0), keys,
            n_around=10, spacing=0.008, cap=(0.008, r1), cap_rings=3, exact=tuple(starts[:3]),
        )  # fmt: skip
        chain = [(20, 0.0, 0.0)] + [(j, s, 0.006) for j, s in zip(joints, starts[:3], strict=True)]
        tube.weights = _skin_along(tube, chain)
        parts[f"left_{finger}"] = tube
    eye = _tube(
        "left_eye", (0.032, _h(1.63), 0.092), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0), [(0.0, 0.0125, 0.0125, 0, 0)],
        n_around=14, spacing=1.0, cap=(0.0125, 0.0125), cap_rings=5, exact=(0.0,),
    )  # fmt: skip
    eye.weights = _skin_along(eye, [(23, 0, 0)])
    parts["left_eye"] = eye
    return parts


def _vertical(keys: list[tuple[float, ...]]) -> list[tuple[float, float, float, float, float]]:
    """(height, half-width, half-depth, 0, forward) -> tube keys for a vertical tube with ``up = +z``."""
    return [(s, depth, width, fwd, 0.0) for s, width, depth, _, fwd in keys]


def _central_parts() -> dict[str, _Part]:
    """Torso, neck and head: vertical tubes whose rings start on +z, hence mirror-symmetric in x.

    Keys are written as (height, half-width, half-depth, 0, forward offset)."""
    torso = _tube(
        "torso", (0.0, _h(0.0), 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0),
        _vertical([
         (0.86, 0.150, 0.095, 0, 0.0), (0.93, 0.165, 0.105, 0, -0.005), (1.00, 0.155, 0.100, 0, 0.0),
         (1.04, 0.142, 0.096, 0, 0.005), (1.10, 0.138, 0.096, 0, 0.008), (1.17, 0.148, 0.100, 0, 0.010),
         (1.25, 0.162, 0.106, 0, 0.012), (1.30, 0.170, 0.108, 0, 0.012), (1.37, 0.175, 0.098, 0, 0.006),
         (1.42, 0.160, 0.080, 0, 0.0)]),
        n_around=36, spacing=0.015, cap=(0.05, 0.05), cap_rings=5, exact=(0.93, 1.04, 1.17, 1.30),
    )  # fmt: skip
    torso.weights = _skin_along(torso, [(0, 0, 0), (3, 1.04, 0.03), (6, 1.17, 0.03), (9, 1.30, 0.03)])
    neck = _tube(
        "neck", (0.0, _h(0.0), -0.01), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0),
        _vertical([(1.41, 0.060, 0.058, 0, 0), (1.46, 0.052, 0.052, 0, 0), (1.52, 0.050, 0.050, 0, 0.005),
         (1.56, 0.050, 0.050, 0, 0.01)]),
        n_around=24, spacing=0.015, cap=(0.02, 0.03), cap_rings=3, exact=(1.46, 1.56),
    )  # fmt: skip
    neck.weights = _skin_along(neck, [(9, 0, 0), (12, 1.44, 0.02), (15, 1.56, 0.02)])
    head = _tube(
        "head", (0.0, _h(0.0), 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0),
        _vertical([
         (1.515, 0.030, 0.030, 0, 0.065), (1.54, 0.055, 0.065, 0, 0.035), (1.57, 0.068, 0.085, 0, 0.020),
         (1.60, 0.074, 0.095, 0, 0.012), (1.63, 0.077, 0.100, 0, 0.008), (1.66, 0.078, 0.100, 0, 0.003),
         (1.69, 0.068, 0.088, 0, 0.0)]),
        n_around=40, spacing=0.008, cap=(0.012, 0.028), cap_rings=6, exact=(1.585,),
    )  # fmt: skip
    p = head.verts
    h = p[:, 1] - GROUND_Y
    # Face relief: nose, eye sockets, ears and lips, as smooth bumps (symmetric pairs for the sides).
    front = _smoothstep((p[:, 2] - 0.02) / 0.04)
    nose = np.where(
        h > 1.60,
        _gauss(p, (0, _h(1.60), 0.1), (0.010, 0.030, 1e9)),
        _gauss(p, (0, _h(1.60), 0.1), (0.013, 0.010, 1e9)),
    )
    bump = 0.022 * nose * front
    for sx in (1.0, -1.0):
        bump -= 0.008 * _gauss(p, (sx * 0.032, _h(1.632), 0.1), (0.013, 0.010, 1e9)) * front
    bump += 0.006 * _gauss(p, (0.0, _h(1.565), 0.1), (0.022, 0.007, 1e9)) * front
    p[:, 2] += bump
    for sx in (1.0, -1.0):
        ear = _gauss(p, (sx * 0.077, _h(1.625), -0.005), (1e9, 0.022, 0.012))
        p[:, 0] += sx * 0.016 * ear * (sx * p[:, 0] > 0)
    w = _skin_along(head, [(15, 0, 0)])
    jaw = _smoothstep((1.578 - h) / 0.02) * _smoothstep((p[:, 2] + 0.02) / 0.04)
    w[:, 15] -= jaw
    w[:, 22] += jaw
    head.weights = w
    return {"torso": torso, "neck": neck, "head": head}


# Joint -> (part, axial station) of the ring whose centroid defines it. Left side only; mirrored below.
_JOINT_RINGS = {
    0: ("torso", 0.93), 3: ("torso", 1.04), 6: ("torso", 1.17), 9: ("torso", 1.30),
    12: ("neck", 1.46), 15: ("neck", 1.56),
    1: ("left_leg", 0.09), 4: ("left_leg", 0.49), 7: ("left_leg", 0.89), 10: ("left_foot", 0.12),
    13: ("left_arm", 0.075), 16: ("left_arm", 0.18), 18: ("left_arm", 0.44), 20: ("left_arm", 0.69),
    23: ("left_eye", 0.0),
}  # fmt: skip


@dataclass
class _Mesh:
    verts: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    axis: np.ndarray
    part: np.ndarray
    """Index into ``names`` per vertex."""
    names: list[str]
    offsets: dict[str, int]
    parts: dict[str, _Part]


def _assemble() -> _Mesh:
    left = _left_parts()
    parts = {**_central_parts(), **left}
    parts.update(
        {n.replace("left_", "right_"): _mirror(p, n.replace("left_", "right_")) for n, p in left.items()}
    )
    names = list(parts)
    offsets, start = {}, 0
    for n in names:
        offsets[n] = start
        start += len(parts[n].verts)
    return _Mesh(
        verts=np.concatenate([parts[n].verts for n in names]),
        faces=np.concatenate([parts[n].faces + offsets[n] for n in names]),
        weights=np.concatenate([parts[n].weights for n in names]),
        axis=np.concatenate([parts[n].axis for n in names]),
        part=np.concatenate([np.full(len(parts[n].verts), i) for i, n in enumerate(names)]),
        names=names,
        offsets=offsets,
        parts=parts,
    )


def _joint_regressor(mesh: _Mesh) -> np.ndarray:
    reg = np.zeros((NUM_JOINTS, len(mesh.verts)))
    rings = dict(_JOINT_RINGS)
    for finger, (joints, _, _, lengths, _, _) in _FINGERS.items():
        for j, s in zip(joints, np.cumsum((0.0, *lengths))[:3], strict=True):
            rings[j] = (f"left_{finger}", s)
    for j, (name, s) in list(rings.items()):
        if j in _LEFT_TO_RIGHT:
            rings[_LEFT_TO_RIGHT[j]] = (name.replace("left_", "right_"), s)
    for j, (name, s) in rings.items():
        idx = mesh.parts[name].rings[float(np.round(s, 9))] + mesh.offsets[name]
        reg[j, idx] = 1.0 / len(idx)
    # Jaw: the mirror pair of head vertices on the ring at 1.585 m closest to the pivot (behind the cheeks).
    head = mesh.parts["head"]
    ring = head.rings[1.585]
    target = ring[np.argmin(np.abs(head.verts[ring, 2] - 0.0) + 1e3 * (head.verts[ring, 0] < 0))]
    twin = ring[np.argmin(np.linalg.norm(head.verts[ring] - head.verts[target] * [-1, 1, 1], axis=1))]
    reg[22, [target + mesh.offsets["head"], twin + mesh.offsets["head"]]] = 0.5
    return reg


def _shape_dirs(mesh: _Mesh) -> np.ndarray:
    """``[V, 3, 10]`` linear shape fields (one unit of beta is a plausible one-sigma change)."""
    p, name = mesh.verts, np.array(mesh.names)[mesh.part]
    h = p[:, 1] - GROUND_Y
    radial = p - mesh.axis
    side = np.sign(p[:, 0])
    is_torso = name == "torso"
    is_arm = np.char.find(name, "_arm") >= 0
    is_leg = np.char.find(name, "_leg") >= 0
    is_hand = np.isin(name, [f"{s}_{f}" for s in ("left", "right") for f in (*_FINGERS, "palm")])
    is_head = np.isin(name, ["head", "left_eye", "right_eye"])
    d = np.zeros((len(p), 3, NUM_SHAPE))
    d[:, 1, 0] = 0.05 * h  # height: 5 % per unit, feet stay on the ground
    girth = np.select(
        [is_torso, is_arm | is_leg | (name == "neck"), is_hand, is_head], [0.12, 0.09, 0.03, 0.02], 0.0
    )
    d[:, :, 1] = girth[:, None] * radial
    d[:, 2, 2] = 0.03 * is_torso * (p[:, 2] > 0) * _gauss(p, (0, _h(1.07), 0), (0.12, 0.08, 1e9))  # belly
    upper = _smoothstep((h - 1.2) / 0.2)
    # Shoulder width.
    d[:, 0, 3] = np.where(is_torso, 0.08 * p[:, 0] * upper, 0.0) + 0.02 * side * (is_arm | is_hand)
    lower = _smoothstep((1.02 - h) / 0.12)
    # Hip width.
    d[:, 0, 4] = np.where(is_torso, 0.10 * p[:, 0] * lower, 0.0) + 0.012 * side * (
        (h < 1.0) & ~is_torso & ~is_arm & ~is_hand
    )
    d[:, 1, 5] = 0.04 * np.minimum(h, 0.88) / 0.88  # leg length: the body above the hips moves up
    centre = np.array([0.0, _h(1.62), 0.01])
    d[:, :, 6] = (0.08 * is_head)[:, None] * (p - centre)  # head size
    reach = np.clip((np.abs(p[:, 0]) - 0.18) / 0.51, 0.0, 1.0)
    d[:, 0, 7] = 0.05 * side * np.where(is_hand, 1.0, reach * is_arm)  # arm length
    chest = _smoothstep((h - 1.12) / 0.08) * _smoothstep((1.45 - h) / 0.08)
    d[:, 2, 8] = 0.12 * is_torso * chest * radial[:, 2]  # chest depth
    d[:, :, 9] = (0.06 * (is_arm | is_leg))[:, None] * radial  # limb muscle
    return d


def _expression_dirs(mesh: _Mesh, jaw_weight: np.ndarray) -> np.ndarray:
    """``[V, 3, 10]`` smooth face displacements on the head shell (eyeballs stay rigid)."""
    p = mesh.verts
    on_face = (np.array(mesh.names)[mesh.part] == "head") & (p[:, 2] > 0.0)
    m = on_face[:, None].astype(float)
    d = np.zeros((len(p), 3, NUM_EXPRESSION))
    d[:, 1, 0] = -0.012 * jaw_weight * on_face  # mouth open
    d[:, 2, 0] = -0.004 * jaw_weight * on_face
    for sx in (1.0, -1.0):
        corner = _gauss(p, (sx * 0.028, _h(1.565), 0.1), (0.012, 0.01, 1e9))[:, None] * m[:, 0:1]
        d[:, :, 1] += corner * np.array([sx * 0.004, 0.006, -0.002])  # smile
        d[:, :, 4] += (
            _gauss(p, (sx * 0.05, _h(1.58), 0.1), (0.015, 0.015, 1e9))[:, None] * m * [sx * 0.007, 0, 0.004]
        )
        d[:, :, 6 if sx > 0 else 7] += (
            _gauss(p, (sx * 0.032, _h(1.645), 0.1), (0.014, 0.006, 1e9))[:, None] * m * [0, -0.004, 0]
        )
        d[:, :, 3] += (
            _gauss(p, (sx * 0.018, _h(1.655), 0.1), (0.01, 0.008, 1e9))[:, None]
            * m
            * [-sx * 0.003, -0.003, 0]
        )
    d[:, 1, 2] = 0.005 * _gauss(p, (0, _h(1.66), 0.1), (0.05, 0.012, 1e9)) * on_face  # brow raise
    lips = _gauss(p, (0, _h(1.565), 0.1), (0.022, 0.01, 1e9)) * on_face
    d[:, 2, 5] = 0.008 * lips  # pucker
    d[:, 0, 5] = -0.15 * lips * p[:, 0]
    d[:, 0, 8] = 0.006 * jaw_weight * on_face  # jaw shift
    d[:, 1, 9] = 0.003 * _gauss(p, (0, _h(1.615), 0.1), (0.015, 0.015, 1e9)) * on_face  # nose wrinkle
    return d


def _face_near(mesh: _Mesh, faces: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each (x, y) target, the front-facing head face whose centroid is closest in x and y."""
    head_faces = np.flatnonzero(
        np.isin(faces[:, 0], np.flatnonzero(np.array(mesh.names)[mesh.part] == "head"))
    )
    cent = mesh.verts[faces[head_faces]].mean(1)
    head_faces, cent = head_faces[cent[:, 2] > 0.03], cent[cent[:, 2] > 0.03]
    dist = ((cent[None, :, :2] - targets[:, None, :]) ** 2).sum(-1)
    return head_faces[np.argmin(dist, axis=1)]


def _landmarks(mesh: _Mesh, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pts = []
    for sx in (-1.0, 1.0):
        pts += [(sx * x, 1.66) for x in np.linspace(0.055, 0.012, 5)]  # brows
    pts += [(0.0, h) for h in np.linspace(1.645, 1.61, 4)] + [
        (x, 1.598) for x in np.linspace(-0.014, 0.014, 5)
    ]
    for sx in (-1.0, 1.0):
        t = np.linspace(0, 2 * np.pi, 7)[:-1]
        pts += [(sx * 0.032 + 0.013 * np.cos(a), 1.632 + 0.005 * np.sin(a)) for a in t]  # eyes
    pts += [(0.026 * np.cos(a), 1.565 + 0.009 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 13)[:-1]]
    pts += [(0.015 * np.cos(a), 1.565 + 0.003 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 9)[:-1]]
    targets = np.array([(x, _h(h)) for x, h in pts])
    return _face_near(mesh, faces, targets), np.full((len(targets), 3), 1.0 / 3.0)


def _contour(mesh: _Mesh, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(-1.0, 1.0, 17)
    targets = np.stack([0.068 * t, GROUND_Y + 1.60 - 0.075 * (1.0 - t**2) ** 0.7], -1)
    idx = _face_near(mesh, faces, targets)
    return np.repeat(idx[None], 79, 0), np.full((79, 17, 3), 1.0 / 3.0)


def _semantic_vertices(mesh: _Mesh) -> dict[str, int]:
    """Mesh vertex for each of smplx's hard-coded keypoint names (left side built, right mirrored)."""
    out: dict[str, int] = {}
    off, parts, v = mesh.offsets, mesh.parts, mesh.verts

    def in_part(name: str) -> np.ndarray:
        return np.arange(len(parts[name].verts)) + off[name]

    head = in_part("head")
    out["nose"] = int(head[np.argmax(v[head, 2] - 10 * np.abs(v[head, 0]))])
    out["leye"] = int(in_part("left_eye")[parts["left_eye"].end_pole])
    out["reye"] = int(in_part("right_eye")[parts["right_eye"].end_pole])
    out["lear"] = int(head[np.argmax(v[head, 0])])
    out["rear"] = int(head[np.argmin(v[head, 0])])
    for side, s in (("left", "l"), ("right", "r")):
        for finger in _FINGERS:
            out[f"{s}{_SMPLX_TIP_NAMES[finger]}"] = int(
                in_part(f"{side}_{finger}")[parts[f"{side}_{finger}"].end_pole]
            )
        foot = in_part(f"{side}_foot")
        x, y, z = v[foot].T
        inner = np.abs(x) < 0.095
        low = y < GROUND_Y + 0.03
        big = np.where(inner & low, z, -np.inf)
        small = np.where(~inner & low & (np.abs(x) > 0.115), z, -np.inf)
        heel = np.where(low, -z, -np.inf)
        side_up = side[0].upper()
        out[f"{side_up}BigToe"] = int(foot[np.argmax(big)])
        out[f"{side_up}SmallToe"] = int(foot[np.argmax(small)])
        out[f"{side_up}Heel"] = int(foot[np.argmax(heel)])
    return out


def build_mannequin(seed: int = 0) -> dict[str, np.ndarray]:
    """All arrays of the SMPL-X ``.npz`` (keys as smplx 0.1.28 reads them), deterministic for ``seed``.

    ``seed`` draws the hand PCA bases (the geometry does not depend on it).
    """
    mesh = _assemble()
    faces = mesh.faces
    weights = mesh.weights
    jaw = weights[:, 22].copy()
    reg = _joint_regressor(mesh)
    dirs = np.concatenate([_shape_dirs(mesh), _expression_dirs(mesh, jaw)], axis=-1)
    lmk_idx, lmk_bary = _landmarks(mesh, faces)
    dyn_idx, dyn_bary = _contour(mesh, faces)

    # Permute vertices so that smplx's hard-coded keypoint ids land on the matching features.
    wanted = SMPLX_VERTEX_IDS["smplx"]
    semantic = _semantic_vertices(mesh)
    n = len(mesh.verts)
    if n <= max(wanted.values()):
        raise AssertionError(f"mannequin mesh has {n} vertices; smplx needs more than {max(wanted.values())}")
    perm = np.arange(n)  # new index -> old index
    pos = np.arange(n)  # old index -> new index
    for key, new in wanted.items():
        old = semantic[key]
        other = perm[new]
        perm[new], perm[pos[old]] = old, other
        pos[other], pos[old] = pos[old], new
    faces = pos[faces]

    rng = np.random.default_rng(seed)
    comps = [np.linalg.qr(rng.standard_normal((45, 45)))[0] for _ in range(2)]
    curl = np.zeros((15, 3))
    curl[:12, 2] = -0.15  # fingers flex toward the palm (-y) for the left hand
    curl[12:, 1] = -0.1
    mean_l = curl.reshape(-1)
    mean_r = (curl * [1.0, -1.0, -1.0]).reshape(-1)  # mirror of an axis-angle under x -> -x

    return {
        "v_template": mesh.verts[perm].astype(np.float64),
        "f": faces.astype(np.uint32),
        "J_regressor": reg[:, perm].astype(np.float64),
        "weights": weights[perm].astype(np.float64),
        "kintree_table": np.stack([SMPLX_PARENTS, np.arange(NUM_JOINTS)]).astype(np.int64),
        "shapedirs": dirs[perm].astype(np.float64),
        "posedirs": np.zeros((n, 3, (NUM_JOINTS - 1) * 9), dtype=np.float32),
        "hands_componentsl": comps[0],
        "hands_componentsr": comps[1],
        "hands_meanl": mean_l,
        "hands_meanr": mean_r,
        "lmk_faces_idx": lmk_idx.astype(np.int64),
        "lmk_bary_coords": lmk_bary,
        "dynamic_lmk_faces_idx": dyn_idx.astype(np.int64),
        "dynamic_lmk_bary_coords": dyn_bary,
    }


def write_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Write an ``.npz`` that ``np.load`` reads, with fixed zip metadata so equal arrays give equal bytes
    (``np.savez`` stamps the current time). Written to a temporary file and renamed, so concurrent
    writers never expose a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    os.replace(tmp, path)


def mannequin_model_dir(cache_dir: Path, seed: int = 0) -> Path:
    """The smplx model folder of the mannequin for ``seed`` (``<dir>/smplx/SMPLX_NEUTRAL.npz``), generated
    into ``cache_dir`` when missing."""
    root = Path(cache_dir).expanduser() / f"mannequin-v{GENERATOR_VERSION}-seed{seed}"
    path = root / "smplx" / "SMPLX_NEUTRAL.npz"
    if not path.is_file():
        write_npz(build_mannequin(seed), path)
    return root
