"""Shared machinery of the encoders built on timm's ``VisionTransformer`` (Sapiens, DINOv2, tiny ViT).

Not a registered component: the registered ones (``sapiens_vit``, ``dinov2_vit``, ``vit_tiny``) build the
timm model and hand it to :class:`TimmViTEncoder`, which does what they share: ImageNet normalisation,
resizing to the working resolution, folding views into the batch, dropping class/register tokens,
freezing, gradient checkpointing, and depth groups for layer-wise learning-rate decay.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from lca.contracts.encoder import Encoder, EncoderOutput, check_images
from lca.errors import WeightsMismatchError, WeightsNotFoundError
from lca.paths import not_a_file


def read_state_dict(path: str | Path, component: str, how_to_get: str) -> dict[str, Tensor]:
    """Tensors of a local ``.safetensors`` or torch ``.pth/.pt/.bin`` file (loaded with ``weights_only=True``,
    so no code in the file runs). Unwraps the ``state_dict`` / ``model`` containers training scripts add."""
    path = Path(path).expanduser()
    reason = not_a_file(path)
    if reason:
        raise WeightsNotFoundError(component, str(path), how_to_get, reason)
    if path.suffix == ".safetensors":
        return load_file(str(path), device="cpu")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(blob, dict) and isinstance(blob.get(key), dict):
            blob = blob[key]
    if not isinstance(blob, dict):
        raise WeightsMismatchError(f"{component}: '{path}' holds a {type(blob).__name__}, not a state dict")
    return blob


def load_exact(model: nn.Module, state_dict: dict[str, Tensor], component: str, source: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists missing, unexpected and mis-shaped names."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state_dict))
        if state_dict[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = [
            f"{label} ({len(items)}): {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}"
            for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
            if items
        ]
        raise WeightsMismatchError(
            f"{component}: weights from '{source}' do not fit the configured architecture; "
            + "; ".join(parts)
        )
    model.load_state_dict(state_dict, strict=True)


class TimmViTEncoder(Encoder):
    """Wraps a timm ``VisionTransformer`` (made with ``num_classes=0, global_pool=''``) as an Encoder.

    Input images are normalised with the ImageNet mean/std (what Sapiens and DINOv2 were trained with) and
    resized (bilinear, antialiased) to ``image_size`` when they differ, so ``grid`` is fixed by the config.
    """

    def __init__(
        self,
        vit: VisionTransformer,
        image_size: tuple[int, int],
        frozen: bool,
        grad_checkpointing: bool,
    ) -> None:
        super().__init__()
        patch = vit.patch_embed.patch_size
        if image_size[0] % patch[0] or image_size[1] % patch[1]:
            raise ValueError(
                f"{type(self).__name__}: image_size {image_size} is not a multiple of patch {patch}"
            )
        self.vit = vit
        self.image_size = tuple(image_size)
        self._grid = (image_size[0] // patch[0], image_size[1] // patch[1])
        self.frozen = frozen
        self.register_buffer("mean", torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1), persistent=False)
        vit.set_grad_checkpointing(grad_checkpointing)
        if frozen:
            self.requires_grad_(False)

    @property
    def out_dim(self) -> int:
        return self.vit.embed_dim

    def train(self, mode: bool = True) -> TimmViTEncoder:
        """A frozen encoder stays in eval mode (no dropout / drop-path) whatever the model around it does."""
        super().train(mode and not self.frozen)
        return self

    def forward(self, images: Tensor) -> EncoderOutput:
        check_images(images, type(self).__name__)
        b, v = images.shape[:2]
        x = images.flatten(0, 1)
        if tuple(x.shape[-2:]) != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False, antialias=True)
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            tokens = self.vit.forward_features(x)[:, self.vit.num_prefix_tokens :]
        return EncoderOutput(tokens=tokens.unflatten(0, (b, v)), grid=self._grid)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Group 0: everything before the first block (patch embedding, position embedding, class/register
        tokens, pre-norm); group ``i + 1``: block ``i``; last group: everything after (the final norm)."""
        depth = len(self.vit.blocks)
        groups: list[list[nn.Parameter]] = [[] for _ in range(depth + 2)]
        for name, param in self.vit.named_parameters():
            if name.startswith("blocks."):
                groups[int(name.split(".")[1]) + 1].append(param)
            elif name.startswith(("cls_token", "reg_token", "pos_embed", "patch_embed", "norm_pre")):
                groups[0].append(param)
            else:
                groups[-1].append(param)
        return [g for g in groups if g]
