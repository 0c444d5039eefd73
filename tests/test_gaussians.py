"""The Gaussians structure and the rotation helpers (checked against closed forms and gsplat)."""

from __future__ import annotations

import math

import pytest
import torch
from gsplat.cuda._torch_impl import _quat_to_rotmat

from lca import rotations as R
from lca.gaussians import Gaussians


def _g(*batch: int, n: int = 5, k: int | None = None) -> Gaussians:
    colors = torch.rand(*batch, n, 3) if k is None else torch.randn(*batch, n, k, 3)
    return Gaussians(
        torch.randn(*batch, n, 3),
        torch.randn(*batch, n, 4),
        torch.rand(*batch, n, 3),
        torch.rand(*batch, n),
        colors,
    )


def test_shapes_and_sh_degree() -> None:
    g = _g(2, 3, n=7, k=16)
    assert g.batch_shape == (2, 3) and g.num_gaussians == 7 and len(g) == 7 and g.sh_degree == 3
    assert _g(n=4).sh_degree is None and _g(n=4).batch_shape == ()


def test_validation_names_field_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"Gaussians\.scales: expected shape \[2, 5, 3\].*got \[2, 4, 3\]"):
        Gaussians(
            torch.randn(2, 5, 3),
            torch.randn(2, 5, 4),
            torch.rand(2, 4, 3),
            torch.rand(2, 5),
            torch.rand(2, 5, 3),
        )
    with pytest.raises(ValueError, match=r"Gaussians\.colors: SH coefficients .* K=5"):
        Gaussians(torch.randn(5, 3), torch.randn(5, 4), torch.rand(5, 3), torch.rand(5), torch.rand(5, 5, 3))
    with pytest.raises(ValueError, match=r"Gaussians\.opacities: expected shape \[5\]"):
        Gaussians(torch.randn(5, 3), torch.randn(5, 4), torch.rand(5, 3), torch.rand(5, 1), torch.rand(5, 3))
    with pytest.raises(ValueError, match="floating-point"):
        Gaussians(
            torch.randn(5, 3),
            torch.ones(5, 4, dtype=torch.long),
            torch.rand(5, 3),
            torch.rand(5),
            torch.rand(5, 3),
        )


def test_select_cat_stack_reshape() -> None:
    g = _g(2, n=6, k=4)
    mask = torch.tensor([True, False, True, False, False, True])
    part = g[mask]
    assert part.num_gaussians == 3 and part.batch_shape == (2,)
    torch.testing.assert_close(part.colors, g.colors[:, mask])
    torch.testing.assert_close(g.select([5, 0]).means, g.means[:, [5, 0]])
    torch.testing.assert_close(g[1:3].opacities, g.opacities[:, 1:3])
    both = Gaussians.cat([part, g[~mask]])
    assert both.num_gaussians == 6
    torch.testing.assert_close(both.quats[:, 3:], g.quats[:, ~mask])
    with pytest.raises(ValueError, match="boolean mask must have shape \\[6\\]"):
        g.select(torch.ones(2, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="SH degree"):
        Gaussians.cat([g, _g(2, n=6)])
    s = Gaussians.stack([_g(n=4), _g(n=4)])
    assert s.batch_shape == (2,)
    assert s.reshape_batch(2, 1).means.shape == (2, 1, 4, 3) and s.reshape_batch(-1).batch_shape == (2,)


def test_to_detach_replace_keep_autograd_semantics() -> None:
    g = _g(n=3).map(lambda t: t.requires_grad_(True))
    assert g.to(torch.float64).dtype == torch.float64 and g.to(torch.float64).means.requires_grad
    assert not g.detach().means.requires_grad
    moved = g.replace(means=g.means + 1)
    moved.means.sum().backward()
    assert torch.equal(g.means.grad, torch.ones(3, 3))


def test_rotation_helpers_against_gsplat_and_closed_forms() -> None:
    q = torch.randn(20, 4, dtype=torch.float64)
    m = R.quat_to_matrix(q)
    torch.testing.assert_close(m, _quat_to_rotmat(q))  # gsplat: wxyz, normalised inside
    qn = R.quat_normalize(q)
    back = R.matrix_to_quat(m)
    torch.testing.assert_close(back * torch.sign(back[:, :1]), qn * torch.sign(qn[:, :1]))
    # 90 degrees about z maps x to y (column-vector convention); wxyz = (cos 45, 0, 0, sin 45).
    qz = torch.tensor([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)], dtype=torch.float64)
    torch.testing.assert_close(
        R.quat_to_matrix(qz) @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
    )
    torch.testing.assert_close(
        R.axis_angle_to_quat(torch.tensor([0, 0, math.pi / 2], dtype=torch.float64)), qz
    )
    v = torch.randn(10, 3, dtype=torch.float64)
    torch.testing.assert_close(
        R.matrix_to_axis_angle(R.axis_angle_to_matrix(v)), R.quat_to_axis_angle(R.axis_angle_to_quat(v))
    )
    torch.testing.assert_close(R.quat_to_matrix(R.axis_angle_to_quat(v)), R.axis_angle_to_matrix(v))
    torch.testing.assert_close(R.rot6d_to_matrix(R.matrix_to_rot6d(m)), m)
    q1, q2 = R.quat_normalize(torch.randn(2, 8, 4, dtype=torch.float64))
    torch.testing.assert_close(
        R.quat_to_matrix(R.quat_multiply(q1, q2)), R.quat_to_matrix(q1) @ R.quat_to_matrix(q2)
    )
    assert torch.equal(R.quat_identity(2), torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]]))
