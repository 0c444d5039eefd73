"""Multi-head attention pieces on top of ``torch.nn.functional.scaled_dot_product_attention``.

The blocks need three things ``nn.MultiheadAttention`` does not give together: separate projections for
queries and keys/values coming from different token sets (cross- and joint attention), a boolean key mask
that broadcasts over heads and queries, and SDPA's fused kernels (flash / memory-efficient) on GPU.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """``[B, L, H*d]`` -> ``[B, H, L, d]``."""
    return x.unflatten(-1, (num_heads, -1)).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``[B, H, L, d]`` -> ``[B, L, H*d]``."""
    return x.transpose(1, 2).flatten(2)


def attend(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None = None) -> Tensor:
    """SDPA over ``q [B, H, Lq, d]``, ``k, v [B, H, Lk, d]``; ``key_mask [B, Lk]`` bool, True = attend.

    Every query must keep at least one unmasked key (callers guarantee it: geometry tokens are never masked
    and every sample has at least one real view), otherwise SDPA returns NaN for that query.
    """
    mask = None if key_mask is None else key_mask[:, None, None, :]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class Attention(nn.Module):
    """Multi-head attention with queries from ``x`` and keys/values from ``context`` (``x`` when omitted)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Attention: width {dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor | None = None, key_mask: Tensor | None = None) -> Tensor:
        """``x [B, Lq, C]``, ``context [B, Lk, C]``, ``key_mask [B, Lk]`` -> ``[B, Lq, C]``."""
        context = x if context is None else context
        k, v = self.kv(context).chunk(2, dim=-1)
        h = self.num_heads
        out = attend(split_heads(self.q(x), h), split_heads(k, h), split_heads(v, h), key_mask)
        return self.proj(merge_heads(out))
