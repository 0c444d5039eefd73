"""Pixel-aligned anchor tokens: what each anchor looks like in the reference views, read directly.

Per reference view, the anchors are posed to that frame with the template, projected with the view's
camera (the face close-up with its crop's intrinsics) and weighted by visibility (a depth test against the
posed template, the normal facing the camera, in image, a real view: :mod:`lca.model.pixel_alignment`). The
encoder's feature map and the segmented reference colours are sampled bilinearly at the projections and
averaged over views with those weights; a linear layer of ``[features, colour, log(1 + total weight)]`` is
added to the Fourier position tokens. With the references' masks, a sample's weight is also scaled by the
mask there (a projection the template's misfit put on the background counts for nothing) and colours are
averaged over the person's pixels only (``sample(image * mask) / sample(mask)``), so the background's white
never bleeds in. The averaged colour, with a confidence ``1 - exp(-total weight / 0.5)``, is also returned
as each anchor's colour estimate (``color_prior``): the assembled model starts the canonical colours there.
With ``spread_radius``, anchors no reference sees take the estimate of the seen anchors of their body part
around them (a new camera's view of the back then starts from the person's colours, not grey).

The backbone no longer has to discover which pixels belong to which anchor: the first token of an anchor
already carries its colour and its local image features (as in pixel-aligned methods such as PIFu).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from lca.contracts.template import TemplateParams
from lca.contracts.tokenizer import AnchorTokens, TokenizerInputs
from lca.errors import LcaError
from lca.model.pixel_alignment import aggregate, sample_views, spread_colors, view_weights
from lca_plugins.tokenizers.fourier import FourierConfig, FourierTokenizer


class PixelAlignedConfig(FourierConfig):
    """Config of the ``pixel-aligned`` tokenizer (the position encoding's fields, plus its own)."""

    colors: bool = True
    """Sample the reference images' colours (the finest detail there is: the encoder's grid is coarse)."""
    features: bool = True
    """Sample the encoder's feature map (gradients reach the encoder through the sampling)."""
    cell: float = Field(2.0, gt=0)
    """Pixel size of the cells of the depth test's z-buffer (coarse enough that the mesh leaves no holes)."""
    tolerance: float = Field(0.05, ge=0)
    """An anchor more than this (metres) behind the posed body's nearest surface in its cell is hidden."""
    color_prior: bool = True
    """Return the sampled colours as each anchor's colour estimate (needs ``colors``); the model's canonical
    colours then start from them instead of grey."""
    spread_radius: float = Field(0.0, ge=0)
    """Give anchors no reference sees (the back, in a front view) the colour of the seen anchors of the same
    body part around them, within about this many metres on the canonical body (the colour estimate's
    :func:`~lca.model.pixel_alignment.spread_colors`); 0 leaves them grey for the decoder to fill."""


class PixelAlignedTokenizer(FourierTokenizer):
    """Fourier position tokens + a projection of the visibility-weighted samples of every reference view."""

    Config: ClassVar[type[PixelAlignedConfig]] = PixelAlignedConfig
    test_config: ClassVar[dict[str, Any]] = {"bands": 3}
    reads_references: ClassVar[bool] = True

    def __init__(
        self, config: PixelAlignedConfig, *, dim: int, image_dim: int, num_parts: int, **context: Any
    ):
        super().__init__(config, dim=dim, num_parts=num_parts)
        self.config: PixelAlignedConfig = config
        width = (image_dim if config.features else 0) + (3 if config.colors else 0) + 1
        self.sampled = nn.Linear(width, dim)

    def forward(self, inputs: TokenizerInputs) -> AnchorTokens:
        if inputs.poses is None:
            raise LcaError(
                "the 'pixel-aligned' tokenizer reads the reference views at the anchors' projections, so it "
                "needs each reference's camera and template parameters; give a body tracker's output per "
                "image (`lca avatar create --images ... --smplx ...`), create the avatar from a store "
                "(`--store ...`), or use a pipeline with `tokenizer=fourier`."
            )
        b, v = inputs.view_mask.shape
        height, width = inputs.images.shape[-2:]
        size = (int(height), int(width))
        poses = inputs.poses
        flat = TemplateParams(**{k: x.flatten(0, 1) for k, x in vars(poses.params).items()})
        with torch.no_grad():  # the geometry comes from the data; nothing in it is learned
            uv, weights = view_weights(
                inputs.template,
                flat,
                poses.viewmats.flatten(0, 1).to(inputs.anchors.dtype),
                poses.Ks.flatten(0, 1).to(inputs.anchors.dtype),
                size,
                inputs.view_mask.flatten(),
                self.config.cell,
                self.config.tolerance,
            )
        weights = weights.unflatten(0, (b, v))
        masks = poses.masks
        mask_samples = None
        if masks is not None:
            mask_samples = sample_views(masks.flatten(0, 1).to(inputs.images.dtype), uv, size)  # [B*V, N, 1]
            weights = weights * mask_samples[..., 0].unflatten(0, (b, v))
        samples = []
        if self.config.features:
            h, w = inputs.grid
            tokens = inputs.image_tokens.flatten(0, 1)  # [B*V, P, C]
            samples.append(sample_views(tokens.transpose(1, 2).unflatten(2, (h, w)), uv, size))
        colors = None
        if self.config.colors:
            images = inputs.images.flatten(0, 1)
            if masks is None:
                colors = sample_views(images, uv, size)
            else:  # the person's colour only: the background never bleeds into a sample
                person = sample_views(images * masks.flatten(0, 1), uv, size)
                colors = person / mask_samples.clamp(min=1e-3)
            samples.append(colors)
        values = torch.cat(samples, dim=-1).unflatten(0, (b, v))  # [B, V, N, C']
        mean, total = aggregate(values, weights)
        read = torch.cat([mean, torch.log1p(total)[..., None]], dim=-1)
        tokens = self.norm(self.position(inputs) + self.sampled(read))
        if not (self.config.colors and self.config.color_prior):
            return AnchorTokens(tokens)
        colors, confidence = mean[..., -3:].clamp(0, 1), 1 - torch.exp(-total / 0.5)
        if self.config.spread_radius > 0:
            colors, confidence = spread_colors(
                colors, confidence, inputs.anchors, self.config.spread_radius, inputs.part_labels
            )
        return AnchorTokens(tokens, colors, confidence)
