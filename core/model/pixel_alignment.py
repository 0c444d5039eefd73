"""Where each anchor lands in each reference view, and whether it is seen there: the geometry of
pixel-aligned anchor tokens, as pure functions (nothing here is learned).

A reference view shows the person in that frame's pose, so the anchors are posed with the template
(:func:`posed_anchors`), projected with the view's camera (:func:`lca.cameras.project_points`), and
weighted by :func:`view_weights`: zero outside the image, behind the camera, for padded views, and where
the posed body hides the anchor (a depth test against the posed template mesh, :func:`hidden`); otherwise
the cosine between the anchor's normal and the direction to the camera, so grazing views count little.
:func:`sample_views` then reads a map (image features, colours) at the projections, bilinearly.

Pixel coordinates follow :mod:`lca.cameras`: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, which is
``grid_sample``'s ``align_corners=False``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lca.cameras import camera_centers, project_points
from lca.contracts.template import Template, TemplateParams
from lca.mesh import vertex_normals


def posed_anchors(template: Template, params: TemplateParams) -> tuple[Tensor, Tensor, Tensor]:
    """The template posed by ``params`` (batch dims ``[B]``): its vertices ``[B, Vtx, 3]``, and the anchors'
    positions and unit normals ``[B, N, 3]`` on that posed surface (barycentric on their faces), so that the
    anchors and the mesh they are depth-tested against are the same surface."""
    vertices = template.pose_vertices(params)
    normals = vertex_normals(vertices, template.faces)
    corners = template.faces[template.anchor_face_idx]  # [N, 3]
    bary = template.anchor_bary.to(vertices.dtype)[None, :, :, None]  # [1, N, 3, 1]
    anchors = (vertices[:, corners] * bary).sum(-2)
    anchor_normals = F.normalize((normals[:, corners] * bary).sum(-2), dim=-1)
    return vertices, anchors, anchor_normals


def hidden(
    uv: Tensor,
    depth: Tensor,
    occluder_uv: Tensor,
    occluder_depth: Tensor,
    size: tuple[int, int],
    cell: float,
    tolerance: float,
) -> Tensor:
    """Depth test of points against a surface given as points (e.g. the posed mesh's vertices).

    ``uv [B, N, 2]`` pixels and ``depth [B, N]`` of the points tested; ``occluder_uv [B, M, 2]``,
    ``occluder_depth [B, M]`` of the surface; ``size (H, W)``. The surface's nearest depth is kept per cell
    of ``cell`` pixels (a z-buffer of its points, coarse enough that the points leave no holes); a point is
    hidden when it lies more than ``tolerance`` (metres) behind its cell's nearest surface. Points off the
    image or behind the camera are not hidden by this test (other weights drop them). -> bool ``[B, N]``."""
    height, width = size
    rows, cols = max(1, int(-(-height // cell))), max(1, int(-(-width // cell)))

    def cells(points: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        col = torch.floor(points[..., 0] / cell).long()
        row = torch.floor(points[..., 1] / cell).long()
        inside = (z > 0) & (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
        return (row.clamp(0, rows - 1) * cols + col.clamp(0, cols - 1)), inside

    batch = uv.shape[0]
    index, inside = cells(occluder_uv, occluder_depth)
    far = torch.full((batch, rows * cols), torch.inf, dtype=depth.dtype, device=depth.device)
    nearest = far.scatter_reduce(
        1, index, torch.where(inside, occluder_depth, torch.inf), reduce="amin", include_self=True
    )
    point_cell, point_inside = cells(uv, depth)
    return point_inside & (depth > nearest.gather(1, point_cell) + tolerance)


def view_weights(
    template: Template,
    params: TemplateParams,
    viewmats: Tensor,
    Ks: Tensor,
    size: tuple[int, int],
    valid: Tensor,
    cell: float = 2.0,
    tolerance: float = 0.05,
) -> tuple[Tensor, Tensor]:
    """Projections and weights of every anchor in every view, for ``B'`` views flattened into the batch.

    ``params`` (batch ``[B']``) poses the template for each view's frame; ``viewmats [B', 4, 4]``,
    ``Ks [B', 3, 3]`` its camera; ``size (H, W)`` its image; ``valid [B']`` bool. Returns ``uv [B', N, 2]``
    (pixels) and ``weights [B', N]`` in [0, 1]: ``valid * in image * in front * not hidden * max(0, cos)``,
    with ``cos`` between the anchor's normal and the direction to the camera."""
    vertices, anchors, normals = posed_anchors(template, params)
    uv, depth = project_points(anchors, viewmats[:, None], Ks[:, None])
    uv, depth = uv[:, 0], depth[:, 0]
    vertex_uv, vertex_depth = project_points(vertices, viewmats[:, None], Ks[:, None])
    occluded = hidden(uv, depth, vertex_uv[:, 0], vertex_depth[:, 0], size, cell, tolerance)
    height, width = size
    in_image = (uv[..., 0] >= 0) & (uv[..., 0] < width) & (uv[..., 1] >= 0) & (uv[..., 1] < height)
    to_camera = F.normalize(camera_centers(viewmats)[:, None] - anchors, dim=-1)
    facing = (normals * to_camera).sum(-1).clamp(min=0)
    keep = valid[:, None] & in_image & (depth > 0) & ~occluded
    return uv, facing * keep.to(facing.dtype)


def sample_views(maps: Tensor, uv: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear samples of ``maps [B', C, h, w]`` (spanning an ``H x W`` image, ``size (H, W)``) at pixels
    ``uv [B', N, 2]`` of that image -> ``[B', N, C]``; differentiable with respect to ``maps``."""
    height, width = size
    grid = torch.stack([2 * uv[..., 0] / width - 1, 2 * uv[..., 1] / height - 1], dim=-1)
    sampled = F.grid_sample(
        maps, grid[:, :, None], mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled[..., 0].transpose(1, 2)


def aggregate(values: Tensor, weights: Tensor, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Weighted mean over views: ``values [B, V, N, C]``, ``weights [B, V, N]`` -> ``([B, N, C], [B, N])``
    the mean (0 where no view sees the anchor) and the total weight (how well the anchor is seen)."""
    total = weights.sum(1)
    mean = (values * weights[..., None]).sum(1) / total.clamp(min=eps)[..., None]
    return mean, total


def spread_colors(
    colors: Tensor, confidence: Tensor, anchors: Tensor, radius: float, groups: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Colours of anchors that no reference sees, spread from the seen ones nearby on the canonical body.

    ``colors [B, N, 3]`` and ``confidence [B, N]`` in [0, 1] (how well each anchor is seen), ``anchors [B, N,
    3]`` canonical positions (metres), ``radius`` the spread's reach (a Gaussian kernel of that standard
    deviation), ``groups [B, N]`` optional labels (e.g. body parts) across which nothing spreads. With
    ``k_ij = exp(-|a_i - a_j|^2 / (2 radius^2)) [g_i = g_j]``:

    - ``spread_i = sum_j k_ij c_j s_j / sum_j k_ij s_j``, the seen neighbours' colour;
    - ``seen_i = sum_j k_ij s_j / sum_j k_ij``, how much of the neighbourhood is seen;

    returned as ``color_i = s_i c_i + (1 - s_i) spread_i`` and ``confidence_i = s_i + (1 - s_i) seen_i``, so
    a seen anchor keeps its own colour and one in an unseen patch takes its surroundings', with the
    confidence of how much of them is seen. Dense ``[B, N, N]`` kernels: meant for the thousands of anchors
    of CPU-sized templates, not the paper's 40k (written here because it is four lines of closed form)."""
    kernel = torch.exp(-torch.cdist(anchors, anchors).square() / (2 * radius**2))
    if groups is not None:
        kernel = kernel * (groups[:, :, None] == groups[:, None, :]).to(kernel.dtype)
    weights = kernel * confidence[:, None, :]
    total = weights.sum(-1)
    spread = (weights @ colors) / total.clamp(min=1e-8)[..., None]
    seen = total / kernel.sum(-1).clamp(min=1e-8)
    s = confidence[..., None]
    return s * colors + (1 - s) * spread, confidence + (1 - confidence) * seen
