"""Cameras, backgrounds and camera degradations of the two layouts.

- ``wild-video``: one handheld camera per clip that drifts around the person (azimuth, height and zoom
  change smoothly, the aim jitters), a cluttered procedural background that pans with the camera, and
  per-clip blur, sensor noise, colour cast and a per-frame exposure drift.
- ``studio``: a calibrated ring of cameras at equal azimuth steps (camera 0 in front), a plain
  background, no degradation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torchvision.transforms.functional import gaussian_blur

from lca.cameras import intrinsics_from_fov, look_at, orbit_cameras
from lca.data.synth.motion import smooth

BODY_CENTRE = (0.0, -0.3, 0.0)
"""Where the cameras aim: about the middle of a standing mannequin (its soles are at y = -1.2 m)."""
FOV_DEG = 36.0


def wild_cameras(
    rng: np.random.Generator, frames: int, fps: float, size: int
) -> tuple[Tensor, Tensor, np.ndarray]:
    """Per-frame ``viewmats [T, 4, 4]``, ``Ks [T, 3, 3]``, azimuths ``[T]`` (radians) of a drifting camera."""
    t = np.arange(frames) / fps
    wobble = smooth(rng, t, 6, speed=0.6)
    azimuth = rng.uniform(-0.9, 0.9) + rng.uniform(-0.3, 0.3) * t / max(t[-1], 1e-6) + 0.15 * wobble[:, 0]
    elevation = rng.uniform(0.0, 0.25) + 0.05 * wobble[:, 1]
    distance = rng.uniform(2.8, 3.4) + 0.1 * wobble[:, 2]
    direction = np.stack(
        [np.cos(elevation) * np.sin(azimuth), np.sin(elevation), np.cos(elevation) * np.cos(azimuth)], -1
    )
    target = np.array(BODY_CENTRE) + 0.03 * wobble[:, 3:6]
    eye = target + distance[:, None] * direction
    viewmats = look_at(torch.from_numpy(eye).float(), torch.from_numpy(target).float())
    zoom = 1.0 + 0.05 * smooth(rng, t, 1, speed=0.5)[:, 0]
    Ks = torch.stack([intrinsics_from_fov(FOV_DEG / z, size, size) for z in zoom])
    return viewmats, Ks, azimuth


def studio_cameras(cameras: int, size: int) -> tuple[Tensor, Tensor]:
    """A ring of ``cameras`` looking at the person: ``viewmats [C, 4, 4]``, ``Ks [C, 3, 3]``."""
    viewmats = orbit_cameras(torch.tensor(BODY_CENTRE), 2.7, cameras, elevation_deg=8.0)
    return viewmats, intrinsics_from_fov(FOV_DEG, size, size).expand(cameras, 3, 3).clone()


def _shape_mask(kind: int, xx: Tensor, yy: Tensor, cx: float, cy: float, w: float, h: float) -> Tensor:
    if kind == 0:  # rectangle
        return ((xx - cx).abs() < w) & ((yy - cy).abs() < h)
    if kind == 1:  # ellipse
        return ((xx - cx) / w) ** 2 + ((yy - cy) / h) ** 2 < 1
    return ((xx - cx).abs() + (yy - cy).abs() * 3 < w) | ((yy - cy).abs() < 0.004)  # a shelf-like line


def clutter(rng: np.random.Generator, size: int) -> Tensor:
    """A ``[3, 2S, 2S]`` cluttered scene (wall and floor gradients, random boxes, blobs and lines)."""
    side = 2 * size
    ys, xs = torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="ij")
    wall, floor = torch.from_numpy(rng.uniform(0.2, 0.9, (2, 3))).float()
    horizon = rng.uniform(0.55, 0.75)
    image = torch.where(
        ys[None] < horizon, wall[:, None, None] * (0.8 + 0.3 * ys), floor[:, None, None] * (1.2 - 0.4 * ys)
    )
    for _ in range(int(rng.integers(10, 24))):
        cx, cy = rng.uniform(0, 1, 2)
        w, h = rng.uniform(0.02, 0.2, 2)
        mask = _shape_mask(int(rng.integers(3)), xs, ys, cx, cy, w, h)
        colour = torch.from_numpy(rng.uniform(0.05, 1.0, 3)).float()
        shade = 0.85 + 0.15 * torch.sin(ys * rng.uniform(5, 40))
        image = torch.where(mask[None], colour[:, None, None] * shade, image)
    return image.clamp(0, 1)


def pan(scene: Tensor, size: int, shift: tuple[float, float]) -> Tensor:
    """The ``[3, S, S]`` window of ``scene`` offset by ``shift`` (fractions of the margin, in [-1, 1])."""
    margin = scene.shape[-1] - size
    x0 = round((0.5 + 0.5 * float(np.clip(shift[0], -1, 1))) * margin)
    y0 = round((0.5 + 0.5 * float(np.clip(shift[1], -1, 1))) * margin)
    return scene[:, y0 : y0 + size, x0 : x0 + size]


def degrade(
    image: Tensor, rng: np.random.Generator, blur_sigma: float, noise: float, gain: float, cast: Tensor
) -> Tensor:
    """Camera effects on a ``[3, H, W]`` image: exposure ``gain`` and colour ``cast``, blur, noise."""
    out = image * gain * cast[:, None, None]
    if blur_sigma > 0.05:
        kernel = 2 * math.ceil(2.5 * blur_sigma) + 1
        out = gaussian_blur(out[None], [kernel, kernel], [blur_sigma, blur_sigma])[0]
    out = out + torch.from_numpy(rng.normal(0, noise, out.shape)).float()
    return out.clamp(0, 1)
