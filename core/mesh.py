"""Triangle-mesh helpers for templates: face areas, normals and deterministic surface sampling."""

from __future__ import annotations

import torch
from torch import Tensor


def face_areas(vertices: Tensor, faces: Tensor) -> Tensor:
    """Triangle areas ``[F]`` of ``vertices [V, 3]``, ``faces [F, 3]``."""
    tri = vertices[faces]
    return 0.5 * torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).norm(dim=-1)


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Area-weighted unit vertex normals ``[..., V, 3]`` of ``vertices [..., V, 3]`` (faces counter-clockwise
    seen from outside)."""
    tri = vertices[..., faces, :]
    face_n = torch.linalg.cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :])
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals = normals.index_add(-2, faces[:, k], face_n)
    return torch.nn.functional.normalize(normals, dim=-1)


def sample_surface(
    vertices: Tensor, faces: Tensor, num: int, density: Tensor | None = None, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``num`` points on a mesh, area-weighted times a per-face ``density [F]`` (0 excludes a face).

    Returns ``face_idx [num]`` (long) and barycentric coordinates ``bary [num, 3]`` (same dtype as
    ``vertices``); the point is ``sum_k bary[:, k] * vertices[faces[face_idx, k]]``. Deterministic for a
    seed (a private CPU generator; nothing global is touched).
    """
    weight = face_areas(vertices, faces).double().cpu()
    if density is not None:
        weight = weight * density.double().cpu()
    if num > 0 and not bool((weight > 0).any()):
        raise ValueError("sample_surface: every face has zero area or zero density; nothing to sample from")
    gen = torch.Generator().manual_seed(seed)
    face_idx = torch.multinomial(weight, num, replacement=True, generator=gen)
    u, v = torch.rand(2, num, generator=gen, dtype=torch.float64)
    su = u.sqrt()  # uniform on the triangle (Osada et al. 2002)
    bary = torch.stack([1.0 - su, su * (1.0 - v), su * v], dim=-1)
    return face_idx.to(faces.device), bary.to(vertices)
