"""Parameter groups, layer-wise lr decay, weight decay exclusions and the warm-up + cosine schedule."""

from __future__ import annotations

import math

import pytest
import torch
from train_toy import ToyModel

from lca.errors import LcaError
from lca.train.optim import build_optimizer, build_scheduler, warmup_cosine


def _lr_of(optimizer: torch.optim.Optimizer, parameter: torch.nn.Parameter) -> dict:
    groups = [g for g in optimizer.param_groups if any(p is parameter for p in g["params"])]
    assert len(groups) == 1
    return groups[0]


def test_layer_decay_puts_the_intended_lr_on_every_parameter() -> None:
    model = ToyModel(4)
    model.encoder.weight.requires_grad_(False)
    optimizer = build_optimizer(model, lr=0.1, weight_decay=0.05, layer_decay=0.5)
    depths, top = model.layer_depths()
    seen = 0
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            assert all(all(p is not parameter for p in g["params"]) for g in optimizer.param_groups)
            continue
        group = _lr_of(optimizer, parameter)
        assert group["lr"] == pytest.approx(0.1 * 0.5 ** (top - depths[name])), name
        decays = parameter.ndim > 1 and not name.endswith(".bias")
        assert group["weight_decay"] == (0.05 if decays else 0.0), name
        seen += 1
    assert seen == len(list(model.parameters())) - 1
    assert {g["depth"] for g in optimizer.param_groups} == {0, 1, 2}


def test_schedule_scales_every_group_alike() -> None:
    model = ToyModel(4)
    optimizer = build_optimizer(model, lr=1.0, weight_decay=0.0, layer_decay=0.1)
    scheduler = build_scheduler(optimizer, warmup_steps=2, total_steps=10)
    for _ in range(6):
        optimizer.step()
        scheduler.step()
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(0.1 ** (2 - group["depth"]) * 0.5)  # cosine halfway: 4 of 8


def test_warmup_cosine_closed_form() -> None:
    assert [warmup_cosine(s, 2, 10) for s in (0, 1, 2)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert warmup_cosine(4, 2, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 2 / 8)))
    assert warmup_cosine(10, 2, 10) == pytest.approx(0.0)


def test_a_parameter_without_depth_is_named() -> None:
    class Partial(ToyModel):
        def layer_depths(self) -> tuple[dict[str, int], int]:
            depths, top = super().layer_depths()
            depths.pop("head.weight")
            return depths, top

    with pytest.raises(LcaError, match=r"no depth for 1 parameters: head\.weight"):
        build_optimizer(Partial(4), lr=0.1, weight_decay=0.0, layer_decay=1.0)
