"""``regularizer``: weighs one named scalar the model computed itself (``ModelOutput.regularization``), such
as the expression code's ``kl``. One term per key, so every regulariser a model returns has its own weight."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from lca.contracts.loss import Loss, LossConfig, LossContext
from lca.contracts.model import ModelOutput
from lca.contracts.sample import Batch


class RegularizerConfig(LossConfig):
    key: str
    """The ``ModelOutput.regularization`` key this term weighs (e.g. ``kl``)."""


class Regularizer(Loss):
    """``output.regularization[key]`` as is; ramped. Absent when the model does not return that key (a
    pipeline without the driver that computes it)."""

    Config: ClassVar[type[RegularizerConfig]] = RegularizerConfig
    ramped: ClassVar[bool] = True
    test_config: ClassVar[dict[str, Any]] = {"weight": 1.0, "key": "kl"}

    @classmethod
    def regularization_keys(cls, config: LossConfig) -> tuple[str, ...]:
        assert isinstance(config, RegularizerConfig)
        return (config.key,)

    def forward(self, output: ModelOutput, batch: Batch, context: LossContext) -> Tensor | None:
        return output.regularization.get(self.config.key)
