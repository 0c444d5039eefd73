"""Contract of the ``rasterizer`` kind: Gaussians + cameras -> images, differentiably.

Context passed at construction: none (``cls(config)``); a rasterizer is configured only by its own config.

Shapes (``B`` batch, ``C`` cameras per batch element, ``N`` Gaussians, images channel-first as everywhere in
the toolkit, see docs/architecture.md):

- ``gaussians``: :class:`lca.gaussians.Gaussians` with batch dims ``[B]`` (``means [B, N, 3]`` ...), or
  unbatched (``means [N, 3]``) together with unbatched cameras ``viewmats [C, 4, 4]``, ``Ks [C, 3, 3]``;
  the outputs then drop ``B`` too (``color [C, 3, H, W]``).
- ``viewmats``: ``[B, C, 4, 4]`` world-to-camera, OpenCV (x right, y down, z forward), metres.
- ``Ks``: ``[B, C, 3, 3]`` pinhole intrinsics in pixels; pixel ``(u, v)`` has its centre at
  ``(u + 0.5, v + 0.5)``.
- ``background``: ``None`` (black), ``[3]`` (shared) or ``[B, C, 3]``; composited as ``color + T_final * bg``.
- ``render_depth``: also return the depth channel (see :class:`RenderOutput`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from lca.component import ComponentConfig
from lca.gaussians import Gaussians


class RasterizerConfig(ComponentConfig):
    """Fields every rasterizer shares: the projection model of gsplat 1.5.3."""

    near_plane: float = Field(0.01, gt=0)
    """Gaussians with camera depth at or below this (metres) are culled."""
    far_plane: float = Field(1e10, gt=0)
    """Gaussians with camera depth at or beyond this (metres) are culled."""
    eps2d: float = Field(0.3, ge=0)
    """Low-pass dilation added to the 2D covariance diagonal (pixels^2), as gsplat."""


@dataclass
class RenderOutput:
    """What a rasterizer returns (all differentiable w.r.t. the Gaussians).

    - ``color`` ``[B, C, 3, H, W]``: composited RGB including the background.
    - ``alpha`` ``[B, C, 1, H, W]``: accumulated opacity, ``1 - T_final``.
    - ``depth`` ``[B, C, 1, H, W]`` or ``None``: ``sum_i w_i z_i`` with the compositing weights ``w_i`` and
      camera-space depths ``z_i`` (gsplat's "RGB+D" channel). It is *not* normalised by alpha: divide by
      ``alpha`` for the expected depth of covered pixels.
    """

    color: Tensor
    alpha: Tensor
    depth: Tensor | None = None


class Rasterizer(torch.nn.Module, ABC):
    """Draws Gaussians for a set of cameras. Implementations: ``torch`` (any device), ``gsplat`` (CUDA)."""

    test_config: ClassVar[dict[str, Any]] = {}
    """Params of a small, fast build for the conformance checks (:mod:`lca.testing`), set per component."""

    @abstractmethod
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
        """Render ``gaussians`` (``[B, N, ...]``) from ``viewmats [B, C, 4, 4]`` / ``Ks [B, C, 3, 3]`` into
        ``height x width`` images; see the module doc for every shape."""
