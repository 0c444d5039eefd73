"""Linear blend skinning for SMPL-X-style body models: pure functions on tensors.

The same maths as ``smplx.lbs`` (blend shapes, joint regression, pose correctives, kinematic chain,
skinning), written as small batched functions so that the template can pose *any* point set (mesh
vertices, anchors, Gaussian means) and Gaussian rotations with the transforms of one body pose, and so
that the toolkit does not depend on the ``smplx`` package (non-commercial licence) for its maths.

Conventions:

- Transforms are ``[..., J, 4, 4]`` homogeneous matrices acting on column vectors (``x' = T @ [x, 1]``).
- *World* transforms ``G_j`` of a pose map joint ``j``'s local frame to the world: rotation is the product
  of rotations along the chain, translation is the posed joint location.
- *Skinning* transforms ``A_j = G_j @ [I, -J_j^rest]`` map a rest-space point (rest = the space where the
  joints sit at ``J^rest`` with identity rotations) to its position when rigidly attached to joint ``j``.
  LBS is ``x' = (sum_j w_j A_j) @ [x, 1]``.
- Changing the rest pose: for a canonical pose ``c`` (the Da-pose) and a target pose ``t``, the per-joint
  transforms ``A_t,j @ A_c,j^-1`` map the canonical (posed-``c``) space to the target pose; blending them
  with the skinning weights is LBS with the canonical pose as the new rest pose.
- Rotations of Gaussians: the blended matrix ``sum_j w_j R_j`` is not a rotation where weights mix joints;
  its nearest rotation (polar decomposition, ``roma.special_procrustes``) is used.

Everything works in any floating dtype (float64 included) and is differentiable.
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor

from lca.rotations import matrix_to_quat, quat_multiply


def blend_shapes(coeffs: Tensor, dirs: Tensor) -> Tensor:
    """Vertex displacements of linear blend shapes.

    ``coeffs [..., K]`` (betas and/or expression), ``dirs [V, 3, K]`` -> ``[..., V, 3]``.
    """
    return torch.einsum("...k,vck->...vc", coeffs, dirs)


def regress_joints(j_regressor: Tensor, vertices: Tensor) -> Tensor:
    """Joint locations as linear combinations of vertices: ``[J, V]`` x ``[..., V, 3]`` -> ``[..., J, 3]``."""
    return torch.einsum("jv,...vc->...jc", j_regressor, vertices)


def pose_to_rotmats(pose: Tensor) -> Tensor:
    """Axis-angle joint rotations ``[..., J, 3]`` -> ``[..., J, 3, 3]`` (roma, exact at zero angle)."""
    return roma.rotvec_to_rotmat(pose)


def pose_corrective_offsets(rotmats: Tensor, posedirs: Tensor) -> Tensor:
    """SMPL pose-corrective displacements.

    ``rotmats [..., J, 3, 3]`` (all joints, root first; the root is excluded as in SMPL),
    ``posedirs [(J-1)*9, V*3]`` (smplx's layout) -> ``[..., V, 3]``.
    """
    eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
    feature = (rotmats[..., 1:, :, :] - eye).flatten(-3)
    return (feature @ posedirs).unflatten(-1, (-1, 3))


def make_transform(rotation: Tensor, translation: Tensor) -> Tensor:
    """``[..., 3, 3]`` and ``[..., 3]`` -> homogeneous ``[..., 4, 4]``."""
    top = torch.cat([rotation, translation.unsqueeze(-1)], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def rigid_inverse(transforms: Tensor) -> Tensor:
    """Inverse of rigid transforms ``[..., 4, 4]`` (rotation part orthonormal): ``[R^T, -R^T t]``."""
    rot_t = transforms[..., :3, :3].transpose(-1, -2)
    return make_transform(rot_t, -(rot_t @ transforms[..., :3, 3:]).squeeze(-1))


def world_transforms(rotmats: Tensor, joints: Tensor, parents: Tensor) -> Tensor:
    """Forward kinematics: world transforms ``G [..., J, 4, 4]`` of every joint.

    ``rotmats [..., J, 3, 3]`` local joint rotations, ``joints [..., J, 3]`` rest joint locations,
    ``parents [J]`` with ``parents[0] = -1`` and every parent before its child (true for SMPL-X).
    The translation column of ``G_j`` is the posed location of joint ``j``.
    """
    rel = joints.clone()
    rel[..., 1:, :] = joints[..., 1:, :] - joints[..., parents[1:], :]
    local = make_transform(rotmats, rel)
    # The chain is sequential by nature (each joint needs its parent's result): a Python loop over J.
    chain = [local[..., 0, :, :]]
    for j in range(1, parents.shape[0]):
        chain.append(chain[int(parents[j])] @ local[..., j, :, :])
    return torch.stack(chain, dim=-3)


def skinning_transforms(rotmats: Tensor, joints: Tensor, parents: Tensor) -> Tensor:
    """Per-joint skinning transforms ``A [..., J, 4, 4]`` mapping rest space to the posed space.

    ``A_j = G_j @ [I, -J_j]``; same inputs as :func:`world_transforms`. Equals smplx's ``A`` from
    ``batch_rigid_transform``.
    """
    world = world_transforms(rotmats, joints, parents)
    rot = world[..., :3, :3]
    trans = world[..., :3, 3] - (rot @ joints.unsqueeze(-1)).squeeze(-1)
    return make_transform(rot, trans)


def relative_transforms(target: Tensor, canonical: Tensor) -> Tensor:
    """Per-joint transforms from a canonical posed space to a target posed space: ``T_t @ T_c^-1``.

    Both ``[..., J, 4, 4]`` rigid skinning transforms of the same rest skeleton.
    """
    return target @ rigid_inverse(canonical)


def translate(transforms: Tensor, translation: Tensor) -> Tensor:
    """Left-multiply ``[..., J, 4, 4]`` by a pure translation ``[..., 3]`` (applied after the transforms)."""
    out = transforms.clone()
    out[..., :3, 3] = out[..., :3, 3] + translation.unsqueeze(-2)
    return out


def blend_transforms(weights: Tensor, transforms: Tensor) -> Tensor:
    """Per-point blended transforms ``sum_j w_j T_j``.

    ``weights [N, J]`` (or ``[..., N, J]`` matching the batch), ``transforms [..., J, 4, 4]``
    -> ``[..., N, 4, 4]``.
    """
    return torch.einsum("...nj,...jab->...nab", weights, transforms)


def _align(per_point: Tensor, target_ndim: int) -> Tensor:
    """Insert singleton dims so that per-point matrices ``[..., N, a, b]`` broadcast against per-point
    vectors ``[..., N, (K,) c]`` of ``target_ndim`` dims (the K axis shares anchor ``n``'s transform)."""
    extra = target_ndim - (per_point.ndim - 1)
    if extra < 0:
        raise ValueError(
            f"points/quats with {target_ndim} dims cannot carry the per-point transforms of shape "
            f"{tuple(per_point.shape)}: expected [..., N, 3] or [..., N, K, 3] and the transforms' batch"
        )
    for _ in range(extra):
        per_point = per_point.unsqueeze(-3)
    return per_point


def skin_points(points: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
    """Linear blend skinning of points.

    ``points [..., N, 3]`` or ``[..., N, K, 3]`` (K points sharing anchor ``n``'s weights),
    ``weights [N, J]``, ``transforms [..., J, 4, 4]`` -> same shape as ``points``.
    """
    blended = _align(blend_transforms(weights, transforms), points.ndim)
    return (blended[..., :3, :3] @ points.unsqueeze(-1)).squeeze(-1) + blended[..., :3, 3]


def blended_rotations(weights: Tensor, transforms: Tensor) -> Tensor:
    """Nearest rotations ``[..., N, 3, 3]`` to the blended linear parts ``sum_j w_j R_j`` (polar part)."""
    return roma.special_procrustes(blend_transforms(weights, transforms)[..., :3, :3])


def skin_quats(quats: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
    """Rotate Gaussian orientations by the skinning rotation of their anchor.

    ``quats [..., N, 4]`` or ``[..., N, K, 4]`` (wxyz), ``weights [N, J]``, ``transforms [..., J, 4, 4]``
    -> same shape, wxyz: ``q' = q(R_n) * q`` with ``R_n`` = :func:`blended_rotations`.
    """
    rot = _align(blended_rotations(weights, transforms), quats.ndim)
    return quat_multiply(matrix_to_quat(rot), quats)


def skin_directions(vectors: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
    """Rotate directions (normals, tangents) ``[..., N, (K,) 3]`` by the rotation :func:`skin_quats` uses."""
    rot = _align(blended_rotations(weights, transforms), vectors.ndim)
    return (rot @ vectors.unsqueeze(-1)).squeeze(-1)
