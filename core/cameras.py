"""Camera helpers in the toolkit's convention (docs/architecture.md, "The method, in one pass").

- World-to-camera ``viewmats [..., 4, 4]``, OpenCV axes: x right, y down, z forward; metres.
- Intrinsics ``Ks [..., 3, 3]`` in pixels. Image coordinates are continuous with pixel ``(i, j)`` covering
  ``[i, i+1) x [j, j+1)``, so its centre is ``(i + 0.5, j + 0.5)`` (gsplat's convention). With this
  convention cropping subtracts the crop origin from the principal point and resizing scales
  ``fx, fy, cx, cy`` by the size ratio, exactly.
- ``look_at`` and ``orbit_cameras`` take a world *up* vector; the default ``(0, 1, 0)`` is SMPL-X's y-up.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def intrinsics_from_focal(
    fx: float, fy: float, width: int, height: int, cx: float | None = None, cy: float | None = None
) -> Tensor:
    """``[3, 3]`` pinhole intrinsics; the principal point defaults to the image centre ``(W/2, H/2)``."""
    cx = width / 2.0 if cx is None else cx
    cy = height / 2.0 if cy is None else cy
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def intrinsics_from_fov(fov_x_deg: float, width: int, height: int, fov_y_deg: float | None = None) -> Tensor:
    """``[3, 3]`` intrinsics for a horizontal field of view (degrees); square pixels unless ``fov_y_deg``."""
    if not 0.0 < fov_x_deg < 180.0:
        raise ValueError(f"intrinsics_from_fov: fov_x_deg must be in (0, 180), got {fov_x_deg}")
    fx = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2.0)
    fy = fx if fov_y_deg is None else 0.5 * height / math.tan(math.radians(fov_y_deg) / 2.0)
    return intrinsics_from_focal(fx, fy, width, height)


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """World-to-camera ``[..., 4, 4]`` for cameras at ``eye [..., 3]`` looking at ``target [..., 3]``.

    The camera's z axis points at the target, its y axis (down) along ``-up`` projected orthogonally to the
    viewing direction, and x = y cross z (right). ``up`` must not be parallel to the viewing direction.
    """
    eye, target = torch.broadcast_tensors(eye, target)
    if up is None:
        up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype, device=eye.device)
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    up = up.to(eye).expand_as(forward)
    down = -(up - (up * forward).sum(-1, keepdim=True) * forward)
    if bool((down.norm(dim=-1) < 1e-8).any()):
        raise ValueError("look_at: the up vector is parallel to the viewing direction")
    down = torch.nn.functional.normalize(down, dim=-1)
    right = torch.linalg.cross(down, forward, dim=-1)
    rot = torch.stack([right, down, forward], dim=-2)  # rows: camera axes in world coordinates
    viewmat = torch.zeros(*rot.shape[:-2], 4, 4, dtype=eye.dtype, device=eye.device)
    viewmat[..., :3, :3] = rot
    viewmat[..., :3, 3] = -(rot @ eye.unsqueeze(-1)).squeeze(-1)
    viewmat[..., 3, 3] = 1.0
    return viewmat


def orbit_cameras(
    center: Tensor,
    radius: float,
    num: int,
    elevation_deg: float = 0.0,
    up: Tensor | None = None,
    start_azimuth_deg: float = 0.0,
) -> Tensor:
    """``num`` world-to-camera matrices ``[num, 4, 4]`` evenly spaced on a ring around ``center [3]``.

    The ring lies in the plane orthogonal to ``up`` (default +y) raised by ``elevation_deg``; azimuth 0 puts
    the first camera on the +z side of the centre (in front of a SMPL-X body, which faces +z).
    """
    up = torch.tensor([0.0, 1.0, 0.0], dtype=center.dtype) if up is None else up.to(center)
    up = torch.nn.functional.normalize(up, dim=-1)
    ref = torch.tensor([0.0, 0.0, 1.0], dtype=center.dtype)
    if abs(float(up @ ref)) > 0.99:
        ref = torch.tensor([1.0, 0.0, 0.0], dtype=center.dtype)
    a = torch.nn.functional.normalize(ref - (ref @ up) * up, dim=-1)  # azimuth 0 direction
    b = torch.linalg.cross(up, a, dim=-1)
    az = torch.deg2rad(torch.tensor(start_azimuth_deg, dtype=center.dtype)) + torch.arange(
        num, dtype=center.dtype
    ) * (2 * math.pi / num)
    el = math.radians(elevation_deg)
    dirs = math.cos(el) * (torch.cos(az)[:, None] * a + torch.sin(az)[:, None] * b) + math.sin(el) * up
    return look_at(center + radius * dirs, center.expand(num, 3), up)


def camera_centers(viewmats: Tensor) -> Tensor:
    """Camera positions in world coordinates ``[..., 3]`` (``-R^T t``)."""
    rot, t = viewmats[..., :3, :3], viewmats[..., :3, 3:]
    return -(rot.transpose(-1, -2) @ t).squeeze(-1)


def project_points(points: Tensor, viewmats: Tensor, Ks: Tensor) -> tuple[Tensor, Tensor]:
    """Project ``points [..., N, 3]`` into cameras ``viewmats [..., C, 4, 4]``, ``Ks [..., C, 3, 3]``.

    Returns continuous pixel coordinates ``uv [..., C, N, 2]`` (see the module doc) and camera depths
    ``z [..., C, N]``. Points at or behind the camera plane give meaningless ``uv``: check ``z > 0``.
    """
    cam = points[..., None, :, :] @ viewmats[..., :3, :3].transpose(-1, -2) + viewmats[..., None, :3, 3]
    z = cam[..., 2]
    pix = cam @ Ks.transpose(-1, -2)
    return pix[..., :2] / z[..., None], z


def crop_intrinsics(Ks: Tensor, x0: float | Tensor, y0: float | Tensor) -> Tensor:
    """Intrinsics of the crop whose top-left corner is pixel ``(x0, y0)`` of the original image."""
    out = Ks.clone()
    out[..., 0, 2] = Ks[..., 0, 2] - x0
    out[..., 1, 2] = Ks[..., 1, 2] - y0
    return out


def resize_intrinsics(Ks: Tensor, scale_x: float | Tensor, scale_y: float | Tensor) -> Tensor:
    """Intrinsics after resizing the image by ``scale_x`` (new width / old width) and ``scale_y``."""
    out = Ks.clone()
    out[..., 0, :] = Ks[..., 0, :] * scale_x
    out[..., 1, :] = Ks[..., 1, :] * scale_y
    return out


def crop_resize_intrinsics(
    Ks: Tensor, box: tuple[float, float, float, float], width: int, height: int
) -> Tensor:
    """Intrinsics of the crop ``box = (x0, y0, x1, y1)`` (pixels, e.g. a face box) resized to
    ``width x height``."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"crop_resize_intrinsics: empty box {box} (need x1 > x0 and y1 > y0)")
    return resize_intrinsics(crop_intrinsics(Ks, x0, y0), width / (x1 - x0), height / (y1 - y0))
