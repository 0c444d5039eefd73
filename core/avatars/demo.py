"""A demo motion: a synthetic performer dancing with changing expressions, as a motion ``.npz``.

The body, hands, jaw, expression and gaze come from the synthetic-data generator's motion
(:func:`lca.data.synth.motion.make_motion`, full expression range). The expression-code driver needs
face crops, so the performer (a synthetic person of the same generator) is drawn by a close-up camera
that follows its head; ARKit blendshapes (:func:`~lca.data.synth.motion.arkit_blendshapes`) and gaze
directions are included too, so every built-in driver has its signal.
"""

from __future__ import annotations

import numpy as np
import torch

from lca.avatars.motion import MotionClip
from lca.cameras import intrinsics_from_fov, look_at
from lca.data.synth.config import SynthConfig
from lca.data.synth.motion import arkit_blendshapes, make_motion

FACE_DISTANCE = 0.7
"""Metres from the face centre to the close-up camera, along the head's forward axis."""
FACE_FOV_DEG = 30.0


def demo_motion(
    frames: int = 48,
    fps: float = 12.0,
    face_size: int = 64,
    seed: int = 0,
    settings: SynthConfig | None = None,
) -> MotionClip:
    """``frames`` frames of a dance with changing expressions (deterministic for ``seed``). ``settings``
    (default :class:`SynthConfig`'s defaults) name the template, rasterizer and anchor counts, as for the
    synthetic data."""
    from lca.data.synth.generate import build_toolkit
    from lca.data.synth.identity import make_identity
    from lca.data.synth.regions import HEAD
    from lca.data.synth.render import render_clip

    settings = settings or SynthConfig()
    template, regions, rasterizer = build_toolkit(settings)
    performer = make_identity(template, regions, [seed, 99, 0], "demo-performer")
    rng = np.random.default_rng([seed, 99, 1])
    motion = make_motion(
        rng, frames, fps, performer.betas.numpy(), template.num_expression, yaw=0.0, expressive=1.0
    )
    with torch.no_grad():
        params = motion.template_params()
        transforms = template.joint_transforms(params)
        anchors = template.shaped_anchors(params.betas, params.expression)
        face = regions.face
        centre = template.pose_points(anchors[:, face], template.anchor_weights[face], transforms).mean(1)
        forward = transforms[:, HEAD, :3, :3] @ torch.tensor([0.0, 0.0, 1.0])
        viewmats = look_at(centre + FACE_DISTANCE * forward, centre)[:, None]
    Ks = intrinsics_from_fov(FACE_FOV_DEG, face_size, face_size).expand(frames, 1, 3, 3)
    rendered = render_clip(template, regions, rasterizer, performer, motion, viewmats, Ks, face_size)
    signals = {
        "face_crop": rendered.color[:, 0].numpy(),
        "face_valid": np.ones(frames, dtype=bool),
        "blendshapes": arkit_blendshapes(motion),
        "gaze": rendered.gaze.numpy(),
    }
    params_np = {k: v for k, v in motion.params.items() if k != "betas"}
    return MotionClip(params_np, signals, fps, f"demo motion (seed {seed}, {frames} frames)")
