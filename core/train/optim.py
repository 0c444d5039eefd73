"""Optimizer, learning-rate schedule and EMA of a training stage.

Parameter groups: one per (depth, decays) pair. A parameter at depth ``d`` of a model whose
``layer_depths()`` top is ``T`` trains at ``lr * layer_decay ** (T - d)``; 1-D parameters (norm weights,
biases, scalars) and any ``*.bias`` get no weight decay. The schedule multiplies every group's lr by
:func:`warmup_cosine`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lca.errors import LcaError


@dataclass(frozen=True)
class GroupSpec:
    """The parameters of one optimizer group and why they are together."""

    depth: int
    decay: bool
    lr_scale: float
    names: list[str]


def no_weight_decay(name: str, parameter: nn.Parameter) -> bool:
    """Norm weights and biases (every 1-D or scalar parameter, and anything named ``*.bias``) never decay."""
    return parameter.ndim <= 1 or name.endswith(".bias")


def group_parameters(
    named: Iterable[tuple[str, nn.Parameter]], depths: dict[str, int], top: int, layer_decay: float
) -> list[GroupSpec]:
    """Split the trainable parameters into groups by depth and decay; every one must have a depth."""
    groups: dict[tuple[int, bool], list[str]] = {}
    missing = []
    for name, parameter in named:
        if not parameter.requires_grad:
            continue
        if name not in depths:
            missing.append(name)
            continue
        if not 0 <= depths[name] <= top:
            raise LcaError(f"layer_depths() puts '{name}' at depth {depths[name]}, outside [0, top={top}]")
        groups.setdefault((depths[name], not no_weight_decay(name, parameter)), []).append(name)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise LcaError(f"the model's layer_depths() gives no depth for {len(missing)} parameters: {shown}")
    return [
        GroupSpec(depth, decay, layer_decay ** (top - depth), names)
        for (depth, decay), names in sorted(groups.items())
    ]


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, layer_decay: float
) -> torch.optim.AdamW:
    """AdamW over :func:`group_parameters`; each group records ``depth``, ``lr_scale`` and ``name``."""
    depths, top = model.layer_depths()  # type: ignore[operator]
    parameters = dict(model.named_parameters())
    specs = group_parameters(parameters.items(), depths, top, layer_decay)
    if not specs:
        raise LcaError("nothing to train: every parameter is frozen (check the stage's 'freeze' prefixes)")
    groups = [
        {
            "params": [parameters[n] for n in spec.names],
            "lr": lr * spec.lr_scale,
            "weight_decay": weight_decay if spec.decay else 0.0,
            "depth": spec.depth,
            "lr_scale": spec.lr_scale,
            "name": f"depth{spec.depth}" + ("" if spec.decay else "-no_decay"),
        }
        for spec in specs
    ]
    return torch.optim.AdamW(groups, lr=lr)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """lr factor: linear from ``1 / (warmup + 1)`` up to 1 at ``step == warmup``, then a half cosine down
    to 0 at ``total_steps``. ``step`` counts optimizer steps already taken (LambdaLR's convention)."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    """Warm-up + cosine over the stage; its state_dict holds only numbers (weights_only-loadable)."""

    def factor(step: int) -> float:
        return warmup_cosine(step, warmup_steps, total_steps)

    return LambdaLR(optimizer, factor)


def build_ema(model: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of the weights (and buffers), updated after each optimizer step."""
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
