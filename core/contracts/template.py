"""Contract of the ``template`` kind: the parametric body the avatar's Gaussians are attached to.

Context passed at construction: none (``cls(config)``).

A template gives

- a mesh (``faces [F, 3]``, ``V`` vertices) with a skeleton of ``J`` joints (``parents [J]``, root ``-1``);
- the **canonical space**: the mesh in the *Da-pose* (legs spread, everything else at rest; see the
  implementation's docstring for the exact angles) for given shape ``betas [B, S]`` and ``expression
  [B, E]``. Canonical Gaussians live in this space;
- ``N`` **anchors**: points sampled once on the Da-pose mesh (deterministic for a seed), stored as a face
  index and barycentric coordinates, so that each anchor inherits, by barycentric interpolation, the
  skinning weights ``anchor_weights [N, J]`` (rows sum to 1) and the shape/expression blend-shape rows
  ``anchor_shapedirs [N, 3, S + E]`` of its face's vertices; each has a body-part label
  ``anchor_part_labels [N]`` indexing :data:`PART_NAMES`. Anchors are ordered ``[body | head]``;
- **posing**: :meth:`joint_transforms` turns :class:`TemplateParams` into per-joint rigid transforms
  ``[B, J, 4, 4]`` from the canonical space of that person (betas, expression) to the target pose
  (global orientation and translation included); :meth:`pose_points` and :meth:`pose_quats` apply them to
  points and Gaussian rotations by linear blend skinning with per-point weights.

Units are metres; y is up, +z is the body's front and +x the body's left (SMPL-X). Quaternions are wxyz.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
from torch import Tensor

from lca import skinning

PART_NAMES: tuple[str, ...] = ("head", "hands", "upper_body", "lower_body")
"""Body-part labels of anchors: ``anchor_part_labels`` holds indices into this tuple."""

POSE_SIZES: dict[str, int] = {
    "global_orient": 3,
    "body_pose": 63,
    "jaw_pose": 3,
    "leye_pose": 3,
    "reye_pose": 3,
    "left_hand_pose": 45,
    "right_hand_pose": 45,
}
"""Axis-angle pose fields in SMPL-X's full-pose order (55 joints x 3 = 165 values)."""


@dataclass
class TemplateParams:
    """SMPL-X parameters of a batch of frames; every tensor has the same leading batch dims ``[...]``.

    Poses are axis-angle (radians), hand poses are the full 15 joints x 3 (no PCA) and *flat* (zero is
    the open, flat hand; no ``hands_mean`` is added). ``transl`` is added after posing, as in smplx.
    """

    betas: Tensor
    """``[..., S]`` shape coefficients."""
    expression: Tensor
    """``[..., E]`` expression coefficients."""
    global_orient: Tensor
    """``[..., 3]`` root (pelvis) rotation."""
    body_pose: Tensor
    """``[..., 63]`` 21 body joints (SMPL-X joints 1-21)."""
    left_hand_pose: Tensor
    """``[..., 45]`` 15 left-hand joints (25-39)."""
    right_hand_pose: Tensor
    """``[..., 45]`` 15 right-hand joints (40-54)."""
    jaw_pose: Tensor
    """``[..., 3]`` jaw (joint 22)."""
    leye_pose: Tensor
    """``[..., 3]`` left eye (joint 23)."""
    reye_pose: Tensor
    """``[..., 3]`` right eye (joint 24)."""
    transl: Tensor
    """``[..., 3]`` translation in metres, applied last."""

    def __post_init__(self) -> None:
        batch = self.betas.shape[:-1]
        for name, size in POSE_SIZES.items() | {"transl": 3}.items():
            value = getattr(self, name)
            if value.shape != (*batch, size):
                raise ValueError(
                    f"TemplateParams.{name} has shape {tuple(value.shape)}, expected {(*batch, size)} "
                    f"(batch dims {tuple(batch)} taken from betas)"
                )
        if self.expression.shape[:-1] != batch:
            raise ValueError(
                f"TemplateParams.expression has shape {tuple(self.expression.shape)}, expected batch dims "
                f"{tuple(batch)} (taken from betas)"
            )

    @classmethod
    def zeros(
        cls,
        *batch: int,
        num_betas: int = 10,
        num_expression: int = 10,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> TemplateParams:
        """All-zero parameters (mean shape, neutral face, T-pose, flat hands) with batch dims ``batch``."""
        sizes = {"betas": num_betas, "expression": num_expression, **POSE_SIZES, "transl": 3}
        return cls(**{k: torch.zeros(*batch, n, dtype=dtype, device=device) for k, n in sizes.items()})

    @property
    def batch_shape(self) -> torch.Size:
        """The leading batch dims."""
        return self.betas.shape[:-1]

    def _map(self, fn) -> TemplateParams:  # type: ignore[no-untyped-def]
        return TemplateParams(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def to(self, *args, **kwargs) -> TemplateParams:  # type: ignore[no-untyped-def]
        """``Tensor.to`` on every field (device and/or dtype)."""
        return self._map(lambda t: t.to(*args, **kwargs))

    def reshape(self, *batch: int) -> TemplateParams:
        """New batch dims (the feature dim of each field is kept)."""
        return self._map(lambda t: t.reshape(*batch, t.shape[-1]))

    def flatten(self) -> TemplateParams:
        """Collapse all batch dims into one: ``[B]`` with ``B = prod(batch_shape)``."""
        return self.reshape(-1)

    def full_pose(self) -> Tensor:
        """``[..., 55, 3]`` axis-angle rotations of all joints in SMPL-X order."""
        return torch.cat([getattr(self, k) for k in POSE_SIZES], dim=-1).unflatten(-1, (-1, 3))


class Template(torch.nn.Module, ABC):
    """A body template: Da-pose canonical mesh, anchors, and linear blend skinning to target poses.

    Shapes: ``B`` batch (one flat dim; flatten :class:`TemplateParams` first), ``V`` vertices, ``F`` faces,
    ``J`` joints, ``N`` anchors, ``K`` Gaussians per anchor, ``S``/``E`` shape/expression coefficients.

    Buffers every implementation sets (registered, so ``.to()`` moves them):

    - ``faces [F, 3]`` long, ``parents [J]`` long (``parents[0] == -1``);
    - ``anchor_face_idx [N]`` long and ``anchor_bary [N, 3]``: where each anchor lies on the mesh;
    - ``anchor_weights [N, J]``: interpolated skinning weights (rows sum to 1);
    - ``anchor_shapedirs [N, 3, S + E]``: interpolated shape (first ``S``) and expression blend-shape rows
      in the rest (zero-pose) space;
    - ``anchor_part_labels [N]`` long, indices into :data:`PART_NAMES`.
    """

    test_config: ClassVar[dict[str, Any]] = {}
    """Params of a small, fast build for the conformance checks (:mod:`lca.testing`), set per component."""

    PART_NAMES: ClassVar[tuple[str, ...]] = PART_NAMES

    faces: Tensor
    parents: Tensor
    anchor_face_idx: Tensor
    anchor_bary: Tensor
    anchor_weights: Tensor
    anchor_shapedirs: Tensor
    anchor_part_labels: Tensor

    @property
    @abstractmethod
    def num_betas(self) -> int:
        """``S``, the number of shape coefficients ``params.betas`` must have."""

    @property
    @abstractmethod
    def num_expression(self) -> int:
        """``E``, the number of expression coefficients ``params.expression`` must have."""

    @property
    def num_joints(self) -> int:
        """``J``."""
        return int(self.parents.shape[0])

    @property
    def num_anchors(self) -> int:
        """``N``."""
        return int(self.anchor_face_idx.shape[0])

    @abstractmethod
    def canonical_vertices(self, betas: Tensor, expression: Tensor) -> Tensor:
        """The mesh in the Da-pose for this shape and expression: ``[B, S]``, ``[B, E]`` -> ``[B, V, 3]``."""

    @abstractmethod
    def shaped_anchors(self, betas: Tensor, expression: Tensor) -> Tensor:
        """Anchor positions in the canonical space of this person: ``[B, S]``, ``[B, E]`` -> ``[B, N, 3]``."""

    @abstractmethod
    def joint_transforms(self, params: TemplateParams) -> Tensor:
        """Per-joint rigid transforms ``[B, J, 4, 4]`` from the canonical (Da-pose) space of
        ``(params.betas, params.expression)`` to the posed space (global orient and ``transl`` included)."""

    @abstractmethod
    def pose_vertices(self, params: TemplateParams) -> Tensor:
        """The template mesh posed by ``params`` (batch dims ``[B]``): ``[B, V, 3]``."""

    def pose_points(self, points: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
        """Linear blend skinning of canonical points to the posed space.

        ``points [B, N, 3]`` or ``[B, N, K, 3]``, ``weights [N, J]`` (e.g. ``anchor_weights``),
        ``transforms [B, J, 4, 4]`` from :meth:`joint_transforms` -> same shape as ``points``.
        """
        return skinning.skin_points(points, weights, transforms)

    def pose_quats(self, quats: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
        """Rotate canonical Gaussian orientations (wxyz ``[B, N, 4]`` or ``[B, N, K, 4]``) to the posed space
        by the nearest rotation of each point's blended transform (see :func:`lca.skinning.skin_quats`)."""
        return skinning.skin_quats(quats, weights, transforms)
