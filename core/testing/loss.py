"""Conformance of a ``loss`` term: it subclasses the contract, returns a finite scalar (or None) on small
random model outputs, its gradient reaches the output tensors, the objective leaves it out at weight 0 and
weighs it by name otherwise, and it survives ``copy.deepcopy`` and pickling (DDP and checkpoints copy it).

The batch handed to the term holds ``targets`` (images, masks, valid) only: the contract promises that a
term reads nothing else, and the check keeps it to that promise.
"""

from __future__ import annotations

import copy
import pickle
import warnings
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from lca.config.sections import LossOptions
from lca.contracts.loss import Loss, LossConfig, LossContext, Render
from lca.contracts.model import ModelOutput
from lca.contracts.template import PART_NAMES
from lca.losses.objective import Objective
from lca.lpips_weights import RandomLpipsBackboneWarning
from lca.registry import Registry

SIZE = 32
"""Image edge of the checks: the smallest that LPIPS' AlexNet accepts with room to spare."""


def loss_inputs(
    keys: tuple[str, ...] = (), seed: int = 0, b: int = 2, m: int = 2, n: int = 12, k: int = 2
) -> tuple[ModelOutput, Any]:
    """A random :class:`ModelOutput` (every tensor a leaf requiring grad; a canonical render too; a scalar
    under each regularization key of ``keys``) and a batch holding ``targets`` only, one view padded."""
    g = torch.Generator().manual_seed(seed)

    def leaf(*shape: int, scale: float = 1.0, shift: float = 0.0) -> Tensor:
        return (torch.rand(shape, generator=g) * scale + shift).requires_grad_()

    output = ModelOutput(
        driven=leaf(b, m, 3, SIZE, SIZE),
        driven_alpha=leaf(b, m, 1, SIZE, SIZE),
        offsets=leaf(b, n, k, 3, scale=0.1, shift=-0.05),
        scales=leaf(b, n, k, 3, scale=0.05, shift=0.001),
        part_labels=torch.arange(n) % len(PART_NAMES),
        canonical=leaf(b, m, 3, SIZE, SIZE),
        canonical_alpha=leaf(b, m, 1, SIZE, SIZE),
        regularization={key: leaf() for key in keys},
    )
    valid = torch.ones(b, m, dtype=torch.bool)
    valid[-1, -1] = False
    targets = SimpleNamespace(
        images=torch.rand(b, m, 3, SIZE, SIZE, generator=g),
        masks=(torch.rand(b, m, 1, SIZE, SIZE, generator=g) > 0.5).float(),
        valid=valid,
    )
    return output, SimpleNamespace(targets=targets)


def _tensors(output: ModelOutput) -> dict[str, Tensor]:
    named = {
        "driven": output.driven,
        "driven_alpha": output.driven_alpha,
        "offsets": output.offsets,
        "scales": output.scales,
        "canonical": output.canonical,
        "canonical_alpha": output.canonical_alpha,
    }
    named.update({f"regularization['{key}']": value for key, value in output.regularization.items()})
    return {key: value for key, value in named.items() if value is not None}


def _build(registry: Registry, name: str, params: dict[str, Any]) -> Loss:
    with warnings.catch_warnings():  # a test build of lpips runs on its random backbone, knowingly
        warnings.simplefilter("ignore", RandomLpipsBackboneWarning)
        return registry.build("loss", name, params, part_weights=dict.fromkeys(PART_NAMES, 1.0))


def check_loss(registry: Registry, name: str) -> None:
    """Check the loss component ``name`` of ``registry``, built from its ``test_config`` (weight 1.0 unless
    that sets one); raises ``AssertionError`` naming the term and what failed."""
    cls = registry.load("loss", name)
    assert isinstance(cls, type) and issubclass(cls, Loss), f"loss '{name}' does not subclass Loss"
    assert issubclass(cls.Config, LossConfig), f"loss '{name}': Config does not derive from LossConfig"
    params = {"weight": 1.0, **cls.test_config}
    torch.manual_seed(0)
    term = _build(registry, name, params)
    keys = cls.regularization_keys(term.config)
    assert isinstance(keys, tuple) and all(isinstance(key, str) for key in keys), (
        f"loss '{name}': regularization_keys must return a tuple of str, got {keys!r}"
    )

    output, batch = loss_inputs(keys)
    driven = Render("driven", output.driven, output.driven_alpha)
    value = term(output, batch, LossContext(step=0, render=driven))
    assert isinstance(value, Tensor), f"loss '{name}' returned {value!r} on the standard inputs, not a tensor"
    assert value.dim() == 0 and value.is_floating_point(), (
        f"loss '{name}': value of shape {tuple(value.shape)}"
    )
    assert torch.isfinite(value), f"loss '{name}': non-finite value {value.item()}"
    value.backward()
    grads = {key: tensor.grad for key, tensor in _tensors(output).items() if tensor.grad is not None}
    assert grads, f"loss '{name}': no gradient reaches the model output"
    assert all(torch.isfinite(grad).all() for grad in grads.values()), f"loss '{name}': non-finite gradient"
    assert any(grad.abs().sum() > 0 for grad in grads.values()), f"loss '{name}': zero gradient everywhere"
    if cls.per_render:
        canonical = Render("canonical", output.canonical, output.canonical_alpha)
        other = term(output, batch, LossContext(step=0, render=canonical))
        assert other is None or (other.dim() == 0 and torch.isfinite(other)), (
            f"loss '{name}': canonical value"
        )

    for copied in (copy.deepcopy(term), pickle.loads(pickle.dumps(term))):
        again = copied(output, batch, LossContext(step=0, render=driven))
        assert again is not None and torch.equal(again, value.detach()), (
            f"loss '{name}': a copy computes another value"
        )

    def objective(weight: float) -> Objective:
        options = LossOptions(ramp_steps=4, terms={name: {"type": name, **params, "weight": weight}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomLpipsBackboneWarning)
            return Objective(options, registry)

    off = objective(0.0)(output, batch, step=2)
    assert not off.values and off.total.item() == 0.0, f"loss '{name}' at weight 0 still counts: {off.values}"
    on = objective(2.0)(output, batch, step=2)
    labels = [f"driven/{name}", f"canonical/{name}"] if cls.per_render else [name]
    assert labels[0] in on.values, f"loss '{name}': logged as {list(on.values)}, not {labels[0]}"
    assert set(on.values) <= set(labels), f"loss '{name}': logged as {list(on.values)}"
    expected = 2.0 * (0.5 if cls.ramped else 1.0)
    assert on.weights[labels[0]] == expected, f"loss '{name}': weight {on.weights[labels[0]]}, not {expected}"
