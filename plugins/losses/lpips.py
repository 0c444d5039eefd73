"""``lpips``: LPIPS between the subject cut-outs of each render and the targets (converted weights, no
download; see docs/lpips.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from torch import Tensor

from lca.contracts.loss import Loss, LossConfig, LossContext
from lca.contracts.model import ModelOutput
from lca.contracts.sample import Batch
from lca.losses.terms import lpips_loss


class LpipsConfig(LossConfig):
    net: Literal["alex", "vgg"] = "alex"
    """LPIPS backbone."""
    weights: str | None = None
    """Converted LPIPS weights (.safetensors); None: the toolkit's cache (see `lca lpips convert`)."""
    random_backbone: bool = False
    """Run on a random backbone when the weights file is missing (warns; values are meaningless): for
    plumbing tests only."""


class Lpips(Loss):
    """Frozen LPIPS network on ``render * mask`` vs ``image * mask``, averaged over the valid views. The
    network (torchvision) is imported and loaded only when the term is built, i.e. at weight > 0."""

    Config: ClassVar[type[LpipsConfig]] = LpipsConfig
    per_render: ClassVar[bool] = True
    test_config: ClassVar[dict[str, Any]] = {"weight": 1.0, "random_backbone": True}

    def __init__(self, config: LpipsConfig, **context: Any) -> None:
        super().__init__(config)
        from lca.lpips_weights import load_lpips  # heavy (torchvision)

        weights = Path(config.weights) if config.weights else None
        network = load_lpips(config.net, weights, allow_random_backbone=config.random_backbone)
        self.network = network.eval().requires_grad_(False)

    def forward(self, output: ModelOutput, batch: Batch, context: LossContext) -> Tensor:
        targets = batch.targets
        return lpips_loss(self.network, context.render.color, targets.images, targets.masks, targets.valid)
