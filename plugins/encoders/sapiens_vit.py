"""``sapiens-vit``: the Sapiens ViT (Khirodkar et al., ECCV 2024) built with timm, loading the official
MAE pretrain checkpoints from a local path.

Architectures (facebookresearch/sapiens ``pretrain/mmpretrain/models/backbones/vision_transformer.py``,
``arch_zoo``; patch 16, MLP ratio 4, qkv bias, LayerNorm eps 1e-6, final norm):

=======  ==========  ======  =====
variant  embed dim   layers  heads
=======  ==========  ======  =====
0.3b     1024        24      16
0.6b     1280        32      16
1b       1536        40      24
2b       1920        48      32
tiny     64          2       2     (tests only, not a Sapiens size)
=======  ==========  ======  =====

Pretraining ran at 1024x1024 (64x64 patches, plus a class token); the downstream Sapiens models run at
1024x768 without the class token, which is what this encoder does: 64x48 = 3072 tokens per view.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor

from lca.component import ComponentConfig
from lca.errors import WeightsMismatchError
from lca_plugins.encoders.timm_vit import TimmViTEncoder, load_exact, read_state_dict

# (embed_dim, depth, num_heads) per variant, from the Sapiens arch_zoo.
SAPIENS_ARCHS: dict[str, tuple[int, int, int]] = {
    "tiny": (64, 2, 2),
    "0.3b": (1024, 24, 16),
    "0.6b": (1280, 32, 16),
    "1b": (1536, 40, 24),
    "2b": (1920, 48, 32),
}
PATCH_SIZE = 16
HOW_TO_GET = (
    "download the Sapiens pretrain checkpoint (e.g. sapiens_1b_epoch_173.pth) from the links in "
    "https://github.com/facebookresearch/sapiens (docs/PRETRAIN_README.md)"
)

# Official (mmpretrain) name -> timm name, for the parts below the ``backbone.`` prefix.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^patch_embed\.projection\.", "patch_embed.proj."),
    (r"^layers\.(\d+)\.ln1\.", r"blocks.\1.norm1."),
    (r"^layers\.(\d+)\.ln2\.", r"blocks.\1.norm2."),
    (r"^layers\.(\d+)\.attn\.qkv\.", r"blocks.\1.attn.qkv."),
    (r"^layers\.(\d+)\.attn\.proj\.", r"blocks.\1.attn.proj."),
    (r"^layers\.(\d+)\.ffn\.layers\.0\.0\.", r"blocks.\1.mlp.fc1."),
    (r"^layers\.(\d+)\.ffn\.layers\.1\.", r"blocks.\1.mlp.fc2."),
    (r"^ln1\.", "norm."),
    (r"^pos_embed$", "pos_embed"),
)


class SapiensViTConfig(ComponentConfig):
    variant: Literal["tiny", "0.3b", "0.6b", "1b", "2b"] = "1b"
    """Sapiens size (embed dim / depth / heads in the module doc); ``tiny`` is a test-size stand-in."""
    image_size: tuple[PositiveInt, PositiveInt] = (1024, 768)
    """Working resolution (H, W), a multiple of 16; inputs are resized to it. Sapiens runs at 1024x768."""
    weights: str | None = None
    """Local path of an official Sapiens pretrain checkpoint (.pth, or .safetensors with the same names);
    None = random initialisation."""
    frozen: bool = False
    """Freeze every encoder parameter (and keep it in eval mode)."""
    grad_checkpointing: bool = False
    """Recompute each ViT block's activations in the backward pass instead of storing them."""
    drop_path_rate: float = Field(0.0, ge=0, lt=1)
    """Stochastic depth rate of the last block (linearly increasing from 0)."""


def sapiens_to_timm(state_dict: dict[str, Tensor], grid: tuple[int, int]) -> dict[str, Tensor]:
    """Rename an official Sapiens state dict onto timm's ``VisionTransformer`` (class token dropped).

    Accepts the whole MAE model (``backbone.*``, with ``neck.*`` / ``head.*`` of the MAE decoder ignored)
    or a bare backbone. The position embedding (``[1, 1 + g*g, C]`` at pretraining) loses its class-token
    row and is resampled to ``grid`` with bicubic interpolation, as Sapiens' own ``resize_pos_embed``
    does (no antialiasing). Unknown backbone names are an error, never silently dropped.
    """
    if any(k.startswith("backbone.") for k in state_dict):
        state_dict = {k[len("backbone.") :]: v for k, v in state_dict.items() if k.startswith("backbone.")}
    out: dict[str, Tensor] = {}
    unknown: list[str] = []
    for name, tensor in state_dict.items():
        if name == "cls_token":
            continue  # the encoder runs without a class token, as Sapiens' downstream models do
        for pattern, replacement in _RENAMES:
            new, hits = re.subn(pattern, replacement, name)
            if hits:
                out[new] = tensor
                break
        else:
            unknown.append(name)
    if unknown:
        raise WeightsMismatchError(
            f"sapiens-vit: unrecognised checkpoint parameters: {', '.join(sorted(unknown))}"
        )
    if "pos_embed" in out:
        pos = out["pos_embed"]
        tokens = pos.shape[1]
        side = round((tokens - 1) ** 0.5)
        if side * side == tokens - 1:
            pos = pos[:, 1:]
        else:
            side = round(tokens**0.5)
            if side * side != tokens:
                raise WeightsMismatchError(f"sapiens-vit: pos_embed of {tokens} tokens is not a square grid")
        out["pos_embed"] = resample_abs_pos_embed(
            pos, new_size=list(grid), old_size=[side, side], num_prefix_tokens=0, antialias=False
        )
    return out


class SapiensViT(TimmViTEncoder):
    """The Sapiens ViT as an encoder: ``[B, V, 3, H, W] -> [B, V, (H/16)*(W/16), embed_dim]``, with
    ``(H, W) = image_size``."""

    Config: ClassVar[type[SapiensViTConfig]] = SapiensViTConfig
    test_config: ClassVar[dict[str, Any]] = {"variant": "tiny", "image_size": [32, 32]}

    def __init__(self, config: SapiensViTConfig) -> None:
        embed_dim, depth, heads = SAPIENS_ARCHS[config.variant]
        vit = VisionTransformer(
            img_size=config.image_size,
            patch_size=PATCH_SIZE,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=heads,
            mlp_ratio=4.0,
            qkv_bias=True,
            class_token=False,
            num_classes=0,
            global_pool="",
            drop_path_rate=config.drop_path_rate,
        )
        if config.weights is not None:
            source = read_state_dict(config.weights, "sapiens-vit", HOW_TO_GET)
            grid = (config.image_size[0] // PATCH_SIZE, config.image_size[1] // PATCH_SIZE)
            load_exact(vit, sapiens_to_timm(source, grid), "sapiens-vit", config.weights)
        super().__init__(vit, config.image_size, config.frozen, config.grad_checkpointing)
        self.config = config
