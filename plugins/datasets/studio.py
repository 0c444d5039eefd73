"""``studio``: samples from multi-view calibrated captures (post-training data).

A sample is K cameras of one frame as reference views, plus a face close-up from the reference camera
with the largest face box, and M (frame, camera) targets: frames drawn across the capture, cameras
other than the references where the rig has enough. Each target's expression input is the face crop
of its frame from the camera that sees the face largest.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from lca.contracts.dataset import DatasetConfig
from lca.data.reader import GroupMeta
from lca.data.store_dataset import StoreDataset, ViewChoice, largest_face


class StudioConfig(DatasetConfig):
    """Reader of ``studio`` stores (see docs/data.md)."""

    samples_per_group: int = Field(100, ge=1)
    """Dataset indices per capture (len = captures x samples_per_group); captures hold many frames."""


class StudioDataset(StoreDataset):
    """K cameras of one frame (+ face close-up) as references, M other (frame, camera) views as targets."""

    Config: ClassVar[type[StudioConfig]] = StudioConfig
    layout = "studio"

    def choose(self, meta: GroupMeta, rng: np.random.Generator) -> ViewChoice:
        k, m, cameras = self.num_references(rng), self.config.num_targets, meta.num_cameras
        frame = int(rng.integers(meta.num_frames))
        ref_cameras = rng.choice(cameras, size=k, replace=cameras < k).tolist()
        others = [c for c in range(cameras) if c not in ref_cameras] or list(range(cameras))
        target_cameras = rng.choice(others, size=m, replace=len(others) < m).tolist()
        target_frames = rng.integers(meta.num_frames, size=m).tolist()
        references = [(frame, c) for c in ref_cameras]
        targets = list(zip(target_frames, target_cameras, strict=True))
        faces = [largest_face(meta, [(t, c) for c in range(cameras)]) or (t, c) for t, c in targets]
        return ViewChoice(references, targets, largest_face(meta, references), target_faces=faces)
