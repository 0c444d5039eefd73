"""Animating an avatar: a motion + cameras -> frames, rendered through ``drive`` only, then MP4/GIF.

Cameras (one per motion frame):

- ``turntable``: a ring around the performance, one full turn over the clip;
- ``fixed``: the turntable's first camera (in front of the body, which faces +z) for every frame;
- ``store``: the motion store's own cameras (wild-video: each frame's camera; studio: ``store_camera``),
  with intrinsics adapted to the square output like the datasets' full frames.

Turntable and fixed cameras are framed from the avatar's anchors skinned to every frame (cheap, no
rendering): they look at the centre of the union of the per-frame bounding boxes, from the distance
at which its height fills the view with a margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from lca.avatars.file import AvatarFile
from lca.avatars.motion import MotionClip
from lca.avatars.player import load_player
from lca.cameras import intrinsics_from_fov, orbit_cameras
from lca.contracts.template import TemplateParams
from lca.errors import LcaError

CameraMode = Literal["turntable", "fixed", "store"]
FOV_DEG = 40.0
ELEVATION_DEG = 5.0
MARGIN = 1.15
"""The framed height is the body's height times this."""
BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "grey": (0.5, 0.5, 0.5)}


@dataclass
class Cameras:
    """``viewmats [T, 4, 4]``, ``Ks [T, 3, 3]`` for ``size x size`` frames."""

    viewmats: Tensor
    Ks: Tensor


def framing(points: Tensor) -> tuple[Tensor, float]:
    """Centre ``[3]`` of the union bounding box of ``points [T, N, 3]`` and the camera distance that fits
    its height (y) with :data:`MARGIN` into the vertical field of view :data:`FOV_DEG`."""
    low, high = points.amin(dim=(0, 1)), points.amax(dim=(0, 1))
    centre = (low + high) / 2
    extent = float(torch.maximum(high[1] - low[1], (high[[0, 2]] - low[[0, 2]]).max()))
    return centre, 0.5 * MARGIN * extent / math.tan(math.radians(FOV_DEG) / 2)


def orbit(points: Tensor, frames: int, size: int, mode: CameraMode) -> Cameras:
    """Turntable (one turn over ``frames``) or fixed front cameras framing ``points [T, N, 3]``."""
    centre, distance = framing(points)
    ring = orbit_cameras(centre, distance, max(frames, 1), elevation_deg=ELEVATION_DEG)
    viewmats = ring if mode == "turntable" else ring[:1].expand(frames, 4, 4)
    return Cameras(viewmats.contiguous(), intrinsics_from_fov(FOV_DEG, size, size).expand(frames, 3, 3))


def store_cameras(store: str, group: str, frames: int, size: int, camera: int = 0) -> Cameras:
    """The store group's cameras of its first ``frames`` frames, for square ``size`` renders (``store`` may be
    ``synthetic://LAYOUT``)."""
    from lca.data.crop import crop_intrinsics, full_square
    from lca.data.locations import resolve_store_url
    from lca.data.reader import StoreReader

    meta = StoreReader(resolve_store_url(store)).meta(group)
    if not 0 <= camera < meta.num_cameras:
        raise LcaError(f"--store-camera {camera} is out of range: {group} has {meta.num_cameras} cameras.")
    box = full_square(meta.height, meta.width)
    pairs = [meta.camera(t, camera) for t in range(frames)]
    viewmats = torch.stack([torch.from_numpy(v) for v, _ in pairs])
    Ks = torch.stack([crop_intrinsics(torch.from_numpy(K), box, size) for _, K in pairs])
    return Cameras(viewmats.float(), Ks.float())


def skinned_anchors(player: object, avatar: AvatarFile, params: TemplateParams) -> Tensor:
    """The avatar's anchors posed to every frame ``[T, N, 3]`` (for framing)."""
    template = player.template  # type: ignore[attr-defined]
    flat = params.flatten()
    anchors = template.shaped_anchors(flat.betas, flat.expression)
    return template.pose_points(anchors, template.anchor_weights, template.joint_transforms(flat))


def face_input_size(player: object) -> int | None:
    """The face-crop side the drivers want when the motion has none (the expression-code driver's input
    size), or None when no active driver reads face crops."""
    for driver in player.drivers.values():  # type: ignore[attr-defined]
        if "face_crop" in driver.signals:
            return int(getattr(driver.config, "input_size", 64))
    return None


@torch.no_grad()
def render_motion(
    avatar: AvatarFile,
    clip: MotionClip,
    *,
    camera: CameraMode = "turntable",
    size: int = 256,
    background: str = "black",
    store_camera: int = 0,
    chunk: int = 4,
    device: str = "cpu",
    player: object | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Frames ``[T, size, size, 3]`` uint8 of ``avatar`` performing ``clip``, drawn ``chunk`` frames per
    :meth:`~lca.model.avatar.AvatarModel.drive` call; ``progress(n)`` is called after each chunk."""
    if background not in BACKGROUNDS:
        raise LcaError(f"Unknown background '{background}': choose one of {', '.join(BACKGROUNDS)}.")
    player = player or load_player(avatar, device)
    template = player.template  # type: ignore[attr-defined]
    params = clip.template_params(avatar.betas, template.num_expression)
    signals = clip.driving_signals(params, face_input_size(player))
    frames = clip.num_frames
    if camera == "store":
        store, _, group = clip.source.rpartition(":")
        if not store:
            raise LcaError("--camera store needs a store motion (STORE:GROUP), not a motion file.")
        cams = store_cameras(store, group, frames, size, store_camera)
    else:
        cams = orbit(skinned_anchors(player, avatar, params), frames, size, camera)
    batch = avatar.batched(device)
    out = []
    for start in range(0, frames, chunk):
        window = slice(start, min(start + chunk, frames))
        step = TemplateParams(**{k: v[:, window] for k, v in vars(params).items()})
        signal = {k: v[:, window] for k, v in signals.items()}
        out.append(
            draw(
                player, batch, step, signal, cams.viewmats[window], cams.Ks[window], (size, size), background
            )
        )
        if progress is not None:
            progress(window.stop - window.start)
    return np.concatenate(out)


def draw(
    player: object,
    avatar: object,
    params: TemplateParams,
    signals: dict[str, Tensor],
    viewmats: Tensor,
    Ks: Tensor,
    size: tuple[int, int],
    background: str = "black",
    *,
    corrections: bool = True,
) -> np.ndarray:
    """Frames ``[M, H, W, 3]`` uint8 of the batched ``avatar`` (:meth:`AvatarFile.batched`) posed by
    ``params``/``signals`` (leading ``[1, M]``), one camera per frame (``viewmats [M, 4, 4]``, ``Ks
    [M, 3, 3]``, ``size = (width, height)``), through ``drive``; without ``corrections``, the canonical
    Gaussians posed as they are (what the driving correction adds, seen by its absence)."""
    device = next(player.parameters()).device  # type: ignore[attr-defined]
    width, height = size
    rendered = player.drive(  # type: ignore[attr-defined]
        avatar,
        params.to(device),
        {k: v.to(device) for k, v in signals.items()},
        viewmats[None].to(device),
        Ks[None].to(device),
        width,
        height,
        background=torch.tensor(BACKGROUNDS[background], device=device),
        render_canonical=not corrections,
    )
    image = rendered.driven if corrections else rendered.canonical
    return (image.color[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """``frames [T, H, W, 3]`` uint8 -> MP4 (H.264 through imageio-ffmpeg) or GIF, by the extension."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        iio.imwrite(path, frames, duration=1000.0 / fps, loop=0)
    elif suffix in (".mp4", ".mov", ".mkv"):
        # macro_block_size=1 keeps the exact size (H.264 needs even sides; sizes are checked by the CLI).
        iio.imwrite(path, frames, plugin="FFMPEG", fps=fps, codec="libx264", macro_block_size=1)
    else:
        raise LcaError(f"Unsupported video extension '{path.suffix}' for {path}: use .mp4 or .gif.")
    return path
