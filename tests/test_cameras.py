"""Camera helpers: closed-form projections and the OpenCV look-at convention."""

from __future__ import annotations

import math

import torch

from lca.cameras import (
    camera_centers,
    crop_resize_intrinsics,
    intrinsics_from_fov,
    look_at,
    orbit_cameras,
    project_points,
)

D = torch.float64


def test_intrinsics_from_fov_closed_form() -> None:
    K = intrinsics_from_fov(90.0, 200, 100)
    torch.testing.assert_close(K, torch.tensor([[100.0, 0, 100], [0, 100.0, 50], [0, 0, 1]]))


def test_look_at_opencv_axes() -> None:
    """A camera at +z looking at the origin with y-up: facing -z with +y up, world +x is on the right
    (larger u), world +y is up (smaller v, since image y points down), the origin lies at depth 2."""
    V = look_at(torch.tensor([0.0, 0.0, 2.0], dtype=D), torch.zeros(3, dtype=D))
    K = intrinsics_from_fov(90.0, 100, 100).to(D)
    pts = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [0, 0.5, 0]], dtype=D)
    uv, z = project_points(pts, V[None], K[None])
    torch.testing.assert_close(z[0], torch.full((3,), 2.0, dtype=D))
    torch.testing.assert_close(uv[0, 0], torch.tensor([50.0, 50.0], dtype=D))
    torch.testing.assert_close(uv[0, 1], torch.tensor([50.0 + 50 * 0.25, 50.0], dtype=D))  # f=50, x/z=0.25
    torch.testing.assert_close(uv[0, 2], torch.tensor([50.0, 50.0 - 50 * 0.25], dtype=D))
    torch.testing.assert_close(V[:3, :3] @ V[:3, :3].T, torch.eye(3, dtype=D))
    assert torch.det(V[:3, :3]) > 0
    torch.testing.assert_close(camera_centers(V), torch.tensor([0.0, 0, 2], dtype=D))


def test_orbit_ring() -> None:
    center = torch.tensor([0.0, 1.0, 0.0], dtype=D)
    V = orbit_cameras(center, 3.0, 8, elevation_deg=30.0)
    eyes = camera_centers(V)
    torch.testing.assert_close((eyes - center).norm(dim=-1), torch.full((8,), 3.0, dtype=D))
    torch.testing.assert_close(eyes[:, 1] - 1.0, torch.full((8,), 3.0 * math.sin(math.radians(30)), dtype=D))
    torch.testing.assert_close(
        eyes[0],
        center + 3.0 * torch.tensor([0, math.sin(math.radians(30)), math.cos(math.radians(30))], dtype=D),
    )
    uv, _ = project_points(center[None], V, intrinsics_from_fov(60.0, 64, 48).to(D).expand(8, 3, 3))
    torch.testing.assert_close(
        uv[:, 0], torch.tensor([32.0, 24.0], dtype=D).expand(8, 2)
    )  # centre is centred


def test_crop_resize_matches_reprojection() -> None:
    """Projecting with crop/resize intrinsics equals cropping then scaling the original pixel coordinates."""
    K = intrinsics_from_fov(50.0, 640, 480).to(D)
    V = look_at(torch.tensor([0.3, 0.2, 2.5], dtype=D), torch.zeros(3, dtype=D))
    pts = torch.randn(20, 3, dtype=D) * 0.3
    uv, _ = project_points(pts, V[None], K[None])
    box = (200.0, 100.0, 328.0, 260.0)
    K2 = crop_resize_intrinsics(K, box, 256, 320)
    uv2, _ = project_points(pts, V[None], K2[None])
    expected = (uv - torch.tensor(box[:2], dtype=D)) * torch.tensor([256 / 128, 320 / 160], dtype=D)
    torch.testing.assert_close(uv2, expected)
