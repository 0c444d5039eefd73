"""``dinov2-vit``: timm's DINOv2 ViTs (Oquab et al. 2023), weights from a local file.

timm model names and sizes (patch 14, layer scale, class token; ``registers=True`` adds 4 register tokens):

=======  ===========================  ==========  ======  =====
variant  timm model                   embed dim   layers  heads
=======  ===========================  ==========  ======  =====
small    vit_small_patch14_dinov2     384         12      6
base     vit_base_patch14_dinov2      768         12      12
large    vit_large_patch14_dinov2     1024        24      16
giant    vit_giant_patch14_dinov2     1536        40      24   (SwiGLU MLP)
tiny     small with dim 32, 2 layers  32          2       2    (tests only)
=======  ===========================  ==========  ======  =====

The model is always created with ``pretrained=False`` (no hub access); ``weights`` names a local file in
timm's format (the ``model.safetensors`` of the ``timm/vit_*_dinov2.lvd142m`` repos) or the official
``dinov2_vit*14_pretrain.pth``; timm's own ``checkpoint_filter_fn`` converts the latter and resamples the
position embedding to ``image_size``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import timm
from pydantic import Field, PositiveInt
from timm.models.vision_transformer import checkpoint_filter_fn

from lca.component import ComponentConfig
from lca_plugins.encoders.timm_vit import TimmViTEncoder, load_exact, read_state_dict

HOW_TO_GET = (
    "download DINOv2 weights (e.g. model.safetensors of the Hugging Face repo "
    "timm/vit_large_patch14_dinov2.lvd142m, or dinov2_vitl14_pretrain.pth from facebookresearch/dinov2)"
)
_TIMM_NAMES = {"tiny": "small", "small": "small", "base": "base", "large": "large", "giant": "giant"}


class DinoV2ViTConfig(ComponentConfig):
    variant: Literal["tiny", "small", "base", "large", "giant"] = "large"
    """DINOv2 size (see the module doc); ``tiny`` is a test-size stand-in with the same structure."""
    registers: bool = False
    """Use the variant with 4 register tokens (``vit_*_patch14_reg4_dinov2``)."""
    image_size: tuple[PositiveInt, PositiveInt] = (448, 336)
    """Working resolution (H, W), a multiple of 14; inputs are resized to it (default: 32x24 = 768 tokens)."""
    weights: str | None = None
    """Local path of DINOv2 weights (.safetensors in timm format or the official .pth); None = random init."""
    frozen: bool = False
    """Freeze every encoder parameter (and keep it in eval mode)."""
    grad_checkpointing: bool = False
    """Recompute each ViT block's activations in the backward pass instead of storing them."""
    drop_path_rate: float = Field(0.0, ge=0, lt=1)
    """Stochastic depth rate of the last block (linearly increasing from 0)."""


def timm_model_name(config: DinoV2ViTConfig) -> str:
    """The timm architecture name of a config (``tiny`` builds on ``small``)."""
    size = _TIMM_NAMES[config.variant]
    return f"vit_{size}_patch14_reg4_dinov2" if config.registers else f"vit_{size}_patch14_dinov2"


class DinoV2ViT(TimmViTEncoder):
    """DINOv2 as an encoder: ``[B, V, 3, H, W] -> [B, V, (H/14)*(W/14), embed_dim]`` at ``image_size``."""

    Config: ClassVar[type[DinoV2ViTConfig]] = DinoV2ViTConfig
    test_config: ClassVar[dict[str, Any]] = {"variant": "tiny", "image_size": [28, 28]}

    def __init__(self, config: DinoV2ViTConfig) -> None:
        overrides: dict[str, Any] = (
            {"embed_dim": 32, "depth": 2, "num_heads": 2} if config.variant == "tiny" else {}
        )
        vit = timm.create_model(
            timm_model_name(config),
            pretrained=False,
            img_size=config.image_size,
            num_classes=0,
            global_pool="",
            drop_path_rate=config.drop_path_rate,
            **overrides,
        )
        if config.weights is not None:
            source = read_state_dict(config.weights, "dinov2-vit", HOW_TO_GET)
            load_exact(vit, checkpoint_filter_fn(source, vit), "dinov2-vit", config.weights)
        super().__init__(vit, config.image_size, config.frozen, config.grad_checkpointing)
        self.config = config
