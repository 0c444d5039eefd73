"""lca.skinning against independent references: smplx's own lbs, and rotating small oriented shapes."""

from __future__ import annotations

import numpy as np
import pytest
import roma
import torch
from smplx.lbs import batch_rigid_transform, lbs

from lca import skinning
from lca.rotations import quat_to_matrix

J, V, S = 12, 60, 7


def _random_model(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    parents = torch.tensor([-1] + [int(torch.randint(0, j, (1,), generator=g)) for j in range(1, J)])
    weights = torch.softmax(3.0 * torch.randn(V, J, generator=g, dtype=torch.float64), -1)
    regressor = torch.softmax(torch.randn(J, V, generator=g, dtype=torch.float64), -1)
    return {
        "v_template": torch.randn(V, 3, generator=g, dtype=torch.float64),
        "shapedirs": 0.1 * torch.randn(V, 3, S, generator=g, dtype=torch.float64),
        "posedirs": 0.01 * torch.randn((J - 1) * 9, V * 3, generator=g, dtype=torch.float64),
        "J_regressor": regressor,
        "parents": parents,
        "lbs_weights": weights,
    }


def _our_lbs(m: dict[str, torch.Tensor], betas: torch.Tensor, rotmats: torch.Tensor) -> tuple:
    v = m["v_template"] + skinning.blend_shapes(betas, m["shapedirs"])
    joints = skinning.regress_joints(m["J_regressor"], v)
    v = v + skinning.pose_corrective_offsets(rotmats, m["posedirs"])
    transforms = skinning.skinning_transforms(rotmats, joints, m["parents"])
    return skinning.skin_points(v, m["lbs_weights"], transforms), transforms, joints


def test_lbs_matches_smplx_lbs_float64() -> None:
    m = _random_model()
    g = torch.Generator().manual_seed(1)
    betas = torch.randn(4, S, generator=g, dtype=torch.float64)
    pose = 0.8 * torch.randn(4, J, 3, generator=g, dtype=torch.float64)
    rotmats = skinning.pose_to_rotmats(pose)
    ours, _, _ = _our_lbs(m, betas, rotmats)
    ref, _ = lbs(betas, rotmats, pose2rot=False, **m)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-10)
    # With smplx's own axis-angle conversion (it adds 1e-8 to the vector before taking the norm).
    ref_aa, _ = lbs(betas, pose.reshape(4, -1), pose2rot=True, **m)
    torch.testing.assert_close(ours, ref_aa, rtol=0, atol=1e-6)


def test_skinning_transforms_match_smplx_batch_rigid_transform() -> None:
    m = _random_model(2)
    g = torch.Generator().manual_seed(3)
    rotmats = roma.random_rotmat(3 * J, dtype=torch.float64).reshape(3, J, 3, 3)
    joints = torch.randn(3, J, 3, generator=g, dtype=torch.float64)
    posed_ref, a_ref = batch_rigid_transform(rotmats, joints, m["parents"], dtype=torch.float64)
    ours = skinning.skinning_transforms(rotmats, joints, m["parents"])
    torch.testing.assert_close(ours, a_ref, rtol=0, atol=1e-12)
    world = skinning.world_transforms(rotmats, joints, m["parents"])
    torch.testing.assert_close(world[..., :3, 3], posed_ref, rtol=0, atol=1e-12)


def test_relative_transforms_repose_from_a_canonical_pose() -> None:
    """Points rigidly attached to one joint: rest -> canonical -> target equals rest -> target."""
    m = _random_model(4)
    joints = torch.randn(2, J, 3, dtype=torch.float64)
    canonical = skinning.skinning_transforms(
        roma.random_rotmat((2, J), dtype=torch.float64), joints, m["parents"]
    )
    target = skinning.skinning_transforms(
        roma.random_rotmat((2, J), dtype=torch.float64), joints, m["parents"]
    )
    one_hot = torch.nn.functional.one_hot(torch.arange(V) % J, J).double()
    rest = torch.randn(2, V, 3, dtype=torch.float64)
    in_canonical = skinning.skin_points(rest, one_hot, canonical)
    rel = skinning.relative_transforms(target, canonical)
    shift = torch.randn(2, 3, dtype=torch.float64)
    got = skinning.skin_points(in_canonical, one_hot, skinning.translate(rel, shift))
    torch.testing.assert_close(
        got, skinning.skin_points(rest, one_hot, target) + shift[:, None], rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        skinning.rigid_inverse(rel) @ rel, torch.eye(4, dtype=torch.float64).expand_as(rel)
    )


def _polar_rotation(m: np.ndarray) -> np.ndarray:
    """Nearest rotation by SVD (numpy, independent of roma)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


@pytest.mark.parametrize("single_joint", [True, False])
def test_quats_match_rotated_small_shapes(single_joint: bool) -> None:
    """A small tetrahedron spanned by each Gaussian's axes, skinned as points: its edges give the local
    linear map M of the skinning; skinned quats must equal polar(M) @ R(q) (M @ R(q) itself when rigid)."""
    g = torch.Generator().manual_seed(5)
    n = 40
    parents = _random_model(6)["parents"]
    joints = torch.randn(2, J, 3, generator=g, dtype=torch.float64)
    transforms = skinning.skinning_transforms(
        roma.random_rotmat((2, J), dtype=torch.float64), joints, parents
    )
    if single_joint:
        weights = torch.nn.functional.one_hot(torch.randint(0, J, (n,), generator=g), J).double()
    else:
        weights = torch.softmax(2.0 * torch.randn(n, J, generator=g, dtype=torch.float64), -1)
    centres = torch.randn(2, n, 3, generator=g, dtype=torch.float64)
    quats = roma.quat_xyzw_to_wxyz(roma.random_unitquat((2, n), dtype=torch.float64))
    axes = quat_to_matrix(quats)  # columns = the Gaussian's local axes
    eps = 1e-3
    corners = torch.cat([centres[:, :, None], centres[:, :, None] + eps * axes.transpose(-1, -2)], dim=2)
    posed = skinning.skin_points(corners, weights, transforms)  # [2, n, 4, 3] via the K axis
    edges = (posed[:, :, 1:] - posed[:, :, :1]).transpose(-1, -2).numpy() / eps  # = M @ R(q)
    got = quat_to_matrix(skinning.skin_quats(quats, weights, transforms)).numpy()
    if single_joint:
        np.testing.assert_allclose(got, edges, atol=1e-10)
    else:
        expected = np.stack(
            [
                _polar_rotation(e @ a.T) @ a
                for e, a in zip(edges.reshape(-1, 3, 3), axes.reshape(-1, 3, 3).numpy(), strict=True)
            ]
        )
        np.testing.assert_allclose(got.reshape(-1, 3, 3), expected, atol=1e-10)
        assert np.abs(got.reshape(-1, 3, 3) - edges.reshape(-1, 3, 3)).max() > 1e-3  # blending is not rigid


def test_per_anchor_k_axis_shares_the_anchor_transform() -> None:
    g = torch.Generator().manual_seed(7)
    parents = _random_model(8)["parents"]
    transforms = skinning.skinning_transforms(
        roma.random_rotmat((3, J)), torch.randn(3, J, 3, generator=g), parents
    )
    weights = torch.softmax(torch.randn(5, J, generator=g), -1)
    points = torch.randn(3, 5, 4, 3, generator=g)
    quats = roma.quat_xyzw_to_wxyz(roma.random_unitquat((3, 5, 4)))
    flat = skinning.skin_points(
        points.transpose(1, 2).reshape(12, 5, 3), weights, transforms.repeat_interleave(4, 0)
    )
    torch.testing.assert_close(
        skinning.skin_points(points, weights, transforms), flat.reshape(3, 4, 5, 3).transpose(1, 2)
    )
    q = skinning.skin_quats(quats, weights, transforms)
    assert q.shape == quats.shape
    torch.testing.assert_close(q[:, :, 2], skinning.skin_quats(quats[:, :, 2], weights, transforms))
    normals = skinning.skin_directions(points, weights, transforms)
    torch.testing.assert_close(normals.norm(dim=-1), points.norm(dim=-1))
