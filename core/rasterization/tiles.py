"""Vectorised Gaussian/tile intersection with gsplat's rule (replaces ``_isect_tiles``' Python loop).

A Gaussian touches tiles ``floor((m - r) / ts) <= t < ceil((m + r) / ts)`` per axis (clamped to the grid), as
in gsplat's ``isect_tiles``. The result lists, for every tile of every image, its Gaussians front to back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TileLists:
    """Per-tile depth-sorted Gaussian lists, concatenated (the CSR form of gsplat's isect arrays)."""

    tile_ids: Tensor
    """``[M]`` int64 ``image * tiles_h * tiles_w + ty * tiles_w + tx``, non-decreasing."""
    flat_ids: Tensor
    """``[M]`` int64 ``image * N + gaussian``, front to back inside each tile."""
    tiles_w: int
    tiles_h: int


@torch.no_grad()
def intersect_tiles(
    means2d: Tensor, radii: Tensor, depths: Tensor, tile_size: int, width: int, height: int
) -> TileLists:
    """``means2d [I, N, 2]``, ``radii [I, N, 2]`` (0 = culled), ``depths [I, N]`` -> :class:`TileLists`."""
    num_images, n = depths.shape
    tiles_w = (width + tile_size - 1) // tile_size
    tiles_h = (height + tile_size - 1) // tile_size
    device = means2d.device
    tile_m = means2d.detach() / tile_size
    tile_r = radii.to(means2d.dtype) / tile_size
    lo = torch.floor(tile_m - tile_r).long()
    hi = torch.ceil(tile_m + tile_r).long()
    lo[..., 0].clamp_(0, tiles_w), hi[..., 0].clamp_(0, tiles_w)
    lo[..., 1].clamp_(0, tiles_h), hi[..., 1].clamp_(0, tiles_h)
    extent = hi - lo  # [I, N, 2]
    count = extent.prod(-1) * (radii > 0).all(-1)  # [I, N]

    # Enumerate Gaussians front to back per image, so that a stable sort by tile keeps depth order.
    order = torch.argsort(depths.detach(), dim=1, stable=True)  # [I, N]
    flat = (order + torch.arange(num_images, device=device)[:, None] * n).reshape(-1)
    count = count.reshape(-1)[flat]
    keep = count > 0
    flat, count = flat[keep], count[keep]
    g = torch.repeat_interleave(torch.arange(flat.numel(), device=device), count)  # isect -> entry
    start = torch.cumsum(count, 0) - count
    local = torch.arange(g.numel(), device=device) - start[g]  # rank of the tile inside the Gaussian's box
    ids = flat[g]
    ext_x = extent.reshape(-1, 2)[ids, 0]
    tx = lo.reshape(-1, 2)[ids, 0] + local % ext_x
    ty = lo.reshape(-1, 2)[ids, 1] + local // ext_x
    image = ids // n
    tile_ids = (image * tiles_h + ty) * tiles_w + tx
    tile_ids, perm = torch.sort(tile_ids, stable=True)
    return TileLists(tile_ids=tile_ids, flat_ids=ids[perm], tiles_w=tiles_w, tiles_h=tiles_h)
