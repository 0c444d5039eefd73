"""Settings of the synthetic-people generator, with per-layout defaults sized to build in about a minute."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Layout = Literal["wild-video", "studio"]

GENERATOR_VERSION = 4
"""Bumped whenever generated data changes for the same settings (part of the cache folder name)."""


class SynthConfig(BaseModel):
    """What to generate. ``None`` sizes take the layout's default (:data:`LAYOUT_DEFAULTS`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)

    layout: Layout = "wild-video"
    """Store layout: monocular clips (``wild-video``) or calibrated multi-view captures (``studio``)."""
    identities: int | None = Field(default=None, ge=1)
    """Number of people; one clip (wild-video) or one capture (studio) each."""
    first_identity: int = Field(default=0, ge=0)
    """Index of the first person: a shard of a larger set holds people ``first_identity`` onwards (a
    person is a function of the seed, the layout and the index, so shards join into the same set)."""
    frames: int | None = Field(default=None, ge=1)
    """Frames per clip or capture."""
    cameras: int | None = Field(default=None, ge=1)
    """Cameras of the studio ring (wild-video always has one moving camera)."""
    resolution: int | None = Field(default=None, ge=16)
    """Square image side in pixels."""
    seed: int = 0
    """Everything (people, motions, cameras, backgrounds, noise) is a function of this seed."""
    codec: Literal["zstd", "jpeg", "webp"] = "zstd"
    """Image codec of the store (lossless zstd, or lossy JPEG/WebP inside Zarr)."""
    fps: float = 10.0
    """Frame rate of the generated motion (stored as the groups' ``fps``)."""
    template: str = "mannequin"
    """Registered template the people are built on: an SMPL-X-format body whose config takes
    ``num_anchors``, ``num_head_anchors`` and ``cache_dir`` (as ``mannequin``'s, licence-free)."""
    rasterizer: str = "torch"
    """Registered rasterizer that draws them (``torch``: any device, deterministic on the CPU)."""
    num_anchors: int = 3000
    """Body anchors of the template the people are built on (one surface Gaussian each)."""
    num_head_anchors: int = 1500
    """Head anchors (denser than the body, so faces stay readable in face crops)."""

    def resolved(self) -> SynthConfig:
        """A copy with every ``None`` size replaced by the layout's default."""
        defaults = LAYOUT_DEFAULTS[self.layout]
        sizes = {k: defaults[k] if getattr(self, k) is None else getattr(self, k) for k in defaults}
        if self.layout == "wild-video":
            sizes["cameras"] = 1
        return self.model_copy(update=sizes)


LAYOUT_DEFAULTS: dict[str, dict[str, int]] = {
    "wild-video": {"identities": 64, "frames": 4, "cameras": 1, "resolution": 128},
    "studio": {"identities": 24, "frames": 2, "cameras": 6, "resolution": 160},
}
"""Default sizes; both layouts together build in about a minute on 2 CPU cores (see docs/data.md). Many
identities with few frames each: the feed-forward model generalises across people, so identities matter
more than frames (with 16 wild and 4 studio people, lca-tiny memorised its 2 studio training people). The
counts give held-out sets that can rank models (:func:`lca.splits.synthetic_split`): 21 wild and 8 studio
people in ``test``, 38 and 14 in ``train``."""
