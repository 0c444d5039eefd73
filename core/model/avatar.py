"""The assembled avatar network (docs/architecture.md, "The method, in one pass"), built from a validated
:class:`~lca.config.PipelineConfig` through the registry. It knows components only through their kind
contracts, so every slot can be swapped by name.

Two entry points keep animation cheap:

- :meth:`AvatarModel.create_avatar` runs the encoder and the backbone once per person and returns an
  :class:`Avatar` (canonical Gaussians per anchor plus the anchor features the correction branch needs);
- :meth:`AvatarModel.drive` turns an avatar, driving signals and template parameters of M target frames
  into posed Gaussians and renders, without touching the encoder or the backbone.

:meth:`AvatarModel.forward` does both for a training :class:`~lca.contracts.sample.Batch` and returns the
trainer's :class:`~lca.contracts.model.ModelOutput`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor, nn

from lca.config import PipelineConfig, SlotConfig
from lca.contracts.decoder import AnchorGaussians, apply_correction
from lca.contracts.model import ModelOutput
from lca.contracts.rasterizer import RenderOutput
from lca.contracts.sample import Batch, Views
from lca.contracts.template import PART_NAMES, TemplateParams
from lca.contracts.tokenizer import ReferencePoses, TokenizerInputs
from lca.errors import ComponentBuildError, LcaError
from lca.gaussians import Gaussians
from lca.model.backbone import Backbone
from lca.model.camera_embedding import PluckerEmbedding
from lca.model.refine import ReferenceRenderer, refine_colors
from lca.registry import Registry, default_registry


@dataclass
class Avatar:
    """One person's avatar, the output of the feed-forward pass (batch dim ``B``).

    ``anchors [B, N, 3]``: anchor positions in the person's canonical Da-pose space (neutral expression);
    ``features [B, N, C]``: the backbone's anchor features (input of the correction branch);
    ``canonical``: :class:`AnchorGaussians` ``[B, N, K]`` relative to the anchors; ``betas [B, S]``.
    """

    anchors: Tensor
    features: Tensor
    canonical: AnchorGaussians
    betas: Tensor


@dataclass
class DriveOutput:
    """Posed Gaussians and renders of M target views (leading ``[B, M]``).

    ``driven``: canonical + correction, skinned and rendered; ``canonical``: the canonical Gaussians
    skinned without correction (None when not asked for). Renders are ``[B, M, 3|1, H, W]``.
    """

    driven: RenderOutput
    driven_gaussians: Gaussians
    canonical: RenderOutput | None = None
    canonical_gaussians: Gaussians | None = None


def driving_signals(params: dict[str, Tensor], driving: Any) -> dict[str, Tensor]:
    """The signal dict drivers read (names in :mod:`lca.contracts.driver`) from a target views' template
    parameters and a :class:`lca.contracts.sample.Driving`."""
    signals = {
        name: params[name]
        for name in ("body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose")
        if name in params
    }
    extras = {
        "face_crop": driving.face,
        "face_valid": driving.face_valid,
        "blendshapes": driving.blendshapes,
        "gaze": driving.gaze,
    }
    signals.update({name: value for name, value in extras.items() if value is not None})
    return signals


def reference_poses(references: Views) -> ReferencePoses:
    """Where each reference view was taken from (its camera and its frame's template parameters), and the
    person's masks."""
    params = TemplateParams(**{f.name: references.params[f.name] for f in fields(TemplateParams)})
    return ReferencePoses(references.viewmats, references.Ks, params, references.masks)


def with_color_prior(canonical: AnchorGaussians, colors: Tensor, confidence: Tensor) -> AnchorGaussians:
    """Canonical Gaussians whose colours start from each anchor's colour as the references show it: the
    decoder's colour is added in logit space to ``confidence * logit(colors)`` (``colors [B, N, 3]``,
    ``confidence [B, N]``), so an unseen anchor keeps the decoder's colour and a zero-initialised colour head
    reproduces what is visible from the first step."""
    prior = torch.logit(colors.clamp(0.02, 0.98)) * confidence[..., None]
    mixed = torch.sigmoid(torch.logit(canonical.colors, eps=1e-6) + prior[:, :, None])
    return replace(canonical, colors=mixed)


def per_frame(canonical: AnchorGaussians, frames: int) -> AnchorGaussians:
    """``[B, N, K, ...]`` canonical Gaussians repeated for ``frames`` frames: ``[B, M, N, K, ...]`` views."""
    return AnchorGaussians(
        **{
            name: value[:, None].expand(-1, frames, *([-1] * (value.dim() - 1)))
            for name, value in vars(canonical).items()
        }
    )


class AvatarModel(nn.Module):
    """Template, encoder, anchor tokenizer, backbone of blocks, drivers, decoder and rasterizer."""

    def __init__(
        self,
        config: PipelineConfig,
        registry: Registry | None = None,
        device: torch.device | str | None = None,
        feed_forward: bool = True,
    ) -> None:
        """Build every slot through the registry. ``device`` creates the learnable parts there directly
        (``"meta"``: shapes only, no memory, for summaries of paper-scale pipelines); the template, which
        has no learnable parameters but reads its body model from disk, is always built on the CPU.
        ``feed_forward=False`` leaves out the encoder, token projections and backbone, the parts only
        :meth:`create_avatar` uses, so animation players never allocate a paper-scale encoder."""
        super().__init__()
        registry = registry or default_registry()
        self.config = config
        paths = {id(s): k for k, s in config.slots.items()}  # to name the slot of a build error
        paths |= {id(s): f"drivers.{k}" for k, s in config.drivers.items()}

        def build(slot: SlotConfig, **context: Any) -> Any:
            try:
                return registry.build(slot.kind, slot.type, slot.config, **context)
            except ComponentBuildError as error:
                raise error.at(paths.get(id(slot), slot.kind)) from error.cause

        width = config.model.width
        self.template = build(config.slots["template"])
        with torch.device(device) if device is not None else contextlib.nullcontext():
            if feed_forward:
                self.encoder = build(config.slots["encoder"])
                self.image_proj = nn.Linear(self.encoder.out_dim, width)
                self.camera_embedding = (
                    PluckerEmbedding(width) if config.model.camera_embedding == "plucker" else None
                )
                self.tokenizer = build(
                    config.slots["tokenizer"],
                    dim=width,
                    image_dim=self.encoder.out_dim,
                    num_parts=len(PART_NAMES),
                )
                block_slot = config.slots["block"]
                self.backbone = Backbone(
                    lambda last: build(block_slot, dim=width, last=last),
                    config.model.depth,
                    width,
                    config.model.grad_checkpointing,
                )
            self.drivers = nn.ModuleDict({name: build(slot) for name, slot in config.drivers.items()})
            driver_dim = sum(driver.out_dim for driver in self.drivers.values())
            self.decoder = build(config.slots["decoder"], dim=width, driver_dim=driver_dim)
            self.rasterizer = build(config.slots["rasterizer"])

    # ------------------------------------------------------------------------------ feed-forward
    def create_avatar(
        self,
        images: Tensor,
        view_mask: Tensor | None,
        betas: Tensor,
        poses: ReferencePoses | None = None,
    ) -> Avatar:
        """Reference ``images [B, V, 3, H, W]`` (``view_mask [B, V]``, True = real view), shape ``betas
        [B, S]`` and, when known, where each reference was taken from (``poses``: cameras and template
        parameters, which a tokenizer that reads the references needs) -> the person's :class:`Avatar`.
        Runs the encoder, the tokenizer and the backbone (once per person)."""
        if view_mask is None:
            view_mask = torch.ones(images.shape[:2], dtype=torch.bool, device=images.device)
        encoded = self.encoder(images)
        neutral = betas.new_zeros(betas.shape[0], self.template.num_expression)
        anchors = self.template.shaped_anchors(betas, neutral)
        labels = self.template.anchor_part_labels.expand(betas.shape[0], -1)
        read = self.tokenizer(
            TokenizerInputs(
                anchors=anchors,
                part_labels=labels,
                image_tokens=encoded.tokens,
                grid=encoded.grid,
                images=images,
                view_mask=view_mask,
                poses=poses,
                template=self.template,
            )
        )
        image_tokens = self.image_proj(encoded.tokens)
        if self.camera_embedding is not None:
            if poses is None:
                raise LcaError(
                    "AvatarModel.create_avatar: model.camera_embedding='plucker' needs the reference views' "
                    "cameras and template parameters (poses): give a body tracker's output per photo "
                    "(`lca avatar create --images ... --smplx ...`), or use a model trained with "
                    "model.camera_embedding=none"
                )
            image_tokens = image_tokens + self.camera_embedding(
                self.template, poses.params, poses.viewmats, poses.Ks, encoded.grid, images.shape[-2:]
            )
        _, features = self.backbone(image_tokens, read.tokens, view_mask)
        canonical = self.decoder.canonical(features)
        if read.colors is not None and read.confidence is not None:
            canonical = with_color_prior(canonical, read.colors, read.confidence)
        steps = self.config.model.refine_steps
        if steps and not self.training and poses is not None and poses.masks is not None:
            render = self._reference_renderer(poses, betas, images.shape[-2:])
            damping = self.config.model.refine_damping
            canonical = refine_colors(canonical, render, images, poses.masks, view_mask, steps, damping)
        return Avatar(anchors, features, canonical, betas)

    def _reference_renderer(
        self, poses: ReferencePoses, betas: Tensor, size: tuple[int, int]
    ) -> ReferenceRenderer:
        """Canonical Gaussians -> their renders into the reference views (for :func:`refine_colors`)."""
        views, (height, width) = poses.viewmats.shape[1], size
        dtype = poses.params.betas.dtype
        viewmats, Ks = poses.viewmats.to(dtype), poses.Ks.to(dtype)  # once, not at every step

        def render(canonical: AnchorGaussians) -> Tensor:
            posed = self._pose(per_frame(canonical, views), poses.params, betas)
            return self._render(posed, viewmats, Ks, width, height, None, betas.shape[0]).color

        return render

    # ------------------------------------------------------------------------------ per frame
    def driving_embedding(self, signals: dict[str, Tensor], batch: int, frames: int) -> Tensor:
        """Concatenated driver embeddings ``[B, M, D]`` (``D = 0`` without drivers)."""
        if not self.drivers:
            return torch.zeros(batch, frames, 0, device=next(self.decoder.parameters()).device)
        return torch.cat([driver(signals) for driver in self.drivers.values()], dim=-1)

    def regularization(self) -> dict[str, Tensor]:
        """The drivers' regularisers of the last :meth:`drive`, summed by name (e.g. ``{"kl": ...}``)."""
        terms: dict[str, Tensor] = {}
        for driver in self.drivers.values():
            for key, value in driver.regularization().items():
                terms[key] = terms[key] + value if key in terms else value
        return terms

    def _pose(self, gaussians: AnchorGaussians, params: TemplateParams, betas: Tensor) -> Gaussians:
        """Skin ``[B, M, N, K]`` canonical-space Gaussians to the target poses -> Gaussians ``[B*M, N*K]``."""
        flat = params.flatten()
        frames = flat.betas.shape[0]
        # Anchors follow the target frame's expression blend shapes (the rows they inherit from the mesh).
        anchors = self.template.shaped_anchors(
            betas.repeat_interleave(frames // betas.shape[0], 0), flat.expression
        )
        transforms = self.template.joint_transforms(flat)
        weights = self.template.anchor_weights
        offsets = gaussians.offsets.flatten(0, 1)
        means = self.template.pose_points(anchors[:, :, None] + offsets, weights, transforms)
        quats = self.template.pose_quats(gaussians.quats.flatten(0, 1), weights, transforms)
        return Gaussians(
            means=means.flatten(1, 2),
            quats=quats.flatten(1, 2),
            scales=gaussians.scales.flatten(0, 1).flatten(1, 2),
            opacities=gaussians.opacities.flatten(0, 1).flatten(1, 2),
            colors=gaussians.colors.flatten(0, 1).flatten(1, 2),
        )

    def _render(
        self,
        gaussians: Gaussians,
        viewmats: Tensor,
        Ks: Tensor,
        width: int,
        height: int,
        background: Tensor | None,
        batch: int,
    ) -> RenderOutput:
        """One camera per target frame: ``[B*M]`` Gaussians, ``viewmats [B, M, 4, 4]`` -> ``[B, M, ...]``."""
        out = self.rasterizer(
            gaussians, viewmats.flatten(0, 1)[:, None], Ks.flatten(0, 1)[:, None], width, height, background
        )

        def unflatten(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[:, 0].unflatten(0, (batch, -1))

        return RenderOutput(
            color=unflatten(out.color), alpha=unflatten(out.alpha), depth=unflatten(out.depth)
        )

    def drive(
        self,
        avatar: Avatar,
        params: TemplateParams,
        signals: dict[str, Tensor],
        viewmats: Tensor,
        Ks: Tensor,
        width: int,
        height: int,
        background: Tensor | None = None,
        render_canonical: bool = False,
    ) -> DriveOutput:
        """Animate an avatar: ``params`` and ``signals`` with leading ``[B, M]``, one camera per target
        frame (``viewmats [B, M, 4, 4]``, ``Ks [B, M, 3, 3]``) -> posed Gaussians and ``[B, M]`` renders."""
        batch, frames = params.batch_shape[:2]
        driving = self.driving_embedding(signals, batch, frames)
        driven = apply_correction(avatar.canonical, self.decoder.correction(avatar.features, driving))
        driven_gaussians = self._pose(driven, params, avatar.betas)
        output = DriveOutput(
            driven=self._render(driven_gaussians, viewmats, Ks, width, height, background, batch),
            driven_gaussians=driven_gaussians,
        )
        if render_canonical:
            output.canonical_gaussians = self._pose(per_frame(avatar.canonical, frames), params, avatar.betas)
            output.canonical = self._render(
                output.canonical_gaussians, viewmats, Ks, width, height, background, batch
            )
        return output

    def forward(self, batch: Batch) -> ModelOutput:
        """A training batch -> canonical and driven renders of the target views over a black background,
        plus what the regularisers need (:class:`ModelOutput`)."""
        references, targets = batch.references, batch.targets
        avatar = self.create_avatar(
            references.images, references.valid, references.params["betas"][:, 0], reference_poses(references)
        )
        params = TemplateParams(**{f.name: targets.params[f.name] for f in fields(TemplateParams)})
        signals = driving_signals(targets.params, batch.driving)
        height, width = targets.images.shape[-2:]
        renders = self.drive(
            avatar, params, signals, targets.viewmats, targets.Ks, width, height, render_canonical=True
        )
        assert renders.canonical is not None
        return ModelOutput(
            driven=renders.driven.color,
            driven_alpha=renders.driven.alpha,
            canonical=renders.canonical.color,
            canonical_alpha=renders.canonical.alpha,
            offsets=avatar.canonical.offsets,
            scales=avatar.canonical.scales,
            part_labels=self.template.anchor_part_labels,
            regularization=self.regularization(),
        )

    # ------------------------------------------------------------------------------ training support
    def fsdp_units(self) -> list[nn.Module]:
        """The submodules sharded as their own units under ``run.parallel=fsdp`` (each gathered only while
        it computes): every backbone block and the encoder; the rest (tokenizer, drivers, decoder) forms
        the root unit."""
        return [*self.backbone.blocks, self.encoder]

    def layer_depths(self) -> tuple[dict[str, int], int]:
        """Depth of every parameter for layer-wise lr decay, and the top depth.

        Encoder groups come first (0 .. Le-1), then the token projections (Le), then the backbone's
        blocks (Le+1 .. Le+Lb), and everything else (drivers, decoder) sits at the top.
        """
        ids: dict[int, int] = {}
        groups = [
            *self.encoder.layer_groups(),
            [
                *self.image_proj.parameters(),
                *(self.camera_embedding.parameters() if self.camera_embedding is not None else ()),
                *self.tokenizer.parameters(),
            ],
            *self.backbone.layer_groups(),
        ]
        for depth, group in enumerate(groups):
            for parameter in group:
                ids.setdefault(id(parameter), depth)
        top = len(groups)
        return {name: ids.get(id(p), top) for name, p in self.named_parameters()}, top


def build_model(config: PipelineConfig, registry: Registry | None = None) -> AvatarModel:
    """The trainer's default model factory (a :data:`lca.contracts.model.ModelFactory`)."""
    return AvatarModel(config, registry)
