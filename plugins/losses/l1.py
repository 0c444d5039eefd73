"""``l1``: masked L1 between each render and the target images, over the subject's pixels."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from lca.contracts.loss import Loss, LossConfig, LossContext
from lca.contracts.model import ModelOutput
from lca.contracts.sample import Batch
from lca.losses.terms import masked_l1


class L1Config(LossConfig):
    """L1 has no params besides the shared ``weight``."""


class L1(Loss):
    """``sum(mask * |render - image|) / (3 * sum(mask))`` over the valid target views."""

    Config: ClassVar[type[L1Config]] = L1Config
    per_render: ClassVar[bool] = True
    test_config: ClassVar[dict[str, Any]] = {"weight": 1.0}

    def forward(self, output: ModelOutput, batch: Batch, context: LossContext) -> Tensor:
        targets = batch.targets
        return masked_l1(context.render.color, targets.images, targets.masks, targets.valid)
