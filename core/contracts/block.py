"""The ``block`` kind: one layer of the backbone that mixes image tokens and geometry tokens.

Context passed at construction: ``dim`` (int), the token width shared by image and geometry tokens;
``last`` (bool), True for the backbone's final block. Nothing reads the final block's image tokens, so a
block built with ``last=True`` skips its image-token update and returns the input image tokens (as SD3's
``context_pre_only``); otherwise those weights would never receive a gradient.

Shapes: ``image_tokens [B, V, P, C]`` (``V`` reference views of ``P`` patch tokens each), ``geometry_tokens
[B, N, C]`` (one per template anchor), ``view_mask [B, V]`` bool, True = a real view, False = padding
(samples with fewer views are padded to a common ``V``). Every sample has at least one real view.

Promises every block keeps:

- **Padding never leaks.** Padded views are excluded as keys and from any pooling, so the geometry tokens
  and the real views' image tokens do not depend on what the padded views hold. The image tokens of
  padded views are returned unchanged.
- **Shapes and dtype are kept**: the outputs have the inputs' shapes and dtype.
- ``permutation_invariant`` (class attribute) says whether permuting the reference views leaves the
  geometry tokens unchanged (and permutes the image tokens the same way). A block that adds a per-view
  index embedding, for example, would set it False.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from torch import Tensor, nn


class Block(nn.Module, ABC):
    """``(image_tokens, geometry_tokens, view_mask) -> (image_tokens, geometry_tokens)``; see the module
    doc for shapes and promises."""

    test_config: ClassVar[dict[str, Any]] = {}
    """Params of a small, fast build for the conformance checks (:mod:`lca.testing`), set per component."""

    permutation_invariant: ClassVar[bool] = True

    @abstractmethod
    def forward(
        self, image_tokens: Tensor, geometry_tokens: Tensor, view_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``[B, V, P, C]``, ``[B, N, C]``, ``[B, V]`` bool -> ``([B, V, P, C], [B, N, C])``."""


def keep_padded_views(new: Tensor, old: Tensor, view_mask: Tensor) -> Tensor:
    """Image tokens ``[B, V, P, C]``: the new values for real views, the old ones for padded views."""
    return new.where(view_mask[:, :, None, None], old)
