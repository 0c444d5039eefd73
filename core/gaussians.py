"""The Gaussians structure every component exchanges: a dataclass of tensors with shared batch dims.

Shapes (``...`` = batch dims, identical across fields; ``N`` = number of Gaussians):

- ``means``     ``[..., N, 3]`` centres in metres (world or canonical space, as the producer says)
- ``quats``     ``[..., N, 4]`` rotations, **wxyz**; not required to be unit length (consumers normalise)
- ``scales``    ``[..., N, 3]`` standard deviations along the local axes, *activated* (metres, > 0)
- ``opacities`` ``[..., N]`` in ``[0, 1]`` (activated)
- ``colors``    ``[..., N, 3]`` RGB in ``[0, 1]``, or ``[..., N, K, 3]`` spherical-harmonic coefficients with
  ``K = (degree + 1) ** 2`` (gsplat / 3DGS convention: rendered colour = SH(view dir) + 0.5, clamped at 0)

Everything indexes over ``N`` (a part of the body is a boolean mask over ``N``), so the structure is
plain data: no activations, no parameters, and autograd flows through it untouched.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

FIELDS: tuple[str, ...] = ("means", "quats", "scales", "opacities", "colors")


@dataclass
class Gaussians:
    """A (batched) set of 3D Gaussians; see the module doc for the shapes. Validated on construction."""

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    colors: Tensor

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ shape information
    @property
    def batch_shape(self) -> torch.Size:
        """The leading batch dims (``torch.Size([])`` when unbatched)."""
        return self.means.shape[:-2]

    @property
    def num_gaussians(self) -> int:
        """``N``, the number of Gaussians per batch element."""
        return self.means.shape[-2]

    @property
    def sh_degree(self) -> int | None:
        """Spherical-harmonic degree of ``colors``, or ``None`` when they are plain RGB."""
        if self.colors.dim() == self.means.dim():
            return None
        return math.isqrt(self.colors.shape[-2]) - 1

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field and both shapes when anything is inconsistent."""
        for name in FIELDS:
            value = getattr(self, name)
            if not isinstance(value, Tensor):
                raise ValueError(f"Gaussians.{name}: expected a torch.Tensor, got {type(value).__name__}")
            if not value.is_floating_point():
                raise ValueError(f"Gaussians.{name}: expected a floating-point tensor, got {value.dtype}")
        if self.means.dim() < 2 or self.means.shape[-1] != 3:
            raise ValueError(f"Gaussians.means: expected shape [..., N, 3], got {list(self.means.shape)}")
        lead = list(self.means.shape[:-1])  # [..., N]
        expected = {"quats": [*lead, 4], "scales": [*lead, 3], "opacities": lead}
        for name, shape in expected.items():
            got = list(getattr(self, name).shape)
            if got != shape:
                raise ValueError(
                    f"Gaussians.{name}: expected shape {shape} (from means {list(self.means.shape)}), "
                    f"got {got}"
                )
        colors = list(self.colors.shape)
        if colors == [*lead, 3]:
            pass
        elif len(colors) == len(lead) + 2 and colors[: len(lead)] == lead and colors[-1] == 3:
            k = colors[-2]
            if math.isqrt(k) ** 2 != k:
                raise ValueError(
                    f"Gaussians.colors: SH coefficients [..., N, K, 3] need K = (degree+1)^2, got K={k} "
                    f"(shape {colors})"
                )
        else:
            raise ValueError(
                f"Gaussians.colors: expected RGB {[*lead, 3]} or SH {[*lead, 'K', 3]} "
                f"(from means {list(self.means.shape)}), got {colors}"
            )
        for name in FIELDS[1:]:
            value = getattr(self, name)
            if value.device != self.means.device:
                raise ValueError(
                    f"Gaussians.{name}: on device {value.device} but means are on {self.means.device}"
                )

    # ------------------------------------------------------------------ conversions
    def map(self, fn: Callable[[Tensor], Tensor]) -> Gaussians:
        """A new ``Gaussians`` with ``fn`` applied to every field (and validated again)."""
        return Gaussians(**{name: fn(getattr(self, name)) for name in FIELDS})

    def to(self, *args: Any, **kwargs: Any) -> Gaussians:
        """Same arguments as ``torch.Tensor.to`` (device and/or dtype), applied to every field."""
        return self.map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> Gaussians:
        return self.map(Tensor.detach)

    def replace(self, **fields: Tensor) -> Gaussians:
        """A copy with some fields swapped (validated), e.g. ``g.replace(means=posed_means)``."""
        return dataclasses.replace(self, **fields)

    def as_dict(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in FIELDS}

    # ------------------------------------------------------------------ indexing over N
    def select(self, index: Tensor | slice | Sequence[int] | int) -> Gaussians:
        """Gaussians ``index`` over ``N`` (same for every batch element).

        ``index`` is a boolean mask ``[N]`` (e.g. one body part), integer indices, a slice, or an int
        (kept as a length-1 ``N`` dim). Batch dims are untouched.
        """
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        if isinstance(index, Tensor) and index.dtype == torch.bool:
            if index.dim() != 1 or index.shape[0] != self.num_gaussians:
                raise ValueError(
                    f"Gaussians.select: a boolean mask must have shape [{self.num_gaussians}] (one flag per "
                    f"Gaussian, shared by the batch), got {list(index.shape)}"
                )
        elif isinstance(index, Sequence):
            index = torch.as_tensor(index, dtype=torch.long, device=self.device)
        n_dim = len(self.batch_shape)  # position of the N axis in every field

        def take(t: Tensor) -> Tensor:
            return t[(slice(None),) * n_dim + (index,)]

        return self.map(take)

    def __getitem__(self, index: Tensor | slice | Sequence[int] | int) -> Gaussians:
        return self.select(index)

    def __len__(self) -> int:
        return self.num_gaussians

    @classmethod
    def cat(cls, items: Sequence[Gaussians]) -> Gaussians:
        """Concatenate along ``N``; batch shapes, colour layouts (RGB vs same SH degree) must agree."""
        if not items:
            raise ValueError("Gaussians.cat: got an empty sequence")
        first = items[0]
        for i, g in enumerate(items[1:], start=1):
            if g.batch_shape != first.batch_shape:
                raise ValueError(
                    f"Gaussians.cat: item {i} has batch shape {list(g.batch_shape)}, item 0 has "
                    f"{list(first.batch_shape)}"
                )
            if g.sh_degree != first.sh_degree:
                raise ValueError(
                    f"Gaussians.cat: item {i} has colour SH degree {g.sh_degree}, item 0 has "
                    f"{first.sh_degree} (None = RGB)"
                )
        n_dim = len(first.batch_shape)
        return cls(**{name: torch.cat([getattr(g, name) for g in items], dim=n_dim) for name in FIELDS})

    @classmethod
    def stack(cls, items: Sequence[Gaussians]) -> Gaussians:
        """Stack equal-shaped Gaussians on a new leading batch dim: B x ``[N, ...]`` -> ``[B, N, ...]``."""
        if not items:
            raise ValueError("Gaussians.stack: got an empty sequence")
        for i, g in enumerate(items[1:], start=1):
            if g.means.shape != items[0].means.shape or g.colors.shape != items[0].colors.shape:
                raise ValueError(
                    f"Gaussians.stack: item {i} has means {list(g.means.shape)} / colors "
                    f"{list(g.colors.shape)}, item 0 has {list(items[0].means.shape)} / "
                    f"{list(items[0].colors.shape)}"
                )
        return cls(**{name: torch.stack([getattr(g, name) for g in items]) for name in FIELDS})

    # ------------------------------------------------------------------ batch dims
    def reshape_batch(self, *shape: int) -> Gaussians:
        """Reshape the batch dims (``-1`` allowed), e.g. ``reshape_batch(-1)`` flattens them, ``()`` drops a
        batch of size 1."""
        if len(shape) == 1 and isinstance(shape[0], tuple | list | torch.Size):
            shape = tuple(shape[0])
        n_dim = len(self.batch_shape)

        def reshape(t: Tensor) -> Tensor:
            return t.reshape(*shape, *t.shape[n_dim:])

        return self.map(reshape)

    def expand_batch(self, *shape: int) -> Gaussians:
        """Broadcast unbatched (or size-1) batch dims to ``shape`` without copying."""
        n_dim = len(self.batch_shape)
        return self.map(lambda t: t.expand(*shape, *t.shape[n_dim:]))
