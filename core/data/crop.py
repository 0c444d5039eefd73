"""Square crops resized to a fixed size, with the intrinsics that go with them.

A crop is a new camera: cropping by ``(x0, y0)`` and scaling by ``s`` keeps the viewmat and changes
``K`` to ``fx' = s fx``, ``fy' = s fy``, ``cx' = s (cx - x0)`` (same for y). Everything here uses the
toolkit's one pixel convention (:mod:`lca.cameras`, gsplat's): continuous image coordinates, the image spans
``[0, W] x [0, H]`` and pixel ``i`` covers ``[i, i+1)``, its centre at ``i + 1/2``; boxes, intrinsics and the
rasterizer all agree on it. Resampling uses torchvision's ``roi_align`` (``aligned=True`` uses the same
continuous convention; its adaptive sampling averages several samples per output pixel, so shrinking does
not alias). (Until generator v4 the intrinsics assumed pixel centres at integers, OpenCV's habit, which put
every resized view ``(s - 1) / 2`` pixels off its image.)
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import roi_align


def square_around(box: np.ndarray, margin: float) -> np.ndarray | None:
    """A square ``[x0,y0,x1,y1]`` centred on ``box``, side ``margin * max(w, h)``; None if empty."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0) or not np.isfinite([x0, y0, x1, y1]).all():
        return None
    side = margin * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def full_square(height: int, width: int) -> np.ndarray:
    """The square that holds the whole image, centred (the short side is padded with zeros)."""
    side = max(height, width)
    x0, y0 = (width - side) / 2, (height - side) / 2
    return np.array([x0, y0, x0 + side, y0 + side])


def padded_square(height: int, width: int, margin: float) -> np.ndarray:
    """:func:`full_square` widened by ``margin`` of its side about its centre (half of it on each side)."""
    x0, y0, x1, y1 = full_square(height, width)
    pad = margin * (x1 - x0) / 2
    return np.array([x0 - pad, y0 - pad, x1 + pad, y1 + pad])


def crop_intrinsics(K: torch.Tensor, box: np.ndarray, size: int) -> torch.Tensor:
    """Intrinsics ``[3,3]`` of the square crop ``box`` resized to ``size x size`` (see module docstring)."""
    scale = size / float(box[2] - box[0])
    out = K.clone()
    out[0, 0], out[1, 1] = K[0, 0] * scale, K[1, 1] * scale
    out[0, 1] = K[0, 1] * scale
    out[0, 2] = (K[0, 2] - float(box[0])) * scale
    out[1, 2] = (K[1, 2] - float(box[1])) * scale
    return out


def crop_resize(channels: torch.Tensor, box: np.ndarray, size: int) -> torch.Tensor:
    """Crop ``channels [C,H,W]`` (float) to the square ``box`` and resize to ``[C,size,size]``."""
    rois = torch.tensor([[0.0, *(float(v) for v in box)]], dtype=channels.dtype)
    return roi_align(channels[None], rois, output_size=(size, size), spatial_scale=1.0, aligned=True)[0]
