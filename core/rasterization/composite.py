"""Tile compositing with gsplat 1.5.3 kernel semantics, in bounded memory.

Model (``rasterize_to_pixels_fwd``): for pixel centre ``p = (u + 0.5, v + 0.5)`` and a splat with mean ``m``,
conic ``(a, b, c)``, ``d = m - p``, ``sigma = 0.5 (a dx^2 + c dy^2) + b dx dy``,
``alpha = min(0.999, o exp(-sigma))``; splats with ``sigma < 0`` or ``alpha < 1/255`` are skipped; front to
back, ``w_i = alpha_i T_i`` until ``T_i (1 - alpha_i) <= 1e-4``, where compositing stops before adding ``i``.

Memory: work items are (tile, up to ``S`` consecutive splats of its list), grouped into chunks of at most
``chunk_pairs`` (pixel, splat) pairs, padded to the longest item of the chunk (items are sorted by length so
padding is small). The forward pass runs without autograd and keeps only the per-pixel transmittance at the
start of each continuation segment. The backward pass recomputes each chunk with autograd (as gsplat's
kernels recompute alphas) and scatters the gradients, so peak memory is ``O(chunk_pairs + pixels + I N)``
whatever the number of Gaussians per pixel. Segments of one tile are chained through their transmittance:
forward in list order, backward in reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lca.rasterization.tiles import TileLists

ALPHA_MAX = 0.999
ALPHA_MIN = 1.0 / 255.0
T_MIN = 1e-4
DEFAULT_CHUNK_PAIRS = 1 << 18
"""Default bound on (pixel, Gaussian) pairs per chunk (docs/rendering.md: 2^22 was 1.6x slower, from page
faults; the ``torch`` plugin's config repeats the literal, which ``lca registry show`` reads from source)."""


@dataclass
class _Item:
    """A chunk of work: ``k`` segments (rows) padded to ``L`` splats."""

    tiles: Tensor  # [k] global tile index (image * tiles_per_image + tile)
    gather: Tensor  # [k, L] index into the splat tables (the padding row for padding)
    has_t0: bool  # continuation segments start from a saved transmittance


def _plan(lists: TileLists, num_tiles: int, pixels: int, chunk_pairs: int, pad_row: int) -> list[list[_Item]]:
    """Split the tile lists into levels (segment 0 of every tile, segment 1, ...) of padded chunks."""
    seg_len = max(1, chunk_pairs // pixels)
    counts = torch.bincount(lists.tile_ids, minlength=num_tiles)
    offsets = torch.cumsum(counts, 0) - counts
    tiles_all = torch.nonzero(counts).squeeze(1)
    levels: list[list[_Item]] = []
    level = 0
    while True:
        remaining = counts[tiles_all] - level * seg_len
        sel = remaining > 0
        if not bool(sel.any()):
            return levels
        tiles = tiles_all[sel]
        lengths = remaining[sel].clamp(max=seg_len)
        lengths, order = torch.sort(lengths, descending=True, stable=True)
        tiles = tiles[order]
        starts = offsets[tiles] + level * seg_len
        chunks = []
        i, total = 0, tiles.numel()
        lengths_list = lengths.tolist()
        while i < total:
            pad = lengths_list[i]
            k = max(1, chunk_pairs // (pad * pixels))
            rows = slice(i, min(i + k, total))
            ar = torch.arange(pad, device=tiles.device)
            pos = starts[rows, None] + ar
            valid = ar < lengths[rows, None]
            gather = torch.where(valid, lists.flat_ids[pos.clamp(max=lists.flat_ids.numel() - 1)], pad_row)
            chunks.append(_Item(tiles=tiles[rows], gather=gather, has_t0=level > 0))
            i = rows.stop
        levels.append(chunks)
        level += 1


def _composite(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    features: Tensor,
    centre: Tensor,
    basis: Tensor,
    t0: Tensor | None,
    done0: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One chunk: ``means2d [k, L, 2]``, ``conics [k, L, 3]``, ``opacities [k, L]``, ``features [k, L, F]``,
    ``centre [k, 2]`` tile centres, ``basis [6, P]`` from :func:`_basis`; for continuation segments
    ``t0 [k, P]`` (transmittance so far) and ``done0 [k, P]`` (compositing already stopped), else None.
    Returns ``feat [k, P, F]``, ``T [k, P]`` and ``done [k, P]``."""
    # sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with d = m - p is a quadratic polynomial in the pixel offset
    # (u, v) from the tile centre, so all pixels of a tile come from one matrix product with the fixed basis
    # (1, u, v, u^2, v^2, uv): one GEMM instead of a dozen elementwise passes over [k, L, P]. Offsets are
    # taken from the tile centre to keep the terms small (float32 cancellation stays ~1e-6 in sigma).
    mx, my = (means2d - centre[:, None]).unbind(-1)  # [k, L]
    a, b, c = conics.unbind(-1)
    coeffs = torch.stack(
        [
            0.5 * a * mx * mx + b * mx * my + 0.5 * c * my * my,
            -(a * mx + b * my),
            -(c * my + b * mx),
            0.5 * a,
            0.5 * c,
            b,
        ],
        dim=-1,
    )  # [k, L, 6]
    sigma = coeffs @ basis  # [k, L, P]
    alpha = torch.clamp(opacities[..., None] * torch.exp(-sigma), max=ALPHA_MAX)
    alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_MIN), alpha, 0.0)
    one_minus = 1.0 - alpha
    t_incl = torch.cumprod(one_minus, dim=1)
    if t0 is not None:
        t_incl = t_incl * t0[:, None]
    # The stop rule keeps a prefix of each pixel's list (T only decreases), so the transmittance before an
    # included splat is the unmasked one: no second cumulative product is needed.
    keep = (t_incl > T_MIN).detach()
    if done0 is not None:
        keep &= ~done0[:, None]
    done = (t_incl[:, -1] <= T_MIN).detach() if done0 is None else done0 | (t_incl[:, -1] <= T_MIN).detach()
    weights = torch.where(keep, alpha * (t_incl / one_minus), 0.0)  # [k, L, P]
    feat = torch.bmm(weights.transpose(1, 2), features)  # [k, P, F]
    start = 1.0 if t0 is None else t0
    return feat, start - weights.sum(1), done  # sum_i w_i = T_start - T_final (telescoping)


def _tile_centres(tiles: Tensor, tile_size: int, tiles_w: int, tiles_h: int, like: Tensor) -> Tensor:
    """``[k, 2]`` pixel coordinates of the centres of global tiles ``tiles [k]``."""
    t = tiles % (tiles_w * tiles_h)
    return (torch.stack([t % tiles_w, t // tiles_w], dim=1) * tile_size + tile_size / 2).to(like.dtype)


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, features, lists, num_images, tile_size, chunk_pairs):  # type: ignore[override]
        tiles_w, tiles_h = lists.tiles_w, lists.tiles_h
        num_tiles = num_images * tiles_w * tiles_h
        pixels = tile_size * tile_size
        tables = _padded_tables(means2d, conics, opacities, features)
        levels = _plan(lists, num_tiles, pixels, chunk_pairs, pad_row=means2d.shape[0])
        basis = _basis(tile_size, means2d)
        out_feat = means2d.new_zeros(num_tiles, pixels, features.shape[-1])
        out_t = means2d.new_ones(num_tiles, pixels)
        out_done = torch.zeros(num_tiles, pixels, dtype=torch.bool, device=means2d.device)
        saved_t0 = []  # (T, done) entering each continuation level: per pixel, cheap
        for chunks in levels:
            saved_t0.append((out_t.clone(), out_done.clone()) if chunks[0].has_t0 else None)
            for item in chunks:
                centre = _tile_centres(item.tiles, tile_size, tiles_w, tiles_h, means2d)
                t0, done0 = (out_t[item.tiles], out_done[item.tiles]) if item.has_t0 else (None, None)
                feat, t, done = _composite(*(tab[item.gather] for tab in tables), centre, basis, t0, done0)
                out_feat.index_add_(0, item.tiles, feat)
                out_t[item.tiles] = t
                out_done[item.tiles] = done
        ctx.save_for_backward(means2d, conics, opacities, features)
        ctx.levels, ctx.saved_t0 = levels, saved_t0
        ctx.geometry = (tile_size, tiles_w, tiles_h)
        return out_feat, out_t

    @staticmethod
    def backward(ctx, grad_feat, grad_t):  # type: ignore[override]
        means2d, conics, opacities, features = ctx.saved_tensors
        tile_size, tiles_w, tiles_h = ctx.geometry
        tables = _padded_tables(means2d, conics, opacities, features)
        grads = [torch.zeros_like(tab) for tab in tables]
        basis = _basis(tile_size, means2d)
        grad_t = grad_t.clone()
        with torch.enable_grad():
            for chunks, t0_all in zip(reversed(ctx.levels), reversed(ctx.saved_t0), strict=True):
                for item in chunks:
                    centre = _tile_centres(item.tiles, tile_size, tiles_w, tiles_h, means2d)
                    inputs = [tab[item.gather].requires_grad_(True) for tab in tables]
                    t0, done0 = None, None
                    if t0_all is not None:
                        t0, done0 = t0_all[0][item.tiles].requires_grad_(True), t0_all[1][item.tiles]
                    feat, t, _ = _composite(*inputs, centre, basis, t0, done0)
                    wrt = inputs + ([t0] if t0 is not None else [])
                    g = torch.autograd.grad((feat, t), wrt, (grad_feat[item.tiles], grad_t[item.tiles]))
                    for acc, gi in zip(grads, g[:4], strict=True):
                        acc.index_add_(0, item.gather.reshape(-1), gi.reshape(-1, *gi.shape[2:]))
                    if t0 is not None:
                        grad_t[item.tiles] = g[4]  # d loss / d (T leaving the previous segment)
        return (*(gr[:-1] for gr in grads), None, None, None, None)


def _padded_tables(means2d: Tensor, conics: Tensor, opacities: Tensor, features: Tensor) -> list[Tensor]:
    """The splat tables plus one padding row (opacity 0, so it never contributes)."""
    return [torch.cat([t, t.new_zeros(1, *t.shape[1:])]) for t in (means2d, conics, opacities, features)]


def _basis(tile_size: int, like: Tensor) -> Tensor:
    """``[6, P]`` monomials ``(1, u, v, u^2, v^2, uv)`` of the pixel-centre offsets (+0.5 convention) from
    the tile centre, pixels row-major."""
    ar = torch.arange(tile_size, device=like.device, dtype=like.dtype) + 0.5 - tile_size / 2
    u, v = ar.repeat(tile_size), ar.repeat_interleave(tile_size)
    return torch.stack([torch.ones_like(u), u, v, u * u, v * v, u * v])


def composite(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    features: Tensor,
    lists: TileLists,
    width: int,
    height: int,
    tile_size: int = 8,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> tuple[Tensor, Tensor]:
    """Composite the splats of ``I`` images.

    Inputs: ``means2d [I, N, 2]``, ``conics [I, N, 3]``, ``opacities [I, N]``, ``features [I, N, F]`` and
    ``lists`` from :func:`lca.rasterization.tiles.intersect_tiles` (same ``tile_size``).
    Returns ``features [I, H, W, F]`` (``sum_i w_i f_i``, no background) and the final transmittance
    ``T [I, H, W]``; both differentiable w.r.t. the four inputs.
    """
    num_images, n = opacities.shape
    feat, t = _Composite.apply(
        means2d.reshape(num_images * n, 2),
        conics.reshape(num_images * n, 3),
        opacities.reshape(num_images * n),
        features.reshape(num_images * n, features.shape[-1]),
        lists,
        num_images,
        tile_size,
        chunk_pairs,
    )
    th, tw = lists.tiles_h, lists.tiles_w

    def to_image(x: Tensor) -> Tensor:  # [I*th*tw, P, F] -> [I, H, W, F]
        x = x.reshape(num_images, th, tw, tile_size, tile_size, -1).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(num_images, th * tile_size, tw * tile_size, -1)[:, :height, :width]

    return to_image(feat), to_image(t[..., None])[..., 0]
