"""How ``lca eval`` measures: the image protocol (background, frame, resolution, which pixels each metric
covers) and, for real captures, which cameras and frames are references and which are held-out targets.

Two protocols (``docs/evaluation.md`` states them with their reasons):

- ``lca`` (the default, what every table of this project reports): renders over black against the target
  composited over black through its mask, at the pipeline's image size, the whole (square) frame; PSNR,
  SSIM and LPIPS over the whole image.
- ``lhm``: as LHM's ``tools/metrics`` scripts (the numbers in the LHM and LHM++ papers) compute them:
  render and target composited over **white** (the target through its mask), the frame padded by 20%
  (10% of white on each side, LHM's ``img_center_padding``), at 512 pixels; PSNR over the pixels of the
  target's mask only (mask > 0.5, ``compute_psnr.py``), SSIM and LPIPS over the whole image
  (``compute_metric_ssim_lipis.py``). Deviations, stated in every result: our LPIPS is AlexNet's where
  LHM uses SqueezeNet's (the toolkit has no SqueezeNet weights); our frames are square (the short side
  padded) where LHM keeps the frame's aspect; the resize is our renderer drawing at 512, not an
  INTER_AREA/LANCZOS resize of a larger render.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from lca.data.reader import GroupMeta
from lca.errors import LcaError


@dataclass(frozen=True)
class Protocol:
    """One way of turning renders and targets into PSNR/SSIM/LPIPS."""

    name: str
    background: float
    """Grey level both images are composited over (0 black, 1 white)."""
    psnr_region: str
    """``"image"``: PSNR over every pixel; ``"person"``: over the target mask's pixels (> 0.5) only."""
    resolution: int | None
    """Side of the square target frame in pixels (None: the pipeline's image size)."""
    margin: float
    """Share of the frame's side added around it (empty, so background-coloured after compositing)."""
    lpips_net: str
    """LPIPS backbone (the toolkit has ``alex`` and ``vgg`` weights)."""
    deviations: tuple[str, ...] = ()
    """Where this reproduction differs from the protocol it is named after."""

    def describe(self) -> dict[str, Any]:
        """What ``metrics.json`` records of the protocol."""
        return asdict(self)


PROTOCOLS = {
    "lca": Protocol(
        "lca", background=0.0, psnr_region="image", resolution=None, margin=0.0, lpips_net="alex"
    ),
    "lhm": Protocol(
        "lhm",
        background=1.0,
        psnr_region="person",
        resolution=512,
        margin=0.2,
        lpips_net="alex",
        deviations=(
            "LPIPS uses AlexNet features; LHM's scripts use SqueezeNet's (no SqueezeNet weights here)",
            "frames are square (short side padded) where LHM keeps the frame's aspect",
            "renders are drawn at the resolution, not resized from a larger render",
        ),
    ),
}


def get_protocol(name: str, resolution: int | None = None) -> Protocol:
    """The protocol ``name``, at ``resolution`` when given; unknown names list the known ones."""
    if name not in PROTOCOLS:
        raise LcaError(f"Unknown evaluation protocol '{name}': choose one of {', '.join(PROTOCOLS)}.")
    protocol = PROTOCOLS[name]
    if resolution is None:
        return protocol
    if resolution < 32:
        raise LcaError(f"--resolution {resolution} is too small: LPIPS needs at least 32 pixels.")
    return replace(protocol, resolution=resolution)


@dataclass(frozen=True)
class ViewSelection:
    """The references and held-out targets a user names for a capture (studio) or clip (wild-video).
    Cameras by the store's camera id (``camera_ids``, e.g. DNA-Rendering's ``"23"``) or index; None: the
    default rule (:func:`lca.avatars.create.reference_cameras`, every other view as a target)."""

    reference_cameras: tuple[str, ...] | None = None
    reference_frame: int = 0
    target_cameras: tuple[str, ...] | None = None
    target_frames: tuple[int, ...] | None = None

    def cameras(self, meta: GroupMeta, names: tuple[str, ...], option: str) -> list[int]:
        """Camera indices of ``names`` in ``meta``'s group; an unknown name lists the rig."""
        ids = [str(c) for c in meta.attrs.get("camera_ids", range(meta.num_cameras))]
        out = []
        for name in names:
            if name in ids:
                out.append(ids.index(name))
            elif name.isdigit() and int(name) < meta.num_cameras:
                out.append(int(name))
            else:
                raise LcaError(
                    f"{option} {name}: group '{meta.name}' has no such camera (ids: {', '.join(ids[:24])}"
                    f"{' ...' if len(ids) > 24 else ''}; or an index below {meta.num_cameras})."
                )
        return out

    def frames(self, meta: GroupMeta) -> list[int]:
        """The target frames (all by default), checked against the group's length."""
        frames = list(range(meta.num_frames)) if self.target_frames is None else list(self.target_frames)
        bad = [t for t in [*frames, self.reference_frame] if not 0 <= t < meta.num_frames]
        if bad:
            raise LcaError(
                f"Frame {bad[0]} is out of range: group '{meta.name}' has {meta.num_frames} frames."
            )
        return frames


def parse_frames(text: str | None) -> tuple[int, ...] | None:
    """``"0,5,10"`` or a range ``"0:100:10"`` (start:stop[:step]) -> frame indices; None stays None."""
    if text is None:
        return None
    try:
        if ":" in text:
            return tuple(range(*(int(part) for part in text.split(":"))))
        return tuple(int(part) for part in text.split(","))
    except (TypeError, ValueError) as error:
        raise LcaError(f"Frames '{text}': give indices (0,5,10) or a range (0:100:10).") from error


def parse_cameras(text: str | None) -> tuple[str, ...] | None:
    """``"0,7,23"`` -> camera names (ids or indices); None stays None."""
    return None if text is None else tuple(part.strip() for part in text.split(",") if part.strip())
