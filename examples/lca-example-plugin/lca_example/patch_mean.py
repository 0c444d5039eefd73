"""An encoder that any researcher could write in ten minutes: average-pool each view into patches
and project the mean colours to tokens. It shows the whole contract of the ``encoder`` kind."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.encoder import Encoder, EncoderOutput, check_images


class PatchMeanConfig(ComponentConfig):
    dim: int = Field(64, gt=0)
    """Token width."""
    grid: int = Field(8, gt=0)
    """Patches per side (the image is pooled to grid x grid)."""


class PatchMeanEncoder(Encoder):
    Config: ClassVar[type[PatchMeanConfig]] = PatchMeanConfig
    test_config: ClassVar[dict[str, Any]] = {"dim": 16, "grid": 4}  # the size lca.testing builds it at

    def __init__(self, config: PatchMeanConfig) -> None:
        super().__init__()
        self.config = config
        self.project = nn.Linear(3, config.dim)

    @property
    def out_dim(self) -> int:
        return self.config.dim

    def forward(self, images: Tensor) -> EncoderOutput:
        check_images(images, "encoder 'patch-mean'")
        batch, views = images.shape[:2]
        pooled = nn.functional.adaptive_avg_pool2d(images.flatten(0, 1), self.config.grid)
        tokens = self.project(pooled.flatten(2).transpose(1, 2))
        return EncoderOutput(tokens.reshape(batch, views, -1, self.config.dim), (self.config.grid,) * 2)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return [list(self.project.parameters())]
