"""Avatar -> the standard 3DGS PLY (:mod:`lca.ply`): canonical (Da-pose, neutral) or posed Gaussians."""

from __future__ import annotations

from pathlib import Path

import torch

from lca.avatars.animate import face_input_size, orbit, skinned_anchors
from lca.avatars.file import AvatarFile
from lca.avatars.motion import MotionClip
from lca.avatars.player import load_player
from lca.errors import LcaError
from lca.gaussians import Gaussians
from lca.ply import save_ply

_PROBE_SIZE = 16
"""``drive`` always renders; posed export asks for a tiny image and keeps only the Gaussians."""


@torch.no_grad()
def posed_gaussians(avatar: AvatarFile, clip: MotionClip, frame: int) -> Gaussians:
    """The avatar's driven Gaussians (canonical + correction, skinned) in frame ``frame`` of ``clip``."""
    if not 0 <= frame < clip.num_frames:
        raise LcaError(f"--frame {frame} is out of range: the motion has {clip.num_frames} frames.")
    one = clip.select([frame])
    player = load_player(avatar)
    params = one.template_params(avatar.betas, player.template.num_expression)
    signals = one.driving_signals(params, face_input_size(player))
    cams = orbit(skinned_anchors(player, avatar, params), 1, _PROBE_SIZE, "fixed")
    out = player.drive(
        avatar.batched(), params, signals, cams.viewmats[None], cams.Ks[None], _PROBE_SIZE, _PROBE_SIZE
    )
    return out.driven_gaussians.map(lambda t: t[0])


def export_ply(path: str | Path, avatar: AvatarFile, clip: MotionClip | None = None, frame: int = 0) -> Path:
    """Write the canonical Gaussians, or with ``clip`` the posed ones of ``frame``, to ``path``."""
    gaussians = avatar.canonical_gaussians() if clip is None else posed_gaussians(avatar, clip, frame)
    return save_ply(path, gaussians)
