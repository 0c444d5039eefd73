"""``wild-video``: samples from monocular in-the-wild clips (pretraining data).

A sample is K frames of one clip as reference views, plus a face close-up cropped from the reference
frame with the largest face box, and M other frames of the same clip as targets (drawn without
replacement while the clip is long enough). Each target's face crop is its expression input.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from lca.contracts.dataset import DatasetConfig
from lca.data.reader import GroupMeta
from lca.data.store_dataset import StoreDataset, ViewChoice, largest_face


class WildVideoConfig(DatasetConfig):
    """Reader of ``wild-video`` stores (see docs/data.md)."""

    samples_per_group: int = Field(1, ge=1)
    """Dataset indices per clip (len = clips x samples_per_group)."""


class WildVideoDataset(StoreDataset):
    """K frames of a clip (+ face close-up) as references, M other frames as targets."""

    Config: ClassVar[type[WildVideoConfig]] = WildVideoConfig
    layout = "wild-video"

    def choose(self, meta: GroupMeta, rng: np.random.Generator) -> ViewChoice:
        k, m = self.num_references(rng), self.config.num_targets
        frames = rng.choice(meta.num_frames, size=k + m, replace=meta.num_frames < k + m).tolist()
        references = [(t, 0) for t in frames[:k]]
        targets = [(t, 0) for t in frames[k:]]
        return ViewChoice(references, targets, largest_face(meta, references), target_faces=targets)
