"""The ``tokenizer`` kind: one token per template anchor, the geometry stream the backbone starts from.

Context passed at construction: ``dim`` (the token width ``C``, ``model.width``), ``image_dim`` (the
encoder's ``out_dim``) and ``num_parts`` (the number of body-part labels, ``len(PART_NAMES)``).

The LCA method encodes each anchor's canonical position alone (``fourier``); everything the avatar knows
about the person then has to reach the anchors through attention. A tokenizer may also read the reference
views directly, e.g. ``pixel-aligned``, which poses the anchors to each reference frame with the template,
projects them with that view's camera and samples the image features and colours there. Tokenizers that
read the references need their cameras and template parameters (:class:`ReferencePoses`); the assembled
model passes them whenever it has them (training, ``lca eval``, avatars created from a store) and says so
when it does not (``lca avatar create --images``).

Shapes: ``B`` batch, ``N`` anchors, ``V`` reference views (padded, ``view_mask`` True for real ones; the
face close-up is one more view with its crop's intrinsics), ``P = h * w`` encoder tokens per view in
row-major order over the whole image (encoders resize the whole image, so the grid spans it uniformly).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lca.contracts.template import Template, TemplateParams


@dataclass(frozen=True)
class ReferencePoses:
    """Where each reference view was taken from: ``viewmats [B, V, 4, 4]`` (world-to-camera, OpenCV),
    ``Ks [B, V, 3, 3]`` (pixels of the reference images as given), the template parameters of each view's
    frame, ``params`` with batch dims ``[B, V]``, and the person's masks ``[B, V, 1, H, W]`` in [0, 1] when
    known (they tell a sample on the person from one that the template's misfit put on the background)."""

    viewmats: Tensor
    Ks: Tensor
    params: TemplateParams
    masks: Tensor | None = None

    def batched(self) -> ReferencePoses:
        """The poses of one person's views ``[V]`` as a batch of one ``[1, V]``."""
        params = TemplateParams(**{k: v[None] for k, v in vars(self.params).items()})
        masks = None if self.masks is None else self.masks[None]
        return ReferencePoses(self.viewmats[None], self.Ks[None], params, masks)

    def to(self, device: torch.device | str) -> ReferencePoses:
        """A copy on ``device``."""
        masks = None if self.masks is None else self.masks.to(device)
        return ReferencePoses(self.viewmats.to(device), self.Ks.to(device), self.params.to(device), masks)


@dataclass(frozen=True)
class AnchorTokens:
    """What a tokenizer returns: ``tokens [B, N, dim]`` and, for tokenizers that read the references, each
    anchor's colour as seen there, ``colors [B, N, 3]`` in [0, 1] with ``confidence [B, N]`` in [0, 1] (0:
    not seen). The assembled model starts each anchor's canonical colour from that estimate (the decoder's
    colour is added to it in logit space), so what is visible needs no learning to be right."""

    tokens: Tensor
    colors: Tensor | None = None
    confidence: Tensor | None = None


@dataclass(frozen=True)
class TokenizerInputs:
    """Everything a tokenizer may read.

    ``anchors [B, N, 3]``: the person's canonical (Da-pose, neutral expression) anchor positions, metres;
    ``part_labels [B, N]`` long; ``image_tokens [B, V, P, image_dim]`` the encoder's tokens with ``grid``
    ``(h, w)``; ``images [B, V, 3, H, W]`` the reference images the encoder saw (segmented: the person over
    ``reference_background``); ``view_mask [B, V]`` bool; ``poses`` or None; ``template`` the body model
    the anchors belong to (for posing them, never trained)."""

    anchors: Tensor
    part_labels: Tensor
    image_tokens: Tensor
    grid: tuple[int, int]
    images: Tensor
    view_mask: Tensor
    poses: ReferencePoses | None
    template: Template


class Tokenizer(nn.Module, ABC):
    """:class:`TokenizerInputs` -> :class:`AnchorTokens` (tokens ``[B, N, dim]``, optional colours)."""

    test_config: ClassVar[dict[str, Any]] = {}
    """Params of a small, fast build for the conformance checks (:mod:`lca.testing`), set per component."""
    reads_references: ClassVar[bool] = False
    """True when the tokens depend on the reference views (then :class:`ReferencePoses` are required and
    padded views must not change them)."""

    @abstractmethod
    def forward(self, inputs: TokenizerInputs) -> AnchorTokens:
        """The anchor tokens ``[B, N, dim]`` (and colours, for tokenizers that read the references)."""
