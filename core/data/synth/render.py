"""Posing a synthetic person for a clip and drawing it: images, masks, face boxes and gaze directions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor

from lca.cameras import camera_centers, project_points
from lca.contracts.rasterizer import Rasterizer
from lca.contracts.template import Template
from lca.data.synth.identity import Identity, dynamic_attributes
from lca.data.synth.motion import Motion
from lca.data.synth.regions import HEAD, LEFT_EYE, RIGHT_EYE, BodyRegions
from lca.gaussians import Gaussians

MASK_THRESHOLD = 0.5
"""A pixel belongs to the person when the rendered alpha reaches this."""
BACK_FACING = -0.3
"""Gaussians whose surface normal points away from the camera by more than this cosine are not drawn
(hidden behind the body anyway): this roughly halves the rasterizer's work."""
FACE_FACING = 0.1
"""A face box is stored only when the cosine between the head's forward axis and the direction to the
camera exceeds this (the face is turned towards the camera)."""


@dataclass
class Rendered:
    """A clip drawn by ``C`` cameras over ``T`` frames (C = 1 for wild-video)."""

    color: Tensor
    """``[T, C, 3, H, W]`` the person over black (premultiplied by alpha)."""
    alpha: Tensor
    """``[T, C, 1, H, W]``."""
    face_box: Tensor
    """``[T, C, 4]`` x0, y0, x1, y1 in pixels; all zero when the face is turned away or off-screen."""
    gaze: Tensor
    """``[T, 2, 3]`` unit gaze directions of the left and right eye in world space."""

    def masks(self) -> Tensor:
        """``[T, C, H, W]`` uint8: 255 where ``alpha >= MASK_THRESHOLD``, else 0."""
        return (self.alpha[:, :, 0] >= MASK_THRESHOLD).to(torch.uint8) * 255


def pose_identity(
    template: Template, identity: Identity, motion: Motion
) -> tuple[Gaussians, Tensor, Tensor, Tensor]:
    """The person's Gaussians in every frame's pose (batch ``[T]``), their posed surface normals
    ``[T, G, 3]`` (zero where none), the joint transforms ``[T, J, 4, 4]`` and the canonical anchors of
    each frame's expression ``[T, N, 3]``."""
    params = motion.template_params()
    anchors = template.shaped_anchors(params.betas, params.expression)
    transforms = template.joint_transforms(params)
    canonical = anchors[:, identity.anchor] + identity.offset
    frames = canonical.shape[0]
    means = template.pose_points(canonical, identity.weights, transforms)
    # LBS is affine per point, so the posed normal is the blended linear part applied to the normal.
    normals = template.pose_points(canonical + identity.normals, identity.weights, transforms) - means
    quats = template.pose_quats(identity.quats.expand(frames, -1, -1), identity.weights, transforms)
    scales, colors = dynamic_attributes(
        identity, torch.from_numpy(motion.mouth_opening).float(), torch.from_numpy(motion.smile).float()
    )
    gaussians = Gaussians(means, quats, scales, identity.opacities.expand(frames, -1), colors)
    return gaussians, normals, transforms, anchors


def face_boxes(
    template: Template,
    regions: BodyRegions,
    anchors: Tensor,
    transforms: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
) -> Tensor:
    """``[T, C, 4]`` boxes around the projected face anchors (``viewmats [T, C, 4, 4]``); zero when the face
    looks away from the camera or lies entirely off-screen. Boxes are not clipped to the image."""
    face = regions.face
    points = template.pose_points(anchors[:, face], template.anchor_weights[face], transforms)
    uv, depth = project_points(points, viewmats, Ks)  # [T, C, F, 2], [T, C, F]
    boxes = torch.cat([uv.amin(-2), uv.amax(-2)], -1)
    head_rot = transforms[:, HEAD, :3, :3]
    forward = head_rot[:, :, 2]  # the canonical head looks along +z
    to_camera = torch.nn.functional.normalize(camera_centers(viewmats) - points.mean(1, keepdim=True), dim=-1)
    facing = (to_camera * forward[:, None]).sum(-1) > FACE_FACING
    on_screen = (boxes[..., 2] > 0) & (boxes[..., 0] < width) & (boxes[..., 3] > 0) & (boxes[..., 1] < height)
    keep = facing & on_screen & (depth > 0).all(-1)
    return torch.where(keep[..., None], boxes, torch.zeros_like(boxes))


def render_clip(
    template: Template,
    regions: BodyRegions,
    rasterizer: Rasterizer,
    identity: Identity,
    motion: Motion,
    viewmats: Tensor,
    Ks: Tensor,
    size: int,
) -> Rendered:
    """Draw ``identity`` doing ``motion`` from cameras ``viewmats [T, C, 4, 4]``, ``Ks [T, C, 3, 3]``."""
    with torch.no_grad():
        gaussians, normals, transforms, anchors = pose_identity(template, identity, motion)
        centres = camera_centers(viewmats)  # [T, C, 3]
        color = torch.empty(*viewmats.shape[:2], 3, size, size)
        alpha = torch.empty(*viewmats.shape[:2], 1, size, size)
        for t, c in itertools.product(range(viewmats.shape[0]), range(viewmats.shape[1])):
            frame = gaussians.map(lambda field, t=t: field[t])
            to_camera = torch.nn.functional.normalize(centres[t, c] - frame.means, dim=-1)
            keep = (normals[t] * to_camera).sum(-1) > BACK_FACING * normals[t].norm(dim=-1)
            out = rasterizer(
                frame[keep | (normals[t].abs().sum(-1) == 0)],
                viewmats[t, c][None],
                Ks[t, c][None],
                size,
                size,
            )
            color[t, c], alpha[t, c] = out.color[0], out.alpha[0]
        boxes = face_boxes(template, regions, anchors, transforms, viewmats, Ks, size, size)
        forward = torch.tensor([0.0, 0.0, 1.0])
        gaze = torch.stack([transforms[:, j, :3, :3] @ forward for j in (LEFT_EYE, RIGHT_EYE)], 1)
    return Rendered(color, alpha, boxes, torch.nn.functional.normalize(gaze, dim=-1))
