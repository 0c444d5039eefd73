"""``mask``: the render's alpha against the subject mask, so that silhouettes match and no haze is left."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from lca.contracts.loss import Loss, LossConfig, LossContext
from lca.contracts.model import ModelOutput
from lca.contracts.sample import Batch
from lca.losses.terms import mask_loss


class MaskConfig(LossConfig):
    """The mask loss has no params besides the shared ``weight``."""


class Mask(Loss):
    """Mean ``|alpha - mask|`` over every pixel of the valid target views (skipped for a render without
    alpha). At weight 0.1 the tiny model kept a halo of alpha 0.06-0.1 around the person
    (docs/training.md)."""

    Config: ClassVar[type[MaskConfig]] = MaskConfig
    per_render: ClassVar[bool] = True
    test_config: ClassVar[dict[str, Any]] = {"weight": 1.0}

    def forward(self, output: ModelOutput, batch: Batch, context: LossContext) -> Tensor | None:
        alpha = context.render.alpha
        if alpha is None:
            return None
        return mask_loss(alpha, batch.targets.masks, batch.targets.valid)
