"""Input checks and batch handling shared by every rasterizer implementation (see the contract)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from lca.contracts.rasterizer import RenderOutput
from lca.gaussians import Gaussians


@dataclass
class RenderInputs:
    gaussians: Gaussians  # [B, N, ...]
    viewmats: Tensor  # [B, C, 4, 4]
    Ks: Tensor  # [B, C, 3, 3]
    background: Tensor | None  # [B, C, 3]
    unbatched: bool  # the caller passed [N, ...] Gaussians and [C, ...] cameras


def prepare_inputs(
    gaussians: Gaussians, viewmats: Tensor, Ks: Tensor, width: int, height: int, background: Tensor | None
) -> RenderInputs:
    """Validate shapes (precise messages) and bring everything to the batched form."""
    nb = len(gaussians.batch_shape)
    if nb not in (0, 1):
        raise ValueError(
            f"rasterizer: Gaussians must have batch shape [B] or none, got {list(gaussians.batch_shape)} "
            "(use Gaussians.reshape_batch(-1) and merge cameras accordingly)"
        )
    unbatched = nb == 0
    want = "[C, 4, 4]" if unbatched else "[B, C, 4, 4]"
    if viewmats.dim() != 3 + nb or viewmats.shape[-2:] != (4, 4):
        raise ValueError(
            f"rasterizer: viewmats must be {want} for these Gaussians, got {list(viewmats.shape)}"
        )
    if Ks.shape[:-2] != viewmats.shape[:-2] or Ks.shape[-2:] != (3, 3):
        raise ValueError(
            f"rasterizer: Ks must be {[*viewmats.shape[:-2], 3, 3]} to match viewmats "
            f"{list(viewmats.shape)}, got {list(Ks.shape)}"
        )
    if unbatched:
        gaussians, viewmats, Ks = gaussians.reshape_batch(1), viewmats[None], Ks[None]
    b, c = viewmats.shape[:2]
    if gaussians.batch_shape[0] != b:
        raise ValueError(
            f"rasterizer: Gaussians have batch {gaussians.batch_shape[0]} but viewmats have batch {b} "
            f"(viewmats {list(viewmats.shape)})"
        )
    if width <= 0 or height <= 0:
        raise ValueError(f"rasterizer: width and height must be positive, got {width}x{height}")
    for name, t in (("viewmats", viewmats), ("Ks", Ks)):
        if t.device != gaussians.device:
            raise ValueError(f"rasterizer: {name} on {t.device} but Gaussians on {gaussians.device}")
    if background is not None:
        if background.shape == (3,):
            background = background.expand(b, c, 3)
        elif unbatched and background.shape == (c, 3):
            background = background[None]
        elif background.shape != (b, c, 3):
            raise ValueError(
                f"rasterizer: background must be [3] or {[b, c, 3] if not unbatched else [c, 3]}, "
                f"got {list(background.shape)}"
            )
    return RenderInputs(gaussians, viewmats, Ks, background, unbatched)


def make_output(color: Tensor, alpha: Tensor, depth: Tensor | None, unbatched: bool) -> RenderOutput:
    """``color [B, C, H, W, 3]``, ``alpha``/``depth [B, C, H, W, 1]`` -> channel-first output."""

    def cf(x: Tensor) -> Tensor:
        x = x.permute(0, 1, 4, 2, 3)
        return x[0] if unbatched else x

    return RenderOutput(color=cf(color), alpha=cf(alpha), depth=None if depth is None else cf(depth))
