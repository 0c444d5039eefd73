"""The backbone: a stack of ``depth`` blocks of one registered ``block`` kind, with gradient checkpointing
and per-depth parameter groups for layer-wise learning-rate decay."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from lca.contracts.block import Block


class Backbone(nn.Module):
    """``depth`` blocks applied in turn, then a LayerNorm on the geometry tokens.

    ``block_factory(last)`` builds one fresh block (e.g. ``lambda last: cls(config, dim=dim, last=last)``),
    with ``last=True`` for the final one (see the block contract); it is called ``depth`` times so blocks do
    not share weights. With ``grad_checkpointing`` each block's activations are
    recomputed in the backward pass instead of stored (training only; eval runs plainly).
    """

    def __init__(
        self, block_factory: Callable[[bool], Block], depth: int, dim: int, grad_checkpointing: bool = False
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"Backbone: depth must be >= 1, got {depth}")
        self.dim = dim
        self.grad_checkpointing = grad_checkpointing
        self.blocks = nn.ModuleList(block_factory(i == depth - 1) for i in range(depth))
        self.norm = nn.LayerNorm(dim)

    @property
    def permutation_invariant(self) -> bool:
        """Whether permuting the reference views leaves the output geometry tokens unchanged."""
        return all(type(block).permutation_invariant for block in self.blocks)

    def forward(
        self, image_tokens: Tensor, geometry_tokens: Tensor, view_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``image_tokens [B, V, P, C]``, ``geometry_tokens [B, N, C]``, ``view_mask [B, V]`` bool
        (True = real view; None = all real) -> the same two token sets after all blocks (geometry
        tokens normalised)."""
        view_mask = self._check(image_tokens, geometry_tokens, view_mask)
        for block in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                image_tokens, geometry_tokens = checkpoint(
                    block, image_tokens, geometry_tokens, view_mask, use_reentrant=False
                )
            else:
                image_tokens, geometry_tokens = block(image_tokens, geometry_tokens, view_mask)
        return image_tokens, self.norm(geometry_tokens)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """One group per block, input side first; the final norm joins the last block's group."""
        groups = [list(block.parameters()) for block in self.blocks]
        groups[-1].extend(self.norm.parameters())
        return groups

    def _check(self, image_tokens: Tensor, geometry_tokens: Tensor, view_mask: Tensor | None) -> Tensor:
        if image_tokens.dim() != 4 or image_tokens.shape[-1] != self.dim:
            raise ValueError(
                f"Backbone: image_tokens must be [B, V, P, {self.dim}]; got {tuple(image_tokens.shape)}"
            )
        b, v = image_tokens.shape[:2]
        if (
            geometry_tokens.dim() != 3
            or geometry_tokens.shape[0] != b
            or geometry_tokens.shape[-1] != self.dim
        ):
            raise ValueError(
                f"Backbone: geometry_tokens must be [{b}, N, {self.dim}]; got {tuple(geometry_tokens.shape)}"
            )
        if view_mask is None:
            return torch.ones(b, v, dtype=torch.bool, device=image_tokens.device)
        if view_mask.shape != (b, v) or view_mask.dtype != torch.bool:
            raise ValueError(
                f"Backbone: view_mask must be bool [{b}, {v}]; got {view_mask.dtype} {tuple(view_mask.shape)}"
            )
        if view_mask.device.type != "meta" and not bool(view_mask.any(dim=1).all()):  # meta: shapes only
            empty = (~view_mask.any(dim=1)).nonzero().flatten().tolist()
            raise ValueError(f"Backbone: samples {empty} have no real reference view (view_mask all False)")
        return view_mask
