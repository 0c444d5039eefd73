"""``acap``: as-close-as-possible, a hinge on each canonical Gaussian's distance from its anchor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from lca.contracts.loss import Loss, LossConfig, LossContext
from lca.contracts.model import ModelOutput
from lca.contracts.sample import Batch
from lca.losses.terms import acap_loss, part_weight_vector


class AcapConfig(LossConfig):
    threshold: float = Field(0.02, ge=0)
    """Offsets shorter than this (metres) are free."""


class Acap(Loss):
    """``mean(w_part * relu(|offset| - threshold))`` over ``ModelOutput.offsets``; ramped. ``w_part`` is the
    build context ``part_weights`` (``loss.part_weights``)."""

    Config: ClassVar[type[AcapConfig]] = AcapConfig
    ramped: ClassVar[bool] = True
    test_config: ClassVar[dict[str, Any]] = {"weight": 1.0, "threshold": 0.0}

    def __init__(
        self, config: AcapConfig, *, part_weights: Mapping[str, float] | None = None, **context: Any
    ) -> None:
        super().__init__(config)
        self.register_buffer("part_weights", part_weight_vector(part_weights or {}), persistent=False)

    def forward(self, output: ModelOutput, batch: Batch, context: LossContext) -> Tensor:
        return acap_loss(output.offsets, output.part_labels, self.part_weights, self.config.threshold)
