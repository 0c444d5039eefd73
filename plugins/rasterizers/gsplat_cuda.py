"""``gsplat`` rasterizer: ``gsplat.rasterization`` (CUDA kernels), batched over cameras and the batch.

gsplat's wheel JIT-compiles CUDA on first use and fails confusingly (IndexError, missing .so) when handed
CPU tensors, so the device is checked before gsplat is even imported.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from lca.contracts.rasterizer import Rasterizer, RasterizerConfig, RenderOutput
from lca.gaussians import Gaussians
from lca.rasterization.inputs import RenderInputs, make_output, prepare_inputs


class GsplatRasterizerConfig(RasterizerConfig):
    tile_size: int = Field(16, ge=1)
    """gsplat tile edge in pixels."""
    packed: bool = False
    """gsplat's packed mode (less memory for many cameras, same images)."""


class GsplatRasterizer(Rasterizer):
    """gsplat 1.5.x CUDA rasterization behind the toolkit's rasterizer contract."""

    Config: ClassVar[type[GsplatRasterizerConfig]] = GsplatRasterizerConfig

    def __init__(self, config: GsplatRasterizerConfig, **context: Any) -> None:
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
        if not gaussians.means.is_cuda:
            raise RuntimeError(
                f"rasterizer 'gsplat' needs CUDA tensors, but the Gaussians are on {gaussians.means.device}"
                f"{'' if torch.cuda.is_available() else ' and no CUDA device is available'}. "
                "Use the pure-PyTorch rasterizer instead (rasterizer=torch), which runs on any device."
            )
        inp = prepare_inputs(gaussians, viewmats, Ks, width, height, background)
        return gsplat_render(inp, width, height, render_depth, self.config)


def gsplat_render(
    inp: RenderInputs, width: int, height: int, render_depth: bool, config: GsplatRasterizerConfig
) -> RenderOutput:
    """Checked, batched inputs -> one ``gsplat.rasterization`` call -> the contract's output. Apart from
    :meth:`GsplatRasterizer.forward`'s device check, so that the CPU tests can check this call against
    gsplat's real signature and input rules with a stand-in for its CUDA kernels."""
    import gsplat  # lazy: importing is cheap but its CUDA build must never be triggered on CPU

    g = inp.gaussians
    # backgrounds stay [B, C, 3]: with "RGB+D" gsplat itself appends the zero depth background channel
    colors, alphas, _ = gsplat.rasterization(
        g.means,
        g.quats,
        g.scales,
        g.opacities,
        g.colors,
        inp.viewmats,
        inp.Ks,
        width,
        height,
        near_plane=config.near_plane,
        far_plane=config.far_plane,
        eps2d=config.eps2d,
        sh_degree=g.sh_degree,
        packed=config.packed,
        tile_size=config.tile_size,
        backgrounds=inp.background,
        render_mode="RGB+D" if render_depth else "RGB",
    )  # [B, C, H, W, 3 (+1)], [B, C, H, W, 1]
    depth = colors[..., 3:4] if render_depth else None
    return make_output(colors[..., :3], alphas, depth, inp.unbatched)
