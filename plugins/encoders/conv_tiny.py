"""``conv-tiny``: a small convolutional encoder, for CPU work and tests (no attention, no timm)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.encoder import Encoder, EncoderOutput, check_images


class ConvTinyConfig(ComponentConfig):
    dim: int = Field(64, ge=1)
    """Token width (channels of the last stage)."""
    stages: int = Field(3, ge=1)
    """Stride-2 stages; one token covers ``2**stages`` pixels per side."""
    width: int = Field(16, ge=1)
    """Channels of the first stage (doubled per stage, the last stage has ``dim``)."""
    image_size: tuple[PositiveInt, PositiveInt] = (64, 48)
    """Working resolution (H, W), a multiple of ``2**stages``; inputs are resized to it."""


class ConvTiny(Encoder):
    """Stride-2 ``Conv3x3 -> GroupNorm -> GELU`` stages, then a learned position embedding per grid cell
    (so tokens know where they are, as a ViT's do). Images are used in [0, 1] shifted to [-1, 1]."""

    Config: ClassVar[type[ConvTinyConfig]] = ConvTinyConfig
    test_config: ClassVar[dict[str, Any]] = {"dim": 32, "image_size": [32, 32]}

    def __init__(self, config: ConvTinyConfig) -> None:
        super().__init__()
        stride = 2**config.stages
        if config.image_size[0] % stride or config.image_size[1] % stride:
            raise ValueError(f"conv-tiny: image_size {config.image_size} is not a multiple of {stride}")
        self.config = config
        widths = [config.width * 2**i for i in range(config.stages - 1)] + [config.dim]
        layers, c_in = [], 3
        for c_out in widths:
            layers.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(1, c_out), nn.GELU()
                )
            )
            c_in = c_out
        self.stages = nn.ModuleList(layers)
        self._grid = (config.image_size[0] // stride, config.image_size[1] // stride)
        self.pos_embed = nn.Parameter(torch.randn(1, self._grid[0] * self._grid[1], config.dim) * 0.02)

    @property
    def out_dim(self) -> int:
        return self.config.dim

    def forward(self, images: Tensor) -> EncoderOutput:
        check_images(images, "conv-tiny")
        b, v = images.shape[:2]
        x = images.flatten(0, 1)
        if tuple(x.shape[-2:]) != self.config.image_size:
            x = F.interpolate(
                x, size=self.config.image_size, mode="bilinear", align_corners=False, antialias=True
            )
        x = x * 2.0 - 1.0
        for stage in self.stages:
            x = stage(x)
        tokens = x.flatten(2).transpose(1, 2) + self.pos_embed
        return EncoderOutput(tokens=tokens.unflatten(0, (b, v)), grid=self._grid)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """One group per stage, input first; the position embedding joins the last stage (added there)."""
        groups = [list(stage.parameters()) for stage in self.stages]
        groups[-1].append(self.pos_embed)
        return groups
