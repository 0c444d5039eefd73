"""The training objective of the LCA method (docs/architecture.md, method step 7): the named terms of
``loss.terms``, each a component of kind ``loss`` (:mod:`lca.contracts.loss`) built through the registry,
so that a new term is one file plus one registry line:

``total = sum over renders r (driven: scale 1, canonical: scale loss.canonical) of
sum over per-render terms t of w_t * scale * t(r)
+ sum over the other terms t of w_t * ramp(step) ** [t is ramped] * t``

where ``ramp`` rises linearly over ``loss.ramp_steps``. A term whose weight is 0 is neither built, computed
nor logged (a ramped one is, at ramp 0: see :meth:`Objective.__call__`), so LPIPS loads its network only
when its weight is > 0. Values are added renders first (driven, then canonical, each in term order), then
the other terms in term order; the sum's order is part of the result's bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lca.config.defaults import REGULARIZER_LOSS
from lca.config.pipeline import validate_loss_terms
from lca.config.sections import LossOptions
from lca.contracts.loss import Loss, LossContext, Render
from lca.contracts.model import ModelOutput
from lca.contracts.sample import Batch
from lca.errors import ConfigError, ConfigIssue, LcaError
from lca.losses.terms import linear_ramp
from lca.registry import Registry, default_registry


@dataclass
class LossTerms:
    """``total`` (what is back-propagated) and each unweighted term with the weight it entered with."""

    total: Tensor
    values: dict[str, Tensor]
    weights: dict[str, float]


class Objective:
    """Computes :class:`LossTerms` from a :class:`ModelOutput` and the batch's targets."""

    def __init__(self, options: LossOptions, registry: Registry | None = None) -> None:
        """Build the terms of ``options.terms`` with weight > 0 from ``registry`` (default: the process-wide
        one); a term that does not validate raises one :class:`ConfigError` naming every problem."""
        registry = registry or default_registry()
        self.options = options
        issues: list[ConfigIssue] = []
        configs = validate_loss_terms(registry, options.terms, issues)
        if issues:
            raise ConfigError("loss config", issues)
        self.terms: dict[str, Loss] = {}
        self.weighed: dict[str, str] = {}
        """``{ModelOutput.regularization key: name of the term weighing it}``, terms at weight 0 included."""
        for name, term in configs.items():
            for key in registry.load("loss", term.type).regularization_keys(term.config):
                self.weighed[key] = name
            if term.config.weight > 0:
                self.terms[name] = registry.build(
                    "loss", term.type, term.config, part_weights=options.part_weights
                )

    def to(self, device: torch.device | str) -> Objective:
        for term in self.terms.values():
            term.to(device)
        return self

    def __call__(self, output: ModelOutput, batch: Batch, step: int) -> LossTerms:
        """Only ``batch.targets`` is read from ``batch``. Ramped terms are computed even while their ramp is
        0: parameters that only a regulariser reaches must still get a (zero) gradient, or DDP reports
        them unused."""
        self._check_regularization(output)
        o = self.options
        ramp = linear_ramp(step, o.ramp_steps)
        values: dict[str, Tensor] = {}
        weights: dict[str, float] = {}

        def add(label: str, term: Loss, context: LossContext, scale: float) -> None:
            value = term(output, batch, context)
            if value is not None:
                values[label] = value
                weights[label] = term.config.weight * scale * (ramp if term.ramped else 1.0)

        renders = [(Render("driven", output.driven, output.driven_alpha), 1.0)]
        if output.canonical is not None and o.canonical > 0:
            renders.append((Render("canonical", output.canonical, output.canonical_alpha), o.canonical))
        for render, scale in renders:
            context = LossContext(step=step, render=render)
            for name, term in self.terms.items():
                if term.per_render:
                    add(f"{render.name}/{name}", term, context, scale)
        context = LossContext(step=step, render=renders[0][0])
        for name, term in self.terms.items():
            if not term.per_render:
                add(name, term, context, 1.0)

        total = sum((weights[k] * v for k, v in values.items()), start=output.driven.new_zeros(()))
        return LossTerms(total=total, values=values, weights=weights)

    def _check_regularization(self, output: ModelOutput) -> None:
        """A regulariser the model computes but nothing weighs would silently not train: refuse it."""
        for key in output.regularization:
            if key not in self.weighed:
                terms = ", ".join(f"{name} ({body['type']})" for name, body in self.options.terms.items())
                raise LcaError(
                    f"the model returned a regularization term '{key}' that no loss term weighs; loss terms: "
                    f"{terms or '(none)'}. Add one that weighs it, e.g. the override 'loss.terms.{key}="
                    f"{{type: {REGULARIZER_LOSS}, key: {key}, weight: 0.001}}' (weight 0 ignores it)."
                )
