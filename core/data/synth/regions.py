"""Where things are on the template's canonical body: per-anchor region labels and face landmarks.

Computed once per template on the mean shape, in the canonical Da-pose (y up, +z the body's front,
+x the body's left, metres). Regions come from each anchor's dominant skinning joint (SMPL-X
numbering) plus heights, so they follow any SMPL-X-format template, not only the mannequin's mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from lca.contracts.template import Template
from lca.mesh import vertex_normals

HEAD, JAW, LEFT_EYE, RIGHT_EYE, NECK, SPINE3, PELVIS = 15, 22, 23, 24, 12, 9, 0
TORSO_JOINTS = (0, 3, 6, 9, 13, 14)
UPPER_ARM_JOINTS, FOREARM_JOINTS, HAND_JOINTS = (16, 17), (18, 19), (20, 21, *range(25, 55))
THIGH_JOINTS, SHIN_JOINTS, FOOT_JOINTS = (1, 2), (4, 5), (7, 8, 10, 11)


@dataclass(frozen=True)
class BodyRegions:
    """Per-anchor facts of one template (``N`` anchors) used to dress and paint people."""

    positions: Tensor
    """``[N, 3]`` canonical anchor positions of the mean shape and neutral face."""
    normals: Tensor
    """``[N, 3]`` unit outward normals there."""
    spacing: Tensor
    """``[N]`` mean distance to the 6 nearest anchors (sets the surface Gaussians' size)."""
    joint: Tensor
    """``[N]`` long, dominant skinning joint of each anchor."""
    eye_centres: Tensor
    """``[2, 3]`` centres of the left and right eyeballs."""
    eye_radius: float
    mouth: Tensor
    """``[3]`` centre of the mouth on the face surface."""
    head_centre: Tensor
    """``[3]`` centre of the head anchors."""
    face: Tensor
    """``[N]`` bool: anchors of the face (front of the head between chin and brows), for face boxes."""

    def is_in(self, joints: tuple[int, ...]) -> Tensor:
        """``[N]`` bool: anchors whose dominant joint is one of ``joints``."""
        return torch.isin(self.joint, torch.tensor(joints))


def body_regions(template: Template) -> BodyRegions:
    """Regions and landmarks of ``template`` (mean shape, neutral expression, canonical Da-pose)."""
    with torch.no_grad():
        betas = torch.zeros(1, template.num_betas)
        expression = torch.zeros(1, template.num_expression)
        vertices = template.canonical_vertices(betas, expression)[0]
        positions = template.shaped_anchors(betas, expression)[0]
        corners = template.faces[template.anchor_face_idx]
        normals = (template.anchor_bary[..., None] * vertex_normals(vertices, template.faces)[corners]).sum(1)
    normals = torch.nn.functional.normalize(normals, dim=-1)
    distances, _ = cKDTree(positions.numpy()).query(positions.numpy(), k=7)
    spacing = torch.from_numpy(distances[:, 1:].mean(1)).float()
    joint = template.anchor_weights.argmax(-1)
    eyes = torch.stack([positions[joint == j].mean(0) for j in (LEFT_EYE, RIGHT_EYE)])
    eye_radius = float((positions[joint == LEFT_EYE] - eyes[0]).norm(dim=-1).max())
    head_joints = torch.tensor((HEAD, JAW, LEFT_EYE, RIGHT_EYE))
    head = torch.isin(joint, head_joints)
    head_centre = positions[head].mean(0)
    eye_y = float(eyes[:, 1].mean())
    iod = float(eyes[0, 0] - eyes[1, 0])  # interocular distance sets every face proportion
    mouth_y = eye_y - 1.05 * iod
    near_mouth = head & ((positions[:, 1] - mouth_y).abs() < 0.1 * iod) & (positions[:, 0].abs() < 0.1 * iod)
    mouth = positions[near_mouth][positions[near_mouth][:, 2].argmax()]
    chin_y = mouth_y - 0.9 * iod
    face = head & (positions[:, 2] > head_centre[2] + 0.3 * iod) & (positions[:, 1] > chin_y)
    face &= positions[:, 1] < eye_y + 0.9 * iod
    return BodyRegions(positions, normals, spacing, joint, eyes, eye_radius, mouth, head_centre, face)


def frames_from_normals(normals: Tensor) -> Tensor:
    """``[..., 3, 3]`` rotations whose third column is ``normals [..., 3]`` (first column horizontal where
    possible), so a Gaussian flattened along its local z lies on the surface."""
    up = torch.tensor([0.0, 1.0, 0.0]).expand_as(normals)
    side = torch.tensor([1.0, 0.0, 0.0]).expand_as(normals)
    ref = torch.where((normals[..., 1:2].abs() > 0.9), side, up)
    first = torch.nn.functional.normalize(torch.linalg.cross(ref, normals, dim=-1), dim=-1)
    second = torch.linalg.cross(normals, first, dim=-1)
    return torch.stack([first, second, normals], dim=-1)


def nearest_anchor(points: np.ndarray, positions: Tensor) -> np.ndarray:
    """Index of the closest anchor to each point of ``points [P, 3]``."""
    return cKDTree(positions.numpy()).query(points, k=1)[1]
