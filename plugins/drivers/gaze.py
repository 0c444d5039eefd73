"""``gaze``: the two eyes' gaze directions -> embedding."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.driver import Driver
from lca.model.fourier import fourier_features


class GazeConfig(ComponentConfig):
    out_dim: int = Field(32, ge=1)
    """Embedding width."""
    hidden_dim: int = Field(64, ge=1)
    """Hidden width of the MLP."""
    num_frequencies: int = Field(2, ge=0)
    """Fourier frequencies applied to the unit directions before the MLP (0 = raw directions only)."""


class Gaze(Driver):
    """``gaze [B, M, 2, 3]`` (left, right eye), re-normalised to unit length, Fourier-encoded, -> MLP.

    Directions rather than angles: no wrap-around and no dependence on an angle convention.
    """

    Config: ClassVar[type[GazeConfig]] = GazeConfig
    test_config: ClassVar[dict[str, Any]] = {"out_dim": 8, "hidden_dim": 16}
    signals: ClassVar[tuple[str, ...]] = ("gaze",)

    def __init__(self, config: GazeConfig) -> None:
        super().__init__()
        self.config = config
        width = 2 * 3 * (1 + 2 * config.num_frequencies)
        self.mlp = nn.Sequential(
            nn.Linear(width, config.hidden_dim), nn.SiLU(), nn.Linear(config.hidden_dim, config.out_dim)
        )

    @property
    def out_dim(self) -> int:
        return self.config.out_dim

    def forward(self, signals: dict[str, Tensor]) -> Tensor:
        directions = F.normalize(self.signal(signals, "gaze", [2, 3]), dim=-1)
        return self.mlp(fourier_features(directions, self.config.num_frequencies).flatten(2))
