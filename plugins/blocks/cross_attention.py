"""``cross-attention``: geometry tokens read the image tokens (the cheap baseline)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from timm.layers import Mlp
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.block import Block
from lca.model.attention import Attention


class CrossAttentionConfig(ComponentConfig):
    num_heads: int = Field(8, ge=1)
    """Attention heads (the width ``dim`` must be divisible by it)."""
    mlp_ratio: float = Field(4.0, gt=0)
    """Hidden width of the MLP as a multiple of ``dim``."""
    qkv_bias: bool = True
    """Bias in the query/key/value projections."""


class CrossAttentionBlock(Block):
    """Pre-norm residual cross-attention (queries: geometry tokens; keys/values: the image tokens of all
    real views, padded views masked), then a pre-norm residual MLP on the geometry tokens.

    The image tokens pass through unchanged and anchors never attend to each other, so the cost is linear
    in the number of anchors. No view index enters, so ``permutation_invariant = True``.
    """

    Config: ClassVar[type[CrossAttentionConfig]] = CrossAttentionConfig
    test_config: ClassVar[dict[str, Any]] = {"num_heads": 2, "mlp_ratio": 2.0}
    permutation_invariant: ClassVar[bool] = True

    def __init__(self, config: CrossAttentionConfig, *, dim: int, last: bool = False) -> None:
        # ``last`` changes nothing: this block never updates the image tokens.
        super().__init__()
        self.config = config
        self.query_norm = nn.LayerNorm(dim)
        self.context_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, config.num_heads, config.qkv_bias)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, round(dim * config.mlp_ratio))

    def forward(
        self, image_tokens: Tensor, geometry_tokens: Tensor, view_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        b, v, p, c = image_tokens.shape
        context = self.context_norm(image_tokens.reshape(b, v * p, c))
        key_mask = view_mask.repeat_interleave(p, dim=1)
        g = geometry_tokens + self.attn(self.query_norm(geometry_tokens), context, key_mask=key_mask)
        g = g + self.mlp(self.mlp_norm(g))
        return image_tokens, g
