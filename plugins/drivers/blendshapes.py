"""``blendshapes``: expression coefficients from the data (ARKit-52 or FLAME) -> embedding."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.driver import Driver


class BlendshapesConfig(ComponentConfig):
    num_coefficients: int = Field(52, ge=1)
    """Coefficients per frame in the ``blendshapes`` signal: 52 for ARKit, else the FLAME expression count."""
    out_dim: int = Field(128, ge=1)
    """Embedding width."""
    hidden_dim: int = Field(256, ge=1)
    """Hidden width of the MLP."""
    num_layers: int = Field(2, ge=0)
    """Hidden layers of the MLP."""


class Blendshapes(Driver):
    """``blendshapes [B, M, K]`` -> MLP -> ``[B, M, out_dim]``: the supervised alternative to the learned
    expression code, for data that comes with tracked coefficients."""

    Config: ClassVar[type[BlendshapesConfig]] = BlendshapesConfig
    test_config: ClassVar[dict[str, Any]] = {"out_dim": 8, "hidden_dim": 16}
    signals: ClassVar[tuple[str, ...]] = ("blendshapes",)

    def __init__(self, config: BlendshapesConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.num_coefficients
        for _ in range(config.num_layers):
            layers += [nn.Linear(width, config.hidden_dim), nn.SiLU()]
            width = config.hidden_dim
        layers.append(nn.Linear(width, config.out_dim))
        self.mlp = nn.Sequential(*layers)

    @property
    def out_dim(self) -> int:
        return self.config.out_dim

    def forward(self, signals: dict[str, Tensor]) -> Tensor:
        return self.mlp(self.signal(signals, "blendshapes", [self.config.num_coefficients]))
