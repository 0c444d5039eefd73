"""Per-view camera embedding of image tokens: the Plücker ray through each patch's centre.

An image token of the encoder knows what its patch shows, not from where. Feed-forward reconstruction
models that condition on posed images (e.g. LVSM, GS-LRM) tell the network by adding each pixel's camera
ray in Plücker coordinates ``(d, o x d)``: the unit direction ``d`` and the moment about the origin of the
ray through the camera centre ``o``. A ray's Plücker coordinates do not depend on the point chosen on it, so
the embedding says which line of 3D space a patch sees, and nothing about pixel indices.

The rays are expressed in the canonical frame of the reference frame's body root (the template's root joint
transform taken back), the frame the anchors live in: the same camera relative to the body gives the same
embedding whatever the person's global orientation and translation. One ray per patch, through its centre
(patch ``(i, j)`` of an ``h x w`` grid over an ``H x W`` image is centred on pixel
``((j + 0.5) W / w, (i + 0.5) H / h)``, pixel conventions of :mod:`lca.cameras`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lca.cameras import camera_centers
from lca.contracts.template import Template, TemplateParams


def patch_centers(grid: tuple[int, int], size: tuple[int, int], device: torch.device | None = None) -> Tensor:
    """Pixel coordinates ``[h * w, 2]`` (``u, v``, row-major like the encoder's tokens) of the centres of an
    ``h x w`` patch grid spanning an image of ``size (H, W)``."""
    (rows, cols), (height, width) = grid, size
    v = (torch.arange(rows, device=device, dtype=torch.float32) + 0.5) * (height / rows)
    u = (torch.arange(cols, device=device, dtype=torch.float32) + 0.5) * (width / cols)
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu, vv], dim=-1).reshape(-1, 2)


def plucker_rays(viewmats: Tensor, Ks: Tensor, pixels: Tensor) -> Tensor:
    """Plücker coordinates of the rays through ``pixels [P, 2]`` of cameras ``viewmats [..., 4, 4]``
    (world-to-camera, OpenCV), ``Ks [..., 3, 3]`` -> ``[..., P, 6]``: unit world direction ``d``, then the
    moment ``o x d`` with ``o`` the camera centre."""
    ones = torch.ones_like(pixels[:, :1])
    homogeneous = torch.cat([pixels, ones], dim=-1).to(Ks.dtype)  # [P, 3]
    in_camera = homogeneous @ torch.linalg.inv(Ks).transpose(-1, -2)  # [..., P, 3]
    rotation = viewmats[..., :3, :3]
    directions = F.normalize(in_camera @ rotation, dim=-1)  # R^T d_c, as rows
    centers = camera_centers(viewmats)  # [..., 3]
    moments = torch.cross(centers[..., None, :].expand_as(directions), directions, dim=-1)
    return torch.cat([directions, moments], dim=-1)


def body_frame_viewmats(template: Template, params: TemplateParams, viewmats: Tensor) -> Tensor:
    """Cameras ``viewmats [B, V, 4, 4]`` taken into the canonical frame of each view's body root (``params``
    with batch dims ``[B, V]``): ``viewmat @ root``, with ``root`` the template's root joint transform from
    canonical to posed space, so the result maps canonical points to the camera."""
    root = template.joint_transforms(params.flatten())[:, 0]  # [B*V, 4, 4]
    return viewmats @ root.reshape(viewmats.shape).to(viewmats.dtype)


class PluckerEmbedding(nn.Module):
    """``[B, V, P, 6]`` body-frame Plücker rays of the patch centres -> ``[B, V, P, width]``, added to the
    projected image tokens. Linear and zero-initialised without drawing random numbers, so a model with the
    embedding switched on starts exactly where the same seed's model without it starts."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(width, 6))
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(
        self,
        template: Template,
        params: TemplateParams,
        viewmats: Tensor,
        Ks: Tensor,
        grid: tuple[int, int],
        size: tuple[int, int],
    ) -> Tensor:
        """The embedding of every patch of every reference view (cameras ``[B, V]``, ``params`` ``[B, V]``,
        ``size (H, W)`` of the reference images the intrinsics refer to)."""
        pixels = patch_centers(grid, size, viewmats.device)
        rays = plucker_rays(body_frame_viewmats(template, params, viewmats), Ks, pixels)
        return F.linear(rays.to(self.weight.dtype), self.weight, self.bias)
