"""The ``decoder`` kind: per-anchor features -> Gaussians (canonical branch) and their per-frame
corrections from the drivers' embeddings (correction branch).

Context passed at construction: ``dim`` (int), the feature width ``C``; ``driver_dim`` (int), the width
``D`` of the concatenated driver embeddings (0 when no driver is active).

Shapes: ``features [B, N, C]`` (one per template anchor), ``driving [B, M, D]`` (one per target frame).
Canonical Gaussians are :class:`AnchorGaussians` with leading ``[B, N, K]`` (``K`` Gaussians per anchor,
placed relative to their anchor in the canonical pose); corrections are :class:`GaussianCorrection` with
leading ``[B, M, N, K]``. :func:`apply_correction` combines them into driven canonical-space Gaussians
``[B, M, N, K]``; skinning to the target pose comes after, outside the decoder. Opacity is never corrected.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from lca.gaussians import Gaussians
from lca.rotations import quat_multiply


@dataclass
class AnchorGaussians:
    """``K`` Gaussians per anchor, with activated values (leading dims ``[..., N, K]``):

    ``offsets [..., N, K, 3]`` metres from the anchor; ``quats [..., N, K, 4]`` unit wxyz;
    ``scales [..., N, K, 3]`` metres (> 0); ``opacities [..., N, K]`` in [0, 1];
    ``colors [..., N, K, 3]`` RGB in [0, 1].
    """

    offsets: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    colors: Tensor

    def to_gaussians(self, anchors: Tensor) -> Gaussians:
        """Absolute means ``anchor + offset`` and the ``N * K`` Gaussians flattened (anchor-major):
        ``anchors [B, N, 3]`` -> :class:`lca.gaussians.Gaussians` with batch dims ``[B]`` or ``[B, M]``."""
        b, n = anchors.shape[:2]
        extra = self.offsets.dim() - 4  # 0 for canonical [B, N, K, 3], 1 for driven [B, M, N, K, 3]
        means = anchors.reshape(b, *([1] * extra), n, 1, 3) + self.offsets
        return Gaussians(
            means=means.flatten(-3, -2),
            quats=self.quats.flatten(-3, -2),
            scales=self.scales.flatten(-3, -2),
            opacities=self.opacities.flatten(-2, -1),
            colors=self.colors.flatten(-3, -2),
        )


@dataclass
class GaussianCorrection:
    """Per-frame corrections (leading dims ``[B, M, N, K]``); all zero / identity means "no correction":

    ``offsets [..., 3]`` metres added to the canonical offsets; ``rotations [..., 4]`` unit wxyz quaternion
    applied after the canonical rotation; ``log_scales [..., 3]`` added to the log of the canonical scales;
    ``colors [..., 3]`` added to the canonical colours (result clamped to [0, 1]).
    """

    offsets: Tensor
    rotations: Tensor
    log_scales: Tensor
    colors: Tensor


def apply_correction(canonical: AnchorGaussians, correction: GaussianCorrection) -> AnchorGaussians:
    """Canonical ``[B, N, K]`` + correction ``[B, M, N, K]`` -> driven canonical-space Gaussians
    ``[B, M, N, K]``: ``offsets + d``, ``q_delta * q`` (Hamilton product, wxyz), ``scales * exp(d)``,
    ``clamp(colors + d, 0, 1)``; opacities are the canonical ones, broadcast over ``M``.
    """
    m = correction.offsets.shape[1]
    return AnchorGaussians(
        offsets=canonical.offsets[:, None] + correction.offsets,
        quats=quat_multiply(correction.rotations, canonical.quats[:, None]),
        scales=canonical.scales[:, None] * correction.log_scales.exp(),
        opacities=canonical.opacities[:, None].expand(-1, m, -1, -1),
        colors=(canonical.colors[:, None] + correction.colors).clamp(0.0, 1.0),
    )


class Decoder(nn.Module, ABC):
    """Two branches over the same anchor features; see the module doc for shapes."""

    test_config: ClassVar[dict[str, Any]] = {}
    """Params of a small, fast build for the conformance checks (:mod:`lca.testing`), set per component."""

    @property
    @abstractmethod
    def num_gaussians(self) -> int:
        """``K``, Gaussians per anchor."""

    @abstractmethod
    def canonical(self, features: Tensor) -> AnchorGaussians:
        """``features [B, N, C]`` -> canonical Gaussians ``[B, N, K]``."""

    @abstractmethod
    def correction(self, features: Tensor, driving: Tensor) -> GaussianCorrection:
        """``features [B, N, C]``, ``driving [B, M, D]`` -> corrections ``[B, M, N, K]``."""

    def forward(self, features: Tensor, driving: Tensor) -> tuple[AnchorGaussians, AnchorGaussians]:
        """Both branches: ``(canonical [B, N, K], driven [B, M, N, K])``."""
        canonical = self.canonical(features)
        return canonical, apply_correction(canonical, self.correction(features, driving))
