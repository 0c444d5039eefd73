"""Preview grids: one row per target view of the first sample,
``reference | target | canonical render | driven render | error map``, saved as PNG and logged.

The target is shown as the losses and ``lca eval`` see it, the person over black (image x mask), and the
error map compares the driven render with that: the photographed background is not what the model renders,
and an error map over it would be all heat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.utils import make_grid, save_image

from lca.contracts.model import ModelOutput


def _fit(image: Tensor, size: tuple[int, int]) -> Tensor:
    """``[3, h, w]`` -> ``[3, H, W]`` (references may differ in size from targets)."""
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]


def error_map(pred: Tensor, target: Tensor) -> Tensor:
    """Per-pixel mean absolute error ``[3, H, W] -> [3, H, W]`` as heat: black 0, red, yellow >= 0.5."""
    error = (pred - target).abs().mean(dim=0).mul(2.0).clamp(0, 1)
    return torch.stack([error.mul(2).clamp(max=1), (error * 2 - 1).clamp(min=0), torch.zeros_like(error)])


def preview_grid(output: ModelOutput, batch: Any) -> Tensor:
    """The grid of sample 0 as a ``[3, rows * H, 5 * W]`` float image in [0, 1]."""
    targets = (batch.targets.images[0] * batch.targets.masks[0]).detach().float().cpu()
    valid = batch.targets.valid[0].cpu()
    references = batch.references.images[0].detach().float().cpu()
    driven = output.driven[0].detach().float().cpu().clamp(0, 1)
    canonical = (
        output.canonical[0].detach().float().cpu().clamp(0, 1) if output.canonical is not None else None
    )
    size = tuple(targets.shape[-2:])
    tiles = []
    for m in range(targets.shape[0]):
        if not bool(valid[m]):
            continue
        reference = _fit(references[m], size) if m < references.shape[0] else torch.zeros_like(targets[m])
        middle = canonical[m] if canonical is not None else torch.zeros_like(targets[m])
        tiles += [reference, targets[m], middle, driven[m], error_map(driven[m], targets[m])]
    return make_grid(torch.stack(tiles), nrow=5, padding=2, pad_value=1.0)


def save_preview(grid: Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
