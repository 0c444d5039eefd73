"""Projection of 3D Gaussians to 2D splats, built on gsplat's pure-PyTorch reference functions.

gsplat 1.5.3's ``_quat_scale_to_covar_preci``, ``_fully_fused_projection`` and ``_spherical_harmonics`` run on
any device with autograd, and they *are* the model the CUDA kernels implement (EWA Jacobian with the 1.3x
field-of-view clamp, ``eps2d`` low-pass dilation, near/far culling, 3.33-sigma radius), so they are reused
rather than rewritten. Cameras are flattened into ``I = B * C`` images for the rasterization stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from gsplat.cuda._torch_impl import (
    _fully_fused_projection,
    _quat_scale_to_covar_preci,
    _spherical_harmonics,
)
from torch import Tensor

from lca.gaussians import Gaussians


@dataclass
class Splats:
    """2D splats of ``I`` images x ``N`` Gaussians (all differentiable except ``radii``)."""

    means2d: Tensor
    """``[I, N, 2]`` pixel coordinates of the centres."""
    conics: Tensor
    """``[I, N, 3]`` upper triangle ``(a, b, c)`` of the inverse dilated 2D covariance."""
    depths: Tensor
    """``[I, N]`` camera-space z."""
    radii: Tensor
    """``[I, N, 2]`` int32 extent in pixels; 0 marks a culled Gaussian (behind near/far, off-screen)."""
    opacities: Tensor
    """``[I, N]``."""
    features: Tensor
    """``[I, N, F]``: RGB (from colours or SH), plus the depth as the last channel when depth is rendered."""


def project(
    gaussians: Gaussians,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    render_depth: bool = False,
) -> Splats:
    """Project ``gaussians [B, N, ...]`` into cameras ``viewmats [B, C, 4, 4]``, ``Ks [B, C, 3, 3]``.

    Colours: RGB are shared by all cameras; SH coefficients are evaluated along the direction from each
    camera centre to the mean, then ``+ 0.5`` and clamped at 0, exactly as ``gsplat.rasterization`` does.
    """
    b, c = viewmats.shape[:2]
    n = gaussians.num_gaussians
    covars, _ = _quat_scale_to_covar_preci(gaussians.quats, gaussians.scales, compute_preci=False)
    # gsplat's reference divides by the camera-space z of every Gaussian and masks the culled ones afterwards,
    # so one at depth ~0 yields inf/NaN that the mask hides in the forward pass but not in the backward one
    # (0 * inf). When any Gaussian is behind a camera's near plane, each camera projects its own copy of the
    # means, in which those sit on its optical axis at depth 1 (no gradient reaches them, as none should),
    # and they stay culled. Otherwise (the usual case: the person in front of every camera) gsplat's batched
    # call runs as is, whose float32 rounding the recorded results were measured with.
    c2w = torch.linalg.inv(viewmats)
    z = torch.einsum("bcj,bnj->bcn", viewmats[..., 2, :3], gaussians.means) + viewmats[..., 2, 3, None]
    behind = (z <= near_plane).detach()  # [B, C, N]
    if behind.any():
        on_axis = (c2w[..., :3, 3] + c2w[..., :3, 2]).detach()  # [B, C, 3], depth 1 in each camera
        means = torch.where(behind[..., None], on_axis[:, :, None], gaussians.means[:, None])
        radii, means2d, depths, conics, _ = _fully_fused_projection(
            means.reshape(b * c, n, 3),
            covars[:, None].expand(b, c, n, 3, 3).reshape(b * c, n, 3, 3),
            viewmats.reshape(b * c, 1, 4, 4),
            Ks.reshape(b * c, 1, 3, 3),
            width,
            height,
            eps2d=eps2d,
            near_plane=near_plane,
            far_plane=far_plane,
        )  # [B * C, 1, N, ...]
        radii = torch.where(behind.reshape(b * c, 1, n, 1), 0, radii)
        depths = torch.where(behind.reshape(b * c, 1, n), z.reshape(b * c, 1, n), depths)
    else:
        radii, means2d, depths, conics, _ = _fully_fused_projection(
            gaussians.means,
            covars,
            viewmats,
            Ks,
            width,
            height,
            eps2d=eps2d,
            near_plane=near_plane,
            far_plane=far_plane,
        )  # [B, C, N, ...]
    if gaussians.sh_degree is None:
        colors = gaussians.colors[:, None].expand(b, c, n, 3)
    else:
        campos = c2w[..., :3, 3]  # [B, C, 3]
        dirs = gaussians.means[:, None] - campos[:, :, None]  # [B, C, N, 3]
        coeffs = gaussians.colors[:, None].expand(b, c, *gaussians.colors.shape[1:])
        colors = torch.clamp_min(_spherical_harmonics(gaussians.sh_degree, dirs, coeffs) + 0.5, 0.0)
    depths = depths.reshape(b, c, n)
    features = torch.cat([colors, depths[..., None]], dim=-1) if render_depth else colors
    opacities = gaussians.opacities[:, None].expand(b, c, n)
    return Splats(
        means2d=means2d.reshape(b * c, n, 2),
        conics=conics.reshape(b * c, n, 3),
        depths=depths.reshape(b * c, n),
        radii=radii.reshape(b * c, n, 2),
        opacities=opacities.reshape(b * c, n),
        features=features.reshape(b * c, n, features.shape[-1]),
    )
