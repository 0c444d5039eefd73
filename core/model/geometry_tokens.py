"""Geometry tokens: one token per template anchor from its canonical position (and body-part label)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def fourier_features(x: Tensor, num_frequencies: int) -> Tensor:
    """``x [..., D]`` -> ``[..., D + 2 * D * F]``: ``x`` then ``sin`` and ``cos`` of ``2^k * pi * x``, k < F.

    The NeRF / LHM ``PointEmbed`` basis: with coordinates in metres (|x| < ~1), frequency 2^0*pi resolves the
    whole body and 2^(F-1)*pi resolves about ``1 / 2^(F-1)`` m.
    """
    freqs = (2.0 ** torch.arange(num_frequencies, dtype=x.dtype, device=x.device)) * math.pi
    angles = (x[..., :, None] * freqs).flatten(-2)  # [..., D*F]
    return torch.cat([x, angles.sin(), angles.cos()], dim=-1)


class GeometryTokens(nn.Module):
    """Anchors ``[B, N, 3]`` (metres, canonical pose) and optional part labels ``[B, N]`` -> ``[B, N, dim]``.

    ``Linear(fourier(xyz)) -> LayerNorm``, plus a learned embedding of the body-part label when
    ``num_parts > 0`` (added before the norm, so parts with the same position still differ).
    """

    def __init__(self, dim: int, num_frequencies: int = 8, num_parts: int = 0) -> None:
        super().__init__()
        self.num_frequencies = num_frequencies
        self.num_parts = num_parts
        self.proj = nn.Linear(3 * (1 + 2 * num_frequencies), dim)
        self.part_embed = nn.Embedding(num_parts, dim) if num_parts > 0 else None
        self.norm = nn.LayerNorm(dim)

    def forward(self, anchors: Tensor, part_labels: Tensor | None = None) -> Tensor:
        if anchors.dim() != 3 or anchors.shape[-1] != 3:
            raise ValueError(f"GeometryTokens: anchors must be [B, N, 3]; got {tuple(anchors.shape)}")
        x = self.proj(fourier_features(anchors, self.num_frequencies))
        if self.part_embed is not None:
            if part_labels is None or part_labels.shape != anchors.shape[:2]:
                got = None if part_labels is None else tuple(part_labels.shape)
                raise ValueError(
                    f"GeometryTokens: built with num_parts={self.num_parts}, so part_labels "
                    f"[{anchors.shape[0]}, {anchors.shape[1]}] (int) are required; got {got}"
                )
            x = x + self.part_embed(part_labels.long())
        return self.norm(x)
