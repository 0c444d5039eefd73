"""``lca-tri-attention``: the reference LCA block (image, then geometry, then multi-modal attention)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from timm.layers import Mlp
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.block import Block, keep_padded_views
from lca.model.attention import Attention
from lca.model.modulation import ContextModulation, modulate


class TriAttentionConfig(ComponentConfig):
    num_heads: int = Field(8, ge=1)
    """Attention heads (the width ``dim`` must be divisible by it)."""
    mlp_ratio: float = Field(4.0, gt=0)
    """Hidden width of the MLPs as a multiple of ``dim``."""
    qkv_bias: bool = True
    """Bias in the query/key/value projections."""
    global_context: bool = True
    """Modulate the geometry tokens' three norms by the mean image token (AdaLN, as LHM's global embedding;
    see :mod:`lca.model.modulation`). False gives the plain three-attention block."""


class TriAttentionBlock(Block):
    """Three pre-norm residual attentions, then one MLP per modality:

    1. image attention: self-attention inside each view (``[B*V, P, C]``), so views do not mix here;
    2. geometry attention: self-attention over the anchors' tokens;
    3. multi-modal attention: one self-attention, shared weights, over the geometry tokens and the image
       tokens of all views together; padded views are masked out as keys;
    4. an MLP on the image tokens and another on the geometry tokens (separate weights: different modalities).

    With ``global_context`` the geometry tokens' pre-norms of 2, 3 and 4 are modulated (AdaLN,
    zero-initialised) by the mean image token of the real views.

    No view index enters anywhere, so permuting the views permutes the image tokens and leaves the
    geometry tokens unchanged (``permutation_invariant = True``).
    """

    Config: ClassVar[type[TriAttentionConfig]] = TriAttentionConfig
    test_config: ClassVar[dict[str, Any]] = {"num_heads": 2, "mlp_ratio": 2.0}
    permutation_invariant: ClassVar[bool] = True

    def __init__(self, config: TriAttentionConfig, *, dim: int, last: bool = False) -> None:
        super().__init__()
        self.config = config
        self.last = last
        heads, bias = config.num_heads, config.qkv_bias
        self.image_norm, self.image_attn = nn.LayerNorm(dim), Attention(dim, heads, bias)
        self.geometry_norm, self.geometry_attn = nn.LayerNorm(dim), Attention(dim, heads, bias)
        self.joint_norm, self.joint_attn = nn.LayerNorm(dim), Attention(dim, heads, bias)
        if not last:  # the final block's image tokens are not read (see the block contract)
            self.image_mlp_norm = nn.LayerNorm(dim)
            self.image_mlp = Mlp(dim, round(dim * config.mlp_ratio))
        self.geometry_mlp_norm = nn.LayerNorm(dim)
        self.geometry_mlp = Mlp(dim, round(dim * config.mlp_ratio))
        self.context = ContextModulation(dim, 3) if config.global_context else None

    def forward(
        self, image_tokens: Tensor, geometry_tokens: Tensor, view_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        b, v, p, c = image_tokens.shape
        n = geometry_tokens.shape[1]
        mod_geometry, mod_joint, mod_mlp = (
            self.context(image_tokens, view_mask) if self.context is not None else (None, None, None)
        )
        # 1. per view: no mask needed, a view only ever sees its own tokens
        x = image_tokens.reshape(b * v, p, c)
        x = x + self.image_attn(self.image_norm(x))
        # 2. over anchors
        g = geometry_tokens + self.geometry_attn(modulate(self.geometry_norm(geometry_tokens), mod_geometry))
        # 3. over everything, padded views masked as keys (geometry keys are always valid)
        joint = torch.cat([g, x.reshape(b, v * p, c)], dim=1)
        key_mask = torch.cat([view_mask.new_ones(b, n), view_mask.repeat_interleave(p, dim=1)], dim=1)
        normed = self.joint_norm(joint)
        normed = torch.cat([modulate(normed[:, :n], mod_joint), normed[:, n:]], dim=1)
        joint = joint + self.joint_attn(normed, key_mask=key_mask)
        g, x = joint[:, :n], joint[:, n:]
        # 4. per modality MLPs
        g = g + self.geometry_mlp(modulate(self.geometry_mlp_norm(g), mod_mlp))
        if self.last:
            return image_tokens, g
        x = x + self.image_mlp(self.image_mlp_norm(x))
        return keep_padded_views(x.reshape(b, v, p, c), image_tokens, view_mask), g
