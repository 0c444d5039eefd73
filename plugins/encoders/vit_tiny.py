"""``vit-tiny``: a small ViT from scratch (timm), for CPU work and tests."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, PositiveInt, model_validator
from timm.models.vision_transformer import VisionTransformer

from lca.component import ComponentConfig
from lca_plugins.encoders.timm_vit import TimmViTEncoder


class ViTTinyConfig(ComponentConfig):
    dim: int = Field(64, ge=1)
    """Token width."""
    depth: int = Field(2, ge=1)
    """Number of transformer blocks."""
    num_heads: int = Field(2, ge=1)
    """Attention heads."""
    patch_size: int = Field(8, ge=1)
    """Patch side in pixels."""
    image_size: tuple[PositiveInt, PositiveInt] = (64, 48)
    """Working resolution (H, W), a multiple of ``patch_size``; inputs are resized to it."""
    grad_checkpointing: bool = False
    """Recompute each block's activations in the backward pass instead of storing them."""

    @model_validator(mode="after")
    def _heads_divide_the_width(self) -> ViTTinyConfig:
        if self.dim % self.num_heads:
            raise ValueError(f"dim={self.dim} is not a multiple of num_heads={self.num_heads}")
        return self


class ViTTiny(TimmViTEncoder):
    """A randomly initialised timm ViT without class token: ``[B, V, 3, H, W] -> [B, V, P, dim]``."""

    Config: ClassVar[type[ViTTinyConfig]] = ViTTinyConfig
    test_config: ClassVar[dict[str, Any]] = {"dim": 32, "image_size": [32, 32]}

    def __init__(self, config: ViTTinyConfig) -> None:
        vit = VisionTransformer(
            img_size=config.image_size,
            patch_size=config.patch_size,
            embed_dim=config.dim,
            depth=config.depth,
            num_heads=config.num_heads,
            class_token=False,
            num_classes=0,
            global_pool="",
        )
        super().__init__(vit, config.image_size, frozen=False, grad_checkpointing=config.grad_checkpointing)
        self.config = config
