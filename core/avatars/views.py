"""Samples with views chosen by a rule instead of at random, for avatar creation and evaluation.

:class:`FixedViewsDataset` reuses the datasets' own view building
(:class:`~lca.data.store_dataset.StoreDataset`:
square resizing, face close-ups, crop intrinsics), so references and targets look exactly like the ones
the model was trained on; it reads any split, and its samples are a fixed plan of ``(group, ViewChoice)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from lca.contracts.dataset import Dataset, DatasetConfig
from lca.contracts.sample import Driving, Sample, Views
from lca.data.crop import padded_square
from lca.data.manifest import open_reader
from lca.data.reader import GroupMeta, StoreReader
from lca.data.store_dataset import StoreDataset, ViewChoice, _concat, largest_face
from lca.errors import Problem, SchemaError


class FixedViewsConfig(DatasetConfig):
    target_margin: float = Field(0.0, ge=0.0, le=4.0)
    """Widen the targets' square frame by this share of its side (0.2: LHM's evaluation padding, 10% on
    each side); the margin is outside the image, so it is empty (mask 0)."""


class FixedViewsDataset(StoreDataset):
    """A store's samples from an explicit ``plan`` (list of ``(group, ViewChoice)``), any split."""

    Config: ClassVar[type[DatasetConfig]] = FixedViewsConfig
    config: FixedViewsConfig

    def __init__(
        self,
        config: FixedViewsConfig,
        *,
        reader: StoreReader | None = None,
        plan: list[tuple[str, ViewChoice]] | None = None,
    ) -> None:
        # StoreDataset.__init__ would restrict the groups to one split; a plan names its groups itself.
        Dataset.__init__(self, config)
        self.reader = reader or open_reader(config.path, config.storage_options)
        self.layout = self.reader.layout
        self.groups = self.reader.group_names()
        self.plan = list(plan or [])

    def __len__(self) -> int:
        return len(self.plan)

    def meta(self, group: str) -> GroupMeta:
        """The group's metadata; an unknown group names the groups that exist."""
        if group not in self.groups:
            shown = ", ".join(self.groups[:12]) + (" ..." if len(self.groups) > 12 else "")
            raise SchemaError([Problem(self.reader.url, f"no group '{group}' (groups: {shown})", group)])
        return self.reader.meta(group)

    def choose(self, meta: GroupMeta, rng: np.random.Generator) -> ViewChoice:
        raise TypeError("FixedViewsDataset takes its views from its plan, not from choose()")

    def references(self, meta: GroupMeta, pairs: list[tuple[int, int]]) -> Views:
        """Reference views of ``pairs`` plus (if configured) the face close-up of their largest face,
        segmented as the training samples are."""
        return self._references(meta, pairs, largest_face(meta, pairs))

    def targets(self, meta: GroupMeta, pairs: list[tuple[int, int]]) -> Views:
        """Target views of ``pairs``: the whole frame's square, widened by ``target_margin``."""
        return self._views(meta, pairs, padded_square(meta.height, meta.width, self.config.target_margin))

    def driving(self, meta: GroupMeta, faces: list[tuple[int, int]], frames: list[int]) -> Driving:
        """Face crops of ``faces`` (one per target) and the store's blendshapes/gaze of ``frames``."""
        crops = [self._face_crop(meta, t, c, self.config.face_crop_size) for t, c in faces]
        return Driving(
            face=torch.stack([f for f, _ in crops]),
            face_valid=torch.tensor([ok for _, ok in crops]),
            blendshapes=None if meta.blendshapes is None else torch.from_numpy(meta.blendshapes[frames]),
            gaze=None if meta.gaze is None else torch.from_numpy(meta.gaze[frames]),
        )

    def face_camera(self, meta: GroupMeta, t: int) -> tuple[int, int]:
        """The (frame, camera) whose face box is the largest for frame ``t`` (the expression input)."""
        return largest_face(meta, [(t, c) for c in range(meta.num_cameras)]) or (t, 0)

    def make_sample(self, index: int, rng: Any) -> Sample:
        group, choice = self.plan[index]
        meta = self.meta(group)
        references = self._views(meta, choice.references)
        if self.config.face_reference:
            references = _concat(references, self._face_view(meta, choice.face_reference))
        frames = [t for t, _ in choice.targets]
        return Sample(
            references,
            self.targets(meta, choice.targets),
            self.driving(meta, choice.target_faces, frames),
            identity=meta.identity,
            group=group,
            index=index,
        )
