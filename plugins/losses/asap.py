"""``asap``: as-spherical-as-possible, a hinge on the anisotropy of each canonical Gaussian."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from lca.contracts.loss import Loss, LossConfig, LossContext
from lca.contracts.model import ModelOutput
from lca.contracts.sample import Batch
from lca.losses.terms import asap_loss, part_weight_vector


class AsapConfig(LossConfig):
    threshold: float = Field(3.0, ge=1)
    """Anisotropy ratios (max / min scale) below this are free."""


class Asap(Loss):
    """``mean(w_part * relu(max(scale) / min(scale) - threshold))`` over ``ModelOutput.scales``; ramped.
    ``w_part`` is the build context ``part_weights`` (``loss.part_weights``)."""

    Config: ClassVar[type[AsapConfig]] = AsapConfig
    ramped: ClassVar[bool] = True
    test_config: ClassVar[dict[str, Any]] = {"weight": 1.0, "threshold": 1.0}

    def __init__(
        self, config: AsapConfig, *, part_weights: Mapping[str, float] | None = None, **context: Any
    ) -> None:
        super().__init__(config)
        self.register_buffer("part_weights", part_weight_vector(part_weights or {}), persistent=False)

    def forward(self, output: ModelOutput, batch: Batch, context: LossContext) -> Tensor:
        return asap_loss(output.scales, output.part_labels, self.part_weights, self.config.threshold)
