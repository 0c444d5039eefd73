"""Fourier features of coordinates (NeRF / LHM ``PointEmbed``): the position encoding of anchors and of gaze
directions."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def fourier_features(x: Tensor, num_frequencies: int) -> Tensor:
    """``x [..., D]`` -> ``[..., D + 2 * D * F]``: ``x`` then ``sin`` and ``cos`` of ``2^k * pi * x``, k < F.

    The NeRF / LHM ``PointEmbed`` basis: with coordinates in metres (|x| < ~1), frequency 2^0*pi resolves the
    whole body and 2^(F-1)*pi resolves about ``1 / 2^(F-1)`` m.
    """
    freqs = (2.0 ** torch.arange(num_frequencies, dtype=x.dtype, device=x.device)) * math.pi
    angles = (x[..., :, None] * freqs).flatten(-2)  # [..., D*F]
    return torch.cat([x, angles.sin(), angles.cos()], dim=-1)
