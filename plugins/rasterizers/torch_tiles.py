"""``torch`` rasterizer: pure PyTorch, any device, gsplat 1.5.3 semantics, memory bounded by chunking."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from lca.contracts.rasterizer import Rasterizer, RasterizerConfig, RenderOutput
from lca.gaussians import Gaussians
from lca.rasterization import rasterize


class TorchRasterizerConfig(RasterizerConfig):
    tile_size: int = Field(8, ge=1)
    """Tile edge in pixels; each tile composites only the Gaussians whose 3.33-sigma box touches it."""
    chunk_pairs: int = Field(262144, ge=1)
    """Most (pixel, Gaussian) pairs processed at once; bounds peak memory (about 40 bytes per pair)."""


class TorchRasterizer(Rasterizer):
    """Differentiable tile rasterizer in plain PyTorch (see :mod:`lca.rasterization`)."""

    Config: ClassVar[type[TorchRasterizerConfig]] = TorchRasterizerConfig

    def __init__(self, config: TorchRasterizerConfig, **context: Any) -> None:
        super().__init__()
        self.config = config

    def forward(
        self,
        gaussians: Gaussians,
        viewmats: Tensor,
        Ks: Tensor,
        width: int,
        height: int,
        background: Tensor | None = None,
        render_depth: bool = False,
    ) -> RenderOutput:
        cfg = self.config
        return rasterize(
            gaussians,
            viewmats,
            Ks,
            width,
            height,
            background,
            render_depth,
            near_plane=cfg.near_plane,
            far_plane=cfg.far_plane,
            eps2d=cfg.eps2d,
            tile_size=cfg.tile_size,
            chunk_pairs=cfg.chunk_pairs,
        )
