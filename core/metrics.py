"""Image metrics for evaluation: PSNR, SSIM and LPIPS from maintained code (torchmetrics, lpips).

Every function takes ``pred`` and ``target`` as float ``[N,3,H,W]`` in [0,1] and returns one value per
image, ``[N]`` (float64 on the CPU). Two optional restrictions, usable together:

- ``mask [N,1,H,W]`` in [0,1]: PSNR and SSIM average their per-pixel terms with these weights; LPIPS,
  whose value is not a per-pixel average, compares both images composited over black outside the mask.
- ``boxes [N,4]`` (x0, y0, x1, y1 in pixels, the store's face box): each pair is cropped to its box
  first (face-region metrics). ``crop_size`` resizes every crop to ``crop_size x crop_size`` (antialiased
  bilinear, the same for both images), which LPIPS needs on small crops. An empty box (x1 <= x0 or
  y1 <= y0 after clipping to the image, the store's "no face") gives NaN for that image; so does an
  all-zero mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lca.errors import LcaError

# Smallest side the Gaussian SSIM window (11 px, reflect padding of 5) accepts.
SSIM_MIN_SIDE = 11
# Smallest input side lpips' backbones accept (measured: AlexNet's strided conv and pools need 31, VGG 16).
LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16, "vgg16": 16}

Metric = Callable[[Tensor, Tensor, Tensor | None], Tensor]


class MetricInputError(LcaError, ValueError):
    """Images, masks or boxes that the metrics cannot take."""


def _check(pred: Tensor, target: Tensor, mask: Tensor | None, boxes: Tensor | None) -> None:
    if pred.ndim != 4 or pred.shape[1] != 3 or pred.shape != target.shape:
        raise MetricInputError(
            f"metrics need pred and target as [N,3,H,W] of the same shape; got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    for name, images in (("pred", pred), ("target", target)):
        if not images.is_floating_point():
            raise MetricInputError(f"metrics need float images in [0,1]; {name} is {images.dtype}")
        low, high = images.min().item(), images.max().item()
        if low < 0.0 or high > 1.0:
            raise MetricInputError(
                f"metrics need images in [0,1]; {name} spans [{low:.4g}, {high:.4g}] (clamp renders first)"
            )
    n, _, h, w = pred.shape
    if mask is not None and tuple(mask.shape) != (n, 1, h, w):
        raise MetricInputError(f"mask must be [N,1,H,W] = {(n, 1, h, w)}; got {tuple(mask.shape)}")
    if boxes is not None and tuple(boxes.shape) != (n, 4):
        raise MetricInputError(
            f"boxes must be [N,4] (x0,y0,x1,y1 pixels) with N={n}; got {tuple(boxes.shape)}"
        )


def pixel_box(box: Tensor, height: int, width: int) -> tuple[int, int, int, int] | None:
    """Integer crop ``(x0, y0, x1, y1)`` covering ``box`` (floor/ceil, clipped), or None if empty."""
    x0, y0, x1, y1 = (float(v) for v in box)
    left, top = max(0, math.floor(x0)), max(0, math.floor(y0))
    right, bottom = min(width, math.ceil(x1)), min(height, math.ceil(y1))
    return (left, top, right, bottom) if right > left and bottom > top else None


def _resize(images: Tensor, size: int) -> Tensor:
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _evaluate(
    metric: Metric,
    pred: Tensor,
    target: Tensor,
    mask: Tensor | None,
    boxes: Tensor | None,
    crop_size: int | None,
    min_side: int,
    name: str,
) -> Tensor:
    """Run ``metric`` on the whole batch, or per image on its box crop; NaN where nothing is left."""
    _check(pred, target, mask, boxes)
    if boxes is None:
        pieces: list[tuple[Tensor, Tensor, Tensor | None] | None] = [(pred, target, mask)]
    else:
        pieces = []
        for index in range(pred.shape[0]):
            crop = pixel_box(boxes[index], pred.shape[2], pred.shape[3])
            if crop is None:
                pieces.append(None)
                continue
            x0, y0, x1, y1 = crop
            window = (slice(index, index + 1), slice(None), slice(y0, y1), slice(x0, x1))
            piece = [pred[window], target[window], None if mask is None else mask[window]]
            if crop_size is not None:
                piece = [None if t is None else _resize(t, crop_size) for t in piece]
            pieces.append((piece[0], piece[1], piece[2]))
    values = []
    for piece in pieces:
        if piece is None:
            values.append(torch.full((1,), math.nan, dtype=torch.float64))
            continue
        side = min(piece[0].shape[-2:])
        if side < min_side:
            raise MetricInputError(
                f"{name} needs images of at least {min_side}x{min_side} pixels; a crop is "
                f"{tuple(piece[0].shape[-2:])} (pass crop_size >= {min_side} for face-region metrics)"
            )
        values.append(metric(*piece).detach().to("cpu", torch.float64))
    return torch.cat(values)


def _weighted_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Per-image mean of ``values [N,C,H,W]`` weighted by ``mask [N,1,H,W]``; NaN for an all-zero mask."""
    weights = mask.expand_as(values)
    return (values * weights).sum(dim=(1, 2, 3)) / weights.sum(dim=(1, 2, 3))


def psnr(
    pred: Tensor,
    target: Tensor,
    *,
    mask: Tensor | None = None,
    boxes: Tensor | None = None,
    crop_size: int | None = None,
) -> Tensor:
    """Peak signal-to-noise ratio in dB, ``[N]``, data range 1 (inf for identical images)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    def metric(p: Tensor, t: Tensor, m: Tensor | None) -> Tensor:
        if m is None:
            return peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))
        # torchmetrics has no masked PSNR: the same formula with a mask-weighted mean squared error.
        return -10.0 * torch.log10(_weighted_mean((p - t).square(), m))

    return _evaluate(metric, pred, target, mask, boxes, crop_size, 1, "PSNR")


def ssim(
    pred: Tensor,
    target: Tensor,
    *,
    mask: Tensor | None = None,
    boxes: Tensor | None = None,
    crop_size: int | None = None,
) -> Tensor:
    """Structural similarity, ``[N]``: torchmetrics' Gaussian SSIM (11 px window, sigma 1.5, data range 1).

    The value is the mean of torchmetrics' full SSIM map (reflect-padded, so border pixels count);
    with a mask, the mask-weighted mean of that map.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    def metric(p: Tensor, t: Tensor, m: Tensor | None) -> Tensor:
        values, full = structural_similarity_index_measure(
            p, t, data_range=1.0, reduction="none", return_full_image=True
        )
        return values if m is None else _weighted_mean(full, m)

    return _evaluate(metric, pred, target, mask, boxes, crop_size, SSIM_MIN_SIDE, "SSIM")


def lpips_distance(
    pred: Tensor,
    target: Tensor,
    model: Any,
    *,
    mask: Tensor | None = None,
    boxes: Tensor | None = None,
    crop_size: int | None = None,
) -> Tensor:
    """LPIPS distance, ``[N]`` (0 for identical images).

    ``model`` comes from :func:`lca.lpips_weights.load_lpips`; inputs are moved to its device.
    """

    device = next(model.parameters()).device

    def metric(p: Tensor, t: Tensor, m: Tensor | None) -> Tensor:
        if m is not None:
            p, t = p * m, t * m
        p, t = p.to(device), t.to(device)
        with torch.no_grad():
            return model(p, t, normalize=True).flatten()

    min_side = LPIPS_MIN_SIDE.get(getattr(model, "pnet_type", "alex"), LPIPS_MIN_SIDE["alex"])
    return _evaluate(metric, pred, target, mask, boxes, crop_size, min_side, "LPIPS")


def image_metrics(
    pred: Tensor,
    target: Tensor,
    *,
    lpips_model: Any | None = None,
    mask: Tensor | None = None,
    boxes: Tensor | None = None,
    crop_size: int | None = None,
) -> dict[str, Tensor]:
    """``{"psnr", "ssim"}`` and, when ``lpips_model`` is given, ``"lpips"``: each ``[N]``."""
    out = {
        "psnr": psnr(pred, target, mask=mask, boxes=boxes, crop_size=crop_size),
        "ssim": ssim(pred, target, mask=mask, boxes=boxes, crop_size=crop_size),
    }
    if lpips_model is not None:
        out["lpips"] = lpips_distance(pred, target, lpips_model, mask=mask, boxes=boxes, crop_size=crop_size)
    return out
