"""Contract of the ``loss`` kind: one weighted term of the training objective.

The objective (:class:`lca.losses.Objective`) is the list ``loss.terms`` of a pipeline: named terms, each
``{type: <loss name>, weight: w, ...params}``. It builds every term whose weight is > 0 through the
registry, asks each for one unweighted scalar, and adds them up as ``total = sum(weight * scale * ramp *
value)``. A term is a class, so that a new one is one file plus one registry line, like every other kind.

Context passed at construction (keyword, optional): ``part_weights`` ``{part name: multiplier}``, the
pipeline's ``loss.part_weights`` (body parts of :data:`lca.contracts.template.PART_NAMES`), for terms that
weigh Gaussians by body part. A term ignores context it does not use.

What a term declares (class attributes, read by the objective rather than configured, because they say
what the term *is*):

- ``per_render``: the term compares one render with the targets. It is evaluated on the driven render and,
  when the model has a canonical branch and ``loss.canonical > 0``, again on the canonical render with scale
  ``loss.canonical``; it is logged as ``driven/NAME`` and ``canonical/NAME``. Otherwise it is evaluated
  once, with scale 1, and logged as ``NAME``.
- ``ramped``: a regulariser whose weight rises linearly from 0 to full over ``loss.ramp_steps``.
- :meth:`Loss.regularization_keys`: the keys of ``ModelOutput.regularization`` the term weighs. The objective
  refuses an output carrying a key that no configured term weighs (a weight of 0 counts as weighing it).

Shapes are those of :class:`lca.contracts.model.ModelOutput` and the ``targets`` of
:class:`lca.contracts.sample.Batch` (images ``[B, M, 3, H, W]``, masks and alphas ``[B, M, 1, H, W]``,
``valid [B, M]``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.model import ModelOutput
from lca.contracts.sample import Batch


class LossConfig(ComponentConfig):
    """Fields every loss term shares."""

    weight: float = Field(..., ge=0)
    """Weight of the term in the total; 0 turns it off (neither built nor computed nor logged)."""


@dataclass(frozen=True)
class Render:
    """One set of images a ``per_render`` term compares with the targets."""

    name: str
    """``driven`` or ``canonical``: the prefix of the logged name."""
    color: Tensor
    """``[B, M, 3, H, W]`` the rendered images."""
    alpha: Tensor | None
    """``[B, M, 1, H, W]`` their accumulated opacity, or None if the model has none for this render."""


@dataclass(frozen=True)
class LossContext:
    """What a term may need besides the model output and the batch."""

    step: int
    """Optimizer steps taken so far (the ramp of ``ramped`` terms is applied by the objective)."""
    render: Render
    """The render compared (driven, then canonical) by ``per_render`` terms; the driven one otherwise."""


class Loss(nn.Module, ABC):
    """One term of the objective. An ``nn.Module`` so that networks inside a term (LPIPS) and buffers move
    with ``.to(device)`` and the term deep-copies and pickles like any module."""

    Config: ClassVar[type[LossConfig]]
    per_render: ClassVar[bool] = False
    """Evaluated on each render (driven, canonical) with the canonical scale; see the module doc."""
    ramped: ClassVar[bool] = False
    """Weight ramps linearly over ``loss.ramp_steps`` (regularisers)."""
    test_config: ClassVar[dict[str, Any]] = {}
    """Params of a small, fast build for the conformance checks (:func:`lca.testing.loss.check_loss`);
    ``weight`` is 1.0 unless given here."""

    def __init__(self, config: LossConfig, **context: Any) -> None:
        super().__init__()
        self.config = config

    @classmethod
    def regularization_keys(cls, config: LossConfig) -> tuple[str, ...]:
        """Keys of ``ModelOutput.regularization`` this term weighs. A class method of the config, so that a
        term at weight 0, which is never built, still counts as weighing them."""
        return ()

    @abstractmethod
    def forward(self, output: ModelOutput, batch: Batch, context: LossContext) -> Tensor | None:
        """The unweighted value (a 0-d tensor, differentiable w.r.t. ``output``), or None when the term has
        nothing to compare in this input (e.g. a render without alpha): it is then neither added nor logged.

        Only ``batch.targets`` (images, masks, valid) is meant to be read from the batch."""
