"""The ``smplx`` template: an SMPL-X body loaded from a user-given model folder (real SMPL-X files).

One implementation serves every SMPL-X-format file: the ``mannequin`` template subclasses it and only
changes where the ``.npz`` comes from. The file is read through ``smplx.create`` (so any file smplx
accepts works), its arrays are kept as buffers, and all maths runs in :mod:`lca.skinning`.

Decisions (see ``docs/templates.md``):

- **Canonical space = the Da-pose**: every joint at rest except the hips, rotated about z by
  ``+-da_pose_leg_angle`` (20 degrees by default, LHM's pi/9) so the legs spread. The canonical mesh of a
  person is the SMPL-X mesh of their ``betas``/``expression`` in that pose, pose correctives included
  (exactly what ``smplx`` outputs for it).
- **Joint transforms** from canonical to target are ``A_target,j @ A_da,j^-1`` per joint (``A`` = SMPL-X
  skinning transforms of the shaped skeleton) with ``transl`` added, so anchors and Gaussians are skinned
  by LBS with the Da-pose as rest pose. No pose correctives are applied to them: the decoder's
  correction branch learns pose-dependent changes. Where weights mix joints whose Da-pose rotations
  differ (around the hips), this differs from re-posing the mesh from the zero pose by millimetres.
- :meth:`SmplxTemplate.pose_vertices` is the full SMPL-X model (shape + expression blend shapes, pose
  correctives, LBS from the zero pose, ``transl``): it equals ``smplx`` output.
- Hand poses are full axis-angle (no PCA) and flat (``flat_hand_mean``): zero is the open hand.
- Anchors: ``num_anchors`` on the body (faces not labelled head; hand faces ``hand_density`` times denser
  per area) followed by ``num_head_anchors`` on head faces, sampled on the mean-shape Da-pose mesh with
  ``seed``. A face's part is the part holding most of its vertices' skinning weight.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import ClassVar, Literal

import smplx
import torch
from pydantic import Field
from torch import Tensor

from lca import skinning
from lca.component import ComponentConfig
from lca.contracts.template import PART_NAMES, Template, TemplateParams
from lca.errors import LcaError
from lca.mesh import sample_surface

SMPLX_DOWNLOAD = "https://smpl-x.is.tue.mpg.de"

# SMPL-X joint -> body part (index into PART_NAMES).
_HEAD = (15, 22, 23, 24)
_HANDS = (20, 21, *range(25, 55))
_UPPER = (3, 6, 9, 12, 13, 14, 16, 17, 18, 19)
_LOWER = (0, 1, 2, 4, 5, 7, 8, 10, 11)


class TemplateFileError(LcaError, FileNotFoundError):
    """A template's model file is missing."""


def joint_part_matrix(dtype: torch.dtype = torch.float64) -> Tensor:
    """``[55, 4]`` one-hot map from SMPL-X joints to :data:`PART_NAMES`."""
    m = torch.zeros(55, len(PART_NAMES), dtype=dtype)
    for part, joints in enumerate((_HEAD, _HANDS, _UPPER, _LOWER)):
        m[list(joints), part] = 1.0
    return m


class SmplxBodyConfig(ComponentConfig):
    """Fields shared by every SMPL-X-format template (anchors, Da-pose, coefficient counts)."""

    num_betas: int = Field(10, ge=1)
    """Shape coefficients (at most what the file has: 10 in v1.0 files and the mannequin, 300 in v1.1)."""
    num_expression: int = Field(10, ge=0)
    """Expression coefficients used (10 for v1.0 files and the mannequin, up to 100 for v1.1)."""
    num_anchors: int = Field(2048, ge=1)
    """Anchors sampled on the body (everything but the head); LHM uses 30000."""
    num_head_anchors: int = Field(1024, ge=0)
    """Anchors sampled on the head and face; LHM uses 10000."""
    hand_density: float = Field(4.0, gt=0)
    """Anchor density per area on the hands relative to the rest of the body."""
    seed: int = Field(0, ge=0)
    """Seed of the anchor sampling (anchors are identical for equal seeds and files)."""
    da_pose_leg_angle: float = Field(20.0, ge=-90, le=90)
    """Hip spread of the canonical Da-pose in degrees (each hip rotated about z; LHM: 20)."""


class SmplxTemplateConfig(SmplxBodyConfig):
    """Config of the ``smplx`` template."""

    model_path: str = ""
    """Folder holding ``smplx/SMPLX_<GENDER>.npz`` (or ``SMPLX_<GENDER>.npz``), or the ``.npz`` itself."""
    gender: Literal["neutral", "male", "female"] = "neutral"
    """Which SMPL-X model file to load."""


class SmplxTemplate(Template):
    """SMPL-X template (55 joints) over an SMPL-X ``.npz``; see the module docstring for the conventions.

    Every buffer is non-persistent: it is derived, deterministically, from the body model file and the
    config, so checkpoints stay small (SMPL-X's pose correctives alone are ~70 MB) and never carry the
    licensed SMPL-X data.
    """

    Config: ClassVar[type[SmplxBodyConfig]] = SmplxTemplateConfig

    def __init__(self, config: SmplxBodyConfig) -> None:
        super().__init__()
        self.config = config
        # smplx prints "WARNING: You are using a SMPL-X model, with only 10 shape coefficients" for every
        # v1.0-layout file (the mannequin's); the counts are checked explicitly below instead.
        with contextlib.redirect_stdout(io.StringIO()):
            body = smplx.create(
                str(self.model_file()),
                model_type="smplx",
                num_betas=config.num_betas,
                num_expression_coeffs=config.num_expression,
                use_pca=False,
                flat_hand_mean=True,
                dtype=torch.float64,
            )
        self._num_betas = int(body.shapedirs.shape[-1])
        self._num_expression = int(body.expr_dirs.shape[-1])
        if (self._num_betas, self._num_expression) != (config.num_betas, config.num_expression):
            raise ValueError(
                f"template: the model file {self.model_file()} provides {self._num_betas} shape and "
                f"{self._num_expression} expression coefficients, but the config asks for num_betas="
                f"{config.num_betas}, num_expression={config.num_expression}"
            )
        dtype = torch.get_default_dtype()
        self.register_buffer("v_template", body.v_template.to(dtype), persistent=False)
        self.register_buffer(
            "shapedirs", torch.cat([body.shapedirs, body.expr_dirs], dim=-1).to(dtype), persistent=False
        )
        self.register_buffer("posedirs", body.posedirs.to(dtype), persistent=False)
        self.register_buffer("j_regressor", body.J_regressor.to(dtype), persistent=False)
        self.register_buffer("lbs_weights", body.lbs_weights.to(dtype), persistent=False)
        self.register_buffer("parents", body.parents.clone(), persistent=False)
        self.register_buffer("faces", body.faces_tensor.clone(), persistent=False)
        da = torch.zeros(55, 3, dtype=dtype)
        angle = math.radians(config.da_pose_leg_angle)
        da[1, 2], da[2, 2] = angle, -angle
        self.register_buffer("da_pose", da, persistent=False)  # [55, 3] axis-angle of the canonical Da-pose
        self._sample_anchors(body)

    def model_file(self) -> Path:
        """The SMPL-X ``.npz`` to load; raises :class:`TemplateFileError` naming what is missing."""
        cfg = self.config
        assert isinstance(cfg, SmplxTemplateConfig)
        name = f"SMPLX_{cfg.gender.upper()}.npz"
        if not cfg.model_path:
            raise TemplateFileError(
                f"template 'smplx': no model_path given. Set template.model_path to the folder holding "
                f"smplx/{name}. SMPL-X model files are licensed (non-commercial research) and cannot be "
                f"shipped: register and download them at {SMPLX_DOWNLOAD}, or use template=mannequin."
            )
        root = Path(cfg.model_path).expanduser()
        candidates = [root] if root.suffix == ".npz" else [root / "smplx" / name, root / name]
        for path in candidates:
            if path.is_file():
                return path
        raise TemplateFileError(
            f"template 'smplx': SMPL-X model file not found: expected {candidates[0]}"
            + (f" (or {candidates[1]})" if len(candidates) > 1 else "")
            + f". SMPL-X files are licensed for non-commercial research: register at {SMPLX_DOWNLOAD}, "
            "accept the licence, download 'SMPL-X' (npz) and unpack it so that this path exists; or use "
            "template=mannequin, the licence-free procedural body."
        )

    @property
    def num_betas(self) -> int:
        return self._num_betas

    @property
    def num_expression(self) -> int:
        return self._num_expression

    # ---------------------------------------------------------------- shape and pose internals
    def _check(self, betas: Tensor, expression: Tensor) -> None:
        if betas.shape[-1] != self.num_betas or expression.shape[-1] != self.num_expression:
            raise ValueError(
                f"template: betas [..., {betas.shape[-1]}] / expression [..., {expression.shape[-1]}] given, "
                f"this template takes [..., {self.num_betas}] / [..., {self.num_expression}]"
            )

    def _shaped_rest(self, betas: Tensor, expression: Tensor) -> tuple[Tensor, Tensor]:
        """Zero-pose vertices ``[B, V, 3]`` and joints ``[B, J, 3]`` (expression moves joints: smplx)."""
        self._check(betas, expression)
        v = self.v_template + skinning.blend_shapes(torch.cat([betas, expression], -1), self.shapedirs)
        return v, skinning.regress_joints(self.j_regressor, v)

    def _da_rotmats(self, batch: int) -> Tensor:
        return skinning.pose_to_rotmats(self.da_pose).expand(batch, -1, -1, -1)

    def _posed(self, v_rest: Tensor, joints: Tensor, rotmats: Tensor) -> tuple[Tensor, Tensor]:
        """Full SMPL-X posing (correctives + LBS) of rest vertices; also returns the skinning transforms."""
        transforms = skinning.skinning_transforms(rotmats, joints, self.parents)
        v = v_rest + skinning.pose_corrective_offsets(rotmats, self.posedirs)
        return skinning.skin_points(v, self.lbs_weights, transforms), transforms

    # ---------------------------------------------------------------- the contract
    def canonical_vertices(self, betas: Tensor, expression: Tensor) -> Tensor:
        v, joints = self._shaped_rest(betas, expression)
        return self._posed(v, joints, self._da_rotmats(v.shape[0]))[0]

    def shaped_anchors(self, betas: Tensor, expression: Tensor) -> Tensor:
        tri = self.canonical_vertices(betas, expression)[:, self.faces[self.anchor_face_idx]]
        return (self.anchor_bary.unsqueeze(-1) * tri).sum(-2)

    def joint_transforms(self, params: TemplateParams) -> Tensor:
        _, joints = self._shaped_rest(params.betas, params.expression)
        target = skinning.skinning_transforms(
            skinning.pose_to_rotmats(params.full_pose()), joints, self.parents
        )
        canonical = skinning.skinning_transforms(self._da_rotmats(joints.shape[0]), joints, self.parents)
        return skinning.translate(skinning.relative_transforms(target, canonical), params.transl)

    def pose_vertices(self, params: TemplateParams) -> Tensor:
        v, joints = self._shaped_rest(params.betas, params.expression)
        posed, _ = self._posed(v, joints, skinning.pose_to_rotmats(params.full_pose()))
        return posed + params.transl.unsqueeze(-2)

    # ---------------------------------------------------------------- anchors
    def _sample_anchors(self, body: torch.nn.Module) -> None:
        cfg = self.config
        weights64 = body.lbs_weights
        vert_part = weights64 @ joint_part_matrix()
        face_part = vert_part[body.faces_tensor].sum(1).argmax(-1)
        with torch.no_grad():
            canon = self.canonical_vertices(
                torch.zeros(1, self.num_betas, dtype=self.v_template.dtype),
                torch.zeros(1, self.num_expression, dtype=self.v_template.dtype),
            )[0]
        head = PART_NAMES.index("head")
        hands = PART_NAMES.index("hands")
        body_density = torch.where(face_part == hands, cfg.hand_density, 1.0) * (face_part != head)
        body_faces, body_bary = sample_surface(canon, self.faces, cfg.num_anchors, body_density, cfg.seed)
        head_faces, head_bary = sample_surface(
            canon, self.faces, cfg.num_head_anchors, (face_part == head).double(), cfg.seed + 1
        )
        face_idx = torch.cat([body_faces, head_faces])
        bary = torch.cat([body_bary, head_bary]).double()
        corners = body.faces_tensor[face_idx]  # [N, 3]
        dtype = torch.get_default_dtype()
        self.register_buffer("anchor_face_idx", face_idx, persistent=False)
        self.register_buffer("anchor_bary", bary.to(dtype), persistent=False)
        self.register_buffer(
            "anchor_weights", torch.einsum("nk,nkj->nj", bary, weights64[corners]).to(dtype), persistent=False
        )
        dirs = torch.cat([body.shapedirs, body.expr_dirs], -1)
        self.register_buffer(
            "anchor_shapedirs", torch.einsum("nk,nkcs->ncs", bary, dirs[corners]).to(dtype), persistent=False
        )
        self.register_buffer("anchor_part_labels", face_part[face_idx], persistent=False)
        # [V] part of each mesh vertex (dominant skinning weight), indices into PART_NAMES.
        self.register_buffer("vertex_part_labels", vert_part.argmax(-1), persistent=False)
