"""Global image context for the geometry stream: adaptive LayerNorm (AdaLN) from the mean image token.

LHM mean-pools its encoder tokens into one global embedding that modulates the point tokens' norms
(AdaLN-Zero in its MM-DiT blocks). Through attention alone, a geometry token first has to learn *where* the
person is in each view before it learns anything about them; the pooled token gives every anchor the
person's overall appearance from the first step, and attention then refines it per region.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def masked_mean_token(image_tokens: Tensor, view_mask: Tensor) -> Tensor:
    """Mean of ``image_tokens [B, V, P, C]`` over patches and real views (``view_mask [B, V]``):
    ``[B, C]``."""
    weights = view_mask.to(image_tokens.dtype)[:, :, None, None]
    total = (image_tokens * weights).sum(dim=(1, 2))
    return total / (weights.sum(dim=(1, 2)) * image_tokens.shape[2]).clamp(min=1.0)


class ContextModulation(nn.Module):
    """``count`` (shift, scale) pairs ``[B, 1, C]`` from the mean image token:
    ``Linear(SiLU(LayerNorm(mean)))``.

    The projection starts at zero, so every modulated norm starts as the plain norm (the block behaves
    exactly as without context at initialisation) and learns how the person's appearance shifts it.
    """

    def __init__(self, dim: int, count: int) -> None:
        super().__init__()
        self.count = count
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, 2 * count * dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, image_tokens: Tensor, view_mask: Tensor) -> list[tuple[Tensor, Tensor]]:
        context = F.silu(self.norm(masked_mean_token(image_tokens, view_mask)))
        chunks = self.proj(context)[:, None].chunk(2 * self.count, dim=-1)
        return [(chunks[2 * i], chunks[2 * i + 1]) for i in range(self.count)]


def modulate(x: Tensor, shift_scale: tuple[Tensor, Tensor] | None) -> Tensor:
    """``x * (1 + scale) + shift`` (``x`` unchanged for None)."""
    if shift_scale is None:
        return x
    shift, scale = shift_scale
    return torch.addcmul(shift, x, 1.0 + scale)
