"""Rotation helpers: thin, documented wrappers over roma.

The toolkit stores quaternions as **wxyz** (scalar first, as gsplat and the 3DGS PLY layout do); roma
works in **xyzw** (scalar last). Every function here takes and returns wxyz and converts at the roma
boundary, so no caller ever sees xyzw. Rotation matrices act on column vectors (``x' = R @ x``).

The 6D representation is the one of Zhou et al. (CVPR 2019): the first two *columns* of the rotation
matrix, concatenated as ``[r00, r10, r20, r01, r11, r21]``; decoding is roma's Gram-Schmidt.
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor


def quat_wxyz_to_xyzw(q: Tensor) -> Tensor:
    """``[..., 4]`` wxyz -> xyzw (roma's order)."""
    return roma.quat_wxyz_to_xyzw(q)


def quat_xyzw_to_wxyz(q: Tensor) -> Tensor:
    """``[..., 4]`` xyzw (roma's order) -> wxyz."""
    return roma.quat_xyzw_to_wxyz(q)


def quat_normalize(q: Tensor) -> Tensor:
    """Unit quaternion of the same rotation (``[..., 4]``, any order; the norm does not depend on it)."""
    return roma.quat_normalize(q)


def quat_identity(
    *batch: int, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> Tensor:
    """Identity rotations ``[*batch, 4]`` in wxyz, i.e. ``(1, 0, 0, 0)``."""
    q = torch.zeros(*batch, 4, dtype=dtype, device=device)
    q[..., 0] = 1.0
    return q


def quat_multiply(q1: Tensor, q2: Tensor) -> Tensor:
    """Hamilton product ``q1 * q2`` (wxyz, broadcasting): the rotation ``q2`` followed by ``q1``."""
    return quat_xyzw_to_wxyz(roma.quat_product(quat_wxyz_to_xyzw(q1), quat_wxyz_to_xyzw(q2)))


def quat_to_matrix(q: Tensor) -> Tensor:
    """wxyz quaternions ``[..., 4]`` (normalised first, so any non-zero scale is fine) -> ``[..., 3, 3]``."""
    return roma.unitquat_to_rotmat(quat_normalize(quat_wxyz_to_xyzw(q)))


def matrix_to_quat(r: Tensor) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` -> unit wxyz quaternions ``[..., 4]`` (sign as roma picks it)."""
    return quat_xyzw_to_wxyz(roma.rotmat_to_unitquat(r))


def axis_angle_to_matrix(v: Tensor) -> Tensor:
    """Axis-angle vectors ``[..., 3]`` (axis times angle in radians, as SMPL-X poses) -> ``[..., 3, 3]``."""
    return roma.rotvec_to_rotmat(v)


def matrix_to_axis_angle(r: Tensor) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` -> axis-angle vectors ``[..., 3]`` with angle in ``[0, pi]``."""
    return roma.rotmat_to_rotvec(r)


def axis_angle_to_quat(v: Tensor) -> Tensor:
    """Axis-angle ``[..., 3]`` -> unit wxyz quaternions ``[..., 4]``."""
    return quat_xyzw_to_wxyz(roma.rotvec_to_unitquat(v))


def quat_to_axis_angle(q: Tensor) -> Tensor:
    """wxyz quaternions ``[..., 4]`` (normalised first) -> axis-angle ``[..., 3]``."""
    return roma.unitquat_to_rotvec(quat_normalize(quat_wxyz_to_xyzw(q)))


def rot6d_to_matrix(d6: Tensor) -> Tensor:
    """6D ``[..., 6]`` (first two matrix columns, see module doc) -> rotation matrices ``[..., 3, 3]``."""
    if d6.shape[-1] != 6:
        raise ValueError(f"rot6d_to_matrix: expected a last dimension of 6, got shape {tuple(d6.shape)}")
    cols = d6.unflatten(-1, (2, 3)).transpose(-1, -2)  # [..., 3, 2]: the two columns side by side
    return roma.special_gramschmidt(cols)


def matrix_to_rot6d(r: Tensor) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` -> 6D ``[..., 6]`` (first two columns, column-major)."""
    return r[..., :, :2].transpose(-1, -2).flatten(-2)
