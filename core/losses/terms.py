"""Loss terms as pure functions of tensors (no config, no model), each checked in closed form by the tests.

Conventions: images ``[B, M, 3, H, W]`` in [0, 1], masks and alphas ``[B, M, 1, H, W]`` in [0, 1], and
``valid [B, M]`` bool marks real (non-padding) target views; padded views never count. Regularisers take
per-Gaussian tensors ``[B, N, K, 3]`` and the body part of each anchor ``parts [N]``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from lca.contracts.template import PART_NAMES


def _view_weights(valid: Tensor, like: Tensor) -> Tensor:
    """``valid [B, M]`` -> float weights broadcastable against ``like [B, M, C, H, W]``."""
    return valid.to(like.dtype).reshape(*valid.shape, *([1] * (like.dim() - valid.dim())))


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor, valid: Tensor) -> Tensor:
    """Mean absolute error over the subject's pixels of the valid views:
    ``sum(mask * |pred - target|) / (C * sum(mask))`` (0 when no pixel counts)."""
    weight = mask * _view_weights(valid, mask)
    error = (weight * (pred - target).abs()).sum()
    return error / (weight.sum() * pred.shape[-3]).clamp(min=1e-8)


def mask_loss(alpha: Tensor, mask: Tensor, valid: Tensor) -> Tensor:
    """Mean ``|alpha - mask|`` over all pixels of the valid views: silhouettes match, no haze."""
    weight = _view_weights(valid, mask).expand_as(mask)
    return (weight * (alpha - mask).abs()).sum() / weight.sum().clamp(min=1e-8)


def lpips_loss(network: nn.Module, pred: Tensor, target: Tensor, mask: Tensor, valid: Tensor) -> Tensor:
    """LPIPS between the subject cut-outs (``image * mask``) of the valid views, averaged over those views.

    ``network`` is an :class:`lpips.LPIPS` (see :func:`lca.lpips_weights.load_lpips`); it takes [0, 1]
    images with ``normalize=True``."""
    keep = valid.reshape(-1)
    if not bool(keep.any()):
        return pred.sum() * 0.0
    flat = lambda x: x.flatten(0, 1)[keep]  # noqa: E731 - [B, M, ...] -> [valid views, ...]
    cut_pred, cut_target = flat(pred * mask), flat(target * mask)
    return network(cut_pred, cut_target, normalize=True).mean()


def part_weight_vector(weights: Mapping[str, float], device: torch.device | None = None) -> Tensor:
    """``{part name: weight}`` -> a ``[len(PART_NAMES)]`` tensor in label order; parts not named weigh 1."""
    unknown = sorted(set(weights) - set(PART_NAMES))
    if unknown:
        raise ValueError(f"loss.part_weights has unknown body parts {unknown}; parts are {list(PART_NAMES)}")
    return torch.tensor([float(weights.get(name, 1.0)) for name in PART_NAMES], device=device)


def _per_part_mean(per_gaussian: Tensor, parts: Tensor, part_weights: Tensor) -> Tensor:
    """Mean over ``[B, N, K]`` of ``per_gaussian`` times the weight of each anchor's part."""
    weight = part_weights.to(per_gaussian)[parts]  # [N]
    return (per_gaussian * weight[None, :, None]).mean()


def acap_loss(offsets: Tensor, parts: Tensor, part_weights: Tensor, threshold: float) -> Tensor:
    """As-close-as-possible: ``mean(w_part * relu(|offset| - threshold))``: stay near the anchor."""
    return _per_part_mean(torch.relu(offsets.norm(dim=-1) - threshold), parts, part_weights)


def asap_loss(scales: Tensor, parts: Tensor, part_weights: Tensor, threshold: float) -> Tensor:
    """As-spherical-as-possible: ``mean(w_part * relu(max(scale) / min(scale) - threshold))``."""
    ratio = scales.amax(dim=-1) / scales.amin(dim=-1).clamp(min=1e-12)
    return _per_part_mean(torch.relu(ratio - threshold), parts, part_weights)


def linear_ramp(step: int, ramp_steps: int) -> float:
    """Weight factor rising linearly from 0 at step 0 to 1 at ``ramp_steps`` (always 1 when it is 0)."""
    if ramp_steps <= 0:
        return 1.0
    return min(1.0, max(0, step) / ramp_steps)
