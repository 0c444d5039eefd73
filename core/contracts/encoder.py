"""The ``encoder`` kind: reference images -> image tokens.

Context passed at construction: none (an encoder's width is its own; ``out_dim`` tells the next slot).

Layer groups (for layer-wise learning-rate decay): :meth:`Encoder.layer_groups` returns the
encoder's parameters split by depth, ordered from the input (index 0: the stem, e.g. patch embedding,
position embedding, class token) to the output (the last group: e.g. the final norm). Every parameter of
the module appears in exactly one group, frozen ones included (the trainer drops parameters with
``requires_grad=False``). The trainer chains the encoder's groups before the backbone's and gives group
``i`` of ``L`` in total the scale ``decay ** (L - 1 - i)``, so early layers move least.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class EncoderOutput:
    """What an encoder returns.

    ``tokens``: ``[B, V, P, C]`` with ``P = grid[0] * grid[1]`` patch tokens per view in row-major order
    (no class or register tokens), ``C = out_dim``. ``grid``: the patch grid ``(h, w)`` of one view.
    """

    tokens: Tensor
    grid: tuple[int, int]


class Encoder(nn.Module, ABC):
    """Images ``[B, V, 3, H, W]`` (float in [0, 1], RGB) -> :class:`EncoderOutput`.

    Views are independent: an encoder processes each view alone (it folds ``V`` into the batch), so a
    padded view never changes a real view's tokens. Any input size is accepted; an encoder resizes to its
    own working resolution, so ``grid`` does not depend on ``H, W``.
    """

    test_config: ClassVar[dict[str, Any]] = {}
    """Params of a small, fast build for the conformance checks (:mod:`lca.testing`), set per component."""

    @property
    @abstractmethod
    def out_dim(self) -> int:
        """Token width ``C``."""

    @abstractmethod
    def forward(self, images: Tensor) -> EncoderOutput:
        """``images [B, V, 3, H, W]`` float in [0, 1] -> tokens ``[B, V, P, C]`` and the patch grid."""

    @abstractmethod
    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters by depth, input first (see the module docstring)."""


def check_images(images: Tensor, where: str) -> None:
    """Reject anything but ``[B, V, 3, H, W]`` floating images, naming the component that got them."""
    if images.dim() != 5 or images.shape[2] != 3:
        raise ValueError(f"{where}: images must be [B, V, 3, H, W]; got shape {tuple(images.shape)}")
    if not torch.is_floating_point(images):
        raise ValueError(f"{where}: images must be float in [0, 1]; got dtype {images.dtype}")
