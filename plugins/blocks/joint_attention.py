"""``joint-attention``: MM-DiT style block (as in SD3, LHM and LAM), one attention over both modalities."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from timm.layers import Mlp
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.block import Block, keep_padded_views
from lca.model.attention import attend, merge_heads, split_heads


class JointAttentionConfig(ComponentConfig):
    num_heads: int = Field(8, ge=1)
    """Attention heads (the width ``dim`` must be divisible by it)."""
    mlp_ratio: float = Field(4.0, gt=0)
    """Hidden width of the MLPs as a multiple of ``dim``."""
    qkv_bias: bool = True
    """Bias in the query/key/value projections."""


class _Stream(nn.Module):
    """The per-modality weights of an MM-DiT block: norms, qkv and output projections, MLP."""

    def __init__(self, dim: int, config: JointAttentionConfig, pre_only: bool = False) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=config.qkv_bias)
        if not pre_only:  # a pre-only stream only provides keys and values (SD3's context_pre_only)
            self.proj = nn.Linear(dim, dim)
            self.mlp_norm = nn.LayerNorm(dim)
            self.mlp = Mlp(dim, round(dim * config.mlp_ratio))


class JointAttentionBlock(Block):
    """Each modality projects its own queries, keys and values (separate weights); one attention runs over
    the concatenation ``[geometry tokens | image tokens of all views]`` with padded views masked as keys;
    each modality then has its own output projection and MLP (all pre-norm residual).

    LHM adds AdaLN modulation from a pooled image embedding; LAM's ``sd3_cond`` block uses plain LayerNorm,
    as here. No view index enters, so ``permutation_invariant = True``.
    """

    Config: ClassVar[type[JointAttentionConfig]] = JointAttentionConfig
    test_config: ClassVar[dict[str, Any]] = {"num_heads": 2, "mlp_ratio": 2.0}
    permutation_invariant: ClassVar[bool] = True

    def __init__(self, config: JointAttentionConfig, *, dim: int, last: bool = False) -> None:
        super().__init__()
        if dim % config.num_heads:
            raise ValueError(f"joint-attention: width {dim} is not divisible by num_heads={config.num_heads}")
        self.config = config
        self.last = last
        self.image = _Stream(dim, config, pre_only=last)
        self.geometry = _Stream(dim, config)

    def forward(
        self, image_tokens: Tensor, geometry_tokens: Tensor, view_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        b, v, p, c = image_tokens.shape
        n = geometry_tokens.shape[1]
        h = self.config.num_heads
        x = image_tokens.reshape(b, v * p, c)
        qkv = torch.cat(
            [
                self.geometry.qkv(self.geometry.attn_norm(geometry_tokens)),
                self.image.qkv(self.image.attn_norm(x)),
            ],
            dim=1,
        )
        q, k, val = (split_heads(t, h) for t in qkv.chunk(3, dim=-1))
        key_mask = torch.cat([view_mask.new_ones(b, n), view_mask.repeat_interleave(p, dim=1)], dim=1)
        out = merge_heads(attend(q, k, val, key_mask))
        g = geometry_tokens + self.geometry.proj(out[:, :n])
        g = g + self.geometry.mlp(self.geometry.mlp_norm(g))
        if self.last:
            return image_tokens, g
        x = x + self.image.proj(out[:, n:])
        x = x + self.image.mlp(self.image.mlp_norm(x))
        return keep_padded_views(x.reshape(b, v, p, c), image_tokens, view_mask), g
