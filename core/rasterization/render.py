"""The whole pure-PyTorch rasterizer as one function: project -> tile lists -> composite -> background."""

from __future__ import annotations

from torch import Tensor

from lca.contracts.rasterizer import RenderOutput
from lca.gaussians import Gaussians
from lca.rasterization.composite import DEFAULT_CHUNK_PAIRS, composite
from lca.rasterization.inputs import make_output, prepare_inputs
from lca.rasterization.projection import project
from lca.rasterization.tiles import intersect_tiles


def rasterize(
    gaussians: Gaussians,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    background: Tensor | None = None,
    render_depth: bool = False,
    *,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    tile_size: int = 8,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> RenderOutput:
    """Render like ``gsplat.rasterization(..., packed=False, rasterize_mode="classic")`` on any device.

    Shapes follow :mod:`lca.contracts.rasterizer`. ``chunk_pairs`` bounds the (pixel, Gaussian) pairs
    held at once, hence peak memory (about 40 bytes per pair in the backward pass).
    """
    inp = prepare_inputs(gaussians, viewmats, Ks, width, height, background)
    b, c = inp.viewmats.shape[:2]
    splats = project(
        inp.gaussians,
        inp.viewmats,
        inp.Ks,
        width,
        height,
        near_plane=near_plane,
        far_plane=far_plane,
        eps2d=eps2d,
        render_depth=render_depth,
    )
    lists = intersect_tiles(splats.means2d, splats.radii, splats.depths, tile_size, width, height)
    feat, t_final = composite(
        splats.means2d,
        splats.conics,
        splats.opacities,
        splats.features,
        lists,
        width,
        height,
        tile_size=tile_size,
        chunk_pairs=chunk_pairs,
    )
    feat = feat.reshape(b, c, height, width, -1)
    t_final = t_final.reshape(b, c, height, width, 1)
    color = feat[..., :3]
    if inp.background is not None:
        color = color + t_final * inp.background[:, :, None, None, :]
    depth = feat[..., 3:4] if render_depth else None
    return make_output(color, 1.0 - t_final, depth, inp.unbatched)
