"""The training objective of the LCA method (DESIGN.md, method step 7), weighted by :class:`LossOptions`:

``total = l1 * (L1(driven) + canonical * L1(canonical))
+ lpips * (LPIPS(driven) + canonical * LPIPS(canonical))
+ mask * (A(driven) + canonical * A(canonical)) + r(step) * (acap * ACAP + asap * ASAP + kl * KL)``

where ``A`` is the alpha-vs-mask loss and ``r`` the linear ramp over ``ramp_steps``. A term whose weight
is 0 is neither computed nor logged (a ramped one is); LPIPS weights load only when its weight is > 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lca.config.sections import LossOptions
from lca.contracts.model import ModelOutput
from lca.losses import terms

REGULARIZATION_WEIGHTS = ("kl",)
"""Names a model may return in ``ModelOutput.regularization``: each is weighted by the LossOptions field."""


@dataclass
class LossTerms:
    """``total`` (what is back-propagated) and each unweighted term with the weight it entered with."""

    total: Tensor
    values: dict[str, Tensor]
    weights: dict[str, float]


class Objective:
    """Computes :class:`LossTerms` from a :class:`ModelOutput` and the batch's targets."""

    def __init__(self, options: LossOptions) -> None:
        self.options = options
        self.part_weights = terms.part_weight_vector(options.part_weights)
        self.lpips: nn.Module | None = None
        if options.lpips > 0:
            from lca.lpips_weights import load_lpips  # heavy (torchvision); only when LPIPS is on

            weights = Path(options.lpips_weights) if options.lpips_weights else None
            self.lpips = load_lpips(options.lpips_net, weights).eval().requires_grad_(False)

    def to(self, device: torch.device | str) -> Objective:
        self.part_weights = self.part_weights.to(device)
        if self.lpips is not None:
            self.lpips.to(device)
        return self

    def __call__(self, output: ModelOutput, batch: Any, step: int) -> LossTerms:
        """``batch`` is a :class:`lca.contracts.sample.Batch`; only ``batch.targets`` is read."""
        o = self.options
        targets = batch.targets
        image, mask, valid = targets.images, targets.masks, targets.valid
        values: dict[str, Tensor] = {}
        weights: dict[str, float] = {}

        def add(name: str, weight: float, compute: Any, ramp: float = 1.0) -> None:
            # Computed whenever configured, even while ramped to 0: parameters that only a regulariser reaches
            # must still get a (zero) gradient, or DDP reports them unused.
            if weight > 0:
                values[name] = compute()
                weights[name] = weight * ramp

        renders = [("driven", output.driven, output.driven_alpha, 1.0)]
        if output.canonical is not None and o.canonical > 0:
            renders.append(("canonical", output.canonical, output.canonical_alpha, o.canonical))
        for prefix, render, alpha, scale in renders:
            add(f"{prefix}/l1", o.l1 * scale, lambda r=render: terms.masked_l1(r, image, mask, valid))
            if self.lpips is not None:
                lpips = self.lpips
                add(
                    f"{prefix}/lpips",
                    o.lpips * scale,
                    lambda r=render, net=lpips: terms.lpips_loss(net, r, image, mask, valid),
                )
            if alpha is not None:
                add(f"{prefix}/mask", o.mask * scale, lambda a=alpha: terms.mask_loss(a, mask, valid))

        ramp = terms.linear_ramp(step, o.ramp_steps)
        parts = output.part_labels
        add(
            "acap",
            o.acap,
            lambda: terms.acap_loss(output.offsets, parts, self.part_weights, o.acap_threshold),
            ramp,
        )
        add(
            "asap",
            o.asap,
            lambda: terms.asap_loss(output.scales, parts, self.part_weights, o.asap_threshold),
            ramp,
        )
        for name, value in output.regularization.items():
            if name not in REGULARIZATION_WEIGHTS:
                raise ValueError(
                    f"the model returned a regularization term '{name}' that the loss config cannot weigh; "
                    f"known terms: {', '.join(REGULARIZATION_WEIGHTS)}"
                )
            add(name, getattr(o, name), lambda v=value: v, ramp)

        total = sum((weights[k] * v for k, v in values.items()), start=output.driven.new_zeros(()))
        return LossTerms(total=total, values=values, weights=weights)
