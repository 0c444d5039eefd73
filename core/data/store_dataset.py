"""What the ``wild-video`` and ``studio`` datasets share: turning chosen (frame, camera) pairs of a
store group into :class:`~lca.contracts.sample.Sample` tensors. A layout's plugin only chooses the views.

Full frames are resized into a centred square of ``image_size`` (the short side padded with zeros);
face close-ups are square crops around the face box. Every crop gets its own intrinsics
(:mod:`lca.data.crop`), so a face crop is simply one more camera of the same frame.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from lca.contracts.dataset import Dataset, DatasetConfig, Provenance
from lca.contracts.sample import Driving, Sample, Views
from lca.data.crop import crop_intrinsics, crop_resize, full_square, square_around
from lca.data.manifest import open_reader
from lca.data.reader import GroupMeta


@dataclass(frozen=True)
class ViewChoice:
    """The views of one sample: reference and target (frame, camera) pairs and face sources."""

    references: list[tuple[int, int]]
    targets: list[tuple[int, int]]
    face_reference: tuple[int, int] | None
    """(frame, camera) whose face box gives the face close-up reference, or None."""
    target_faces: list[tuple[int, int]]
    """(frame, camera) per target whose face crop is that target's expression input."""


class StoreDataset(Dataset):
    """A dataset over the groups of one split of a store; subclasses implement :meth:`choose`."""

    layout: str = ""

    def __init__(self, config: DatasetConfig, **context: Any) -> None:
        super().__init__(config, **context)
        if not config.path:
            raise ValueError(f"{type(self).__name__}: config.path (the store location) is empty")
        self.reader = open_reader(config.path, config.storage_options)
        if self.reader.layout != self.layout:
            raise ValueError(
                f"{config.path} is a '{self.reader.layout}' store; the '{self.layout}' dataset cannot read it"
            )
        self.groups = self.reader.group_names(config.split)
        if not self.groups:
            raise ValueError(f"{config.path} has no group with split '{config.split}'")

    def __len__(self) -> int:
        return len(self.groups) * self.config.samples_per_group

    def provenance(self) -> Provenance:
        identities = self.reader.identities(self.config.split)
        return Provenance(
            store=self.reader.url,
            layout=self.reader.layout,
            fingerprint=self.reader.fingerprint(),
            split=self.config.split,
            identities=tuple(sorted(set(identities.values()))),
        )

    def sample_weights(self) -> np.ndarray | None:
        """Per-index weights of the configured ``sampling`` (None: uniform), from metadata only: a
        manifest's columns or a store's group attributes and array shapes."""
        mode = self.config.sampling
        if mode == "uniform":
            return None
        if mode == "identity":
            people = list(self.reader.identities(self.config.split).values())
            counts: dict[str, int] = {}
            for person in people:
                counts[person] = counts.get(person, 0) + 1
            weights = np.array([1.0 / counts[p] for p in people])
        else:
            weights = self.reader.num_frames(self.config.split).astype(np.float64)
        return (
            np.repeat(weights / weights.sum(), self.config.samples_per_group) / self.config.samples_per_group
        )

    def num_references(self, rng: np.random.Generator) -> int:
        """K for one sample: fixed, or drawn in [min_references, num_references]."""
        low = self.config.min_references
        return (
            self.config.num_references
            if low is None
            else int(rng.integers(low, self.config.num_references + 1))
        )

    @abstractmethod
    def choose(self, meta: GroupMeta, rng: np.random.Generator) -> ViewChoice:
        """Pick the sample's views in a group (deterministic given ``rng``)."""

    def make_sample(self, index: int, rng: np.random.Generator) -> Sample:
        group = self.groups[index // self.config.samples_per_group]
        meta = self.reader.meta(group)
        choice = self.choose(meta, rng)
        references = self._references(meta, choice.references, choice.face_reference)
        targets = self._views(meta, choice.targets)
        faces = [self._face_crop(meta, t, c, self.config.face_crop_size) for t, c in choice.target_faces]
        frames = [t for t, _ in choice.targets]
        driving = Driving(
            face=torch.stack([f for f, _ in faces]),
            face_valid=torch.tensor([ok for _, ok in faces]),
            blendshapes=None if meta.blendshapes is None else torch.from_numpy(meta.blendshapes[frames]),
            gaze=None if meta.gaze is None else torch.from_numpy(meta.gaze[frames]),
        )
        return Sample(references, targets, driving, identity=meta.identity, group=group, index=index)

    def _references(
        self, meta: GroupMeta, pairs: list[tuple[int, int]], face: tuple[int, int] | None
    ) -> Views:
        """Reference views of ``pairs``, plus (if configured) the face close-up of ``face``, segmented onto
        ``reference_background``."""
        views = self._views(meta, pairs)
        if self.config.face_reference:
            views = _concat(views, self._face_view(meta, face))
        return segmented(views, self.config.reference_background)

    def _read(self, meta: GroupMeta, t: int, c: int) -> torch.Tensor:
        """Image and mask of one view as ``[4,H,W]`` float in [0,1] (RGB + mask)."""
        image = self.reader.read_frame(meta.name, t, c)
        mask = self.reader.read_mask(meta.name, t, c)
        stacked = np.concatenate([image, mask[..., None]], axis=-1)
        return torch.from_numpy(stacked).permute(2, 0, 1).float() / 255.0

    def _views(self, meta: GroupMeta, pairs: list[tuple[int, int]], box: np.ndarray | None = None) -> Views:
        """The views ``pairs`` cropped to ``box`` (default: the square holding the whole frame) at the
        configured size, with the intrinsics of that crop."""
        size = self.config.image_size
        box = full_square(meta.height, meta.width) if box is None else box
        crops, Ks, viewmats = [], [], []
        for t, c in pairs:
            crops.append(crop_resize(self._read(meta, t, c), box, size))
            viewmat, K = meta.camera(t, c)
            viewmats.append(torch.from_numpy(viewmat))
            Ks.append(crop_intrinsics(torch.from_numpy(K), box, size))
        return _make_views(meta, pairs, crops, viewmats, Ks, is_face=False, valid=[True] * len(pairs))

    def _face_crop(self, meta: GroupMeta, t: int, c: int, size: int) -> tuple[torch.Tensor, bool]:
        box = square_around(meta.box(t, c), self.config.face_margin)
        if box is None:
            return torch.zeros(3, size, size), False
        return crop_resize(self._read(meta, t, c)[:3], box, size), True

    def _face_view(self, meta: GroupMeta, pair: tuple[int, int] | None) -> Views:
        """The face close-up as one more reference view (invalid and black when there is no face)."""
        size = self.config.image_size
        t, c = pair if pair is not None else (0, 0)
        box = None if pair is None else square_around(meta.box(t, c), self.config.face_margin)
        viewmat, K = meta.camera(t, c)
        if box is None:
            crop, K_crop = torch.zeros(4, size, size), torch.from_numpy(K)
        else:
            crop, K_crop = (
                crop_resize(self._read(meta, t, c), box, size),
                crop_intrinsics(torch.from_numpy(K), box, size),
            )
        return _make_views(
            meta, [(t, c)], [crop], [torch.from_numpy(viewmat)], [K_crop], True, [box is not None]
        )


def _make_views(
    meta: GroupMeta,
    pairs: list[tuple[int, int]],
    crops: list[torch.Tensor],
    viewmats: list[torch.Tensor],
    Ks: list[torch.Tensor],
    is_face: bool,
    valid: list[bool],
) -> Views:
    stacked = torch.stack(crops)
    per_frame = [meta.params(t) for t, _ in pairs]
    return Views(
        images=stacked[:, :3].contiguous(),
        masks=stacked[:, 3:].contiguous(),
        viewmats=torch.stack(viewmats),
        Ks=torch.stack(Ks),
        params={k: torch.from_numpy(np.stack([p[k] for p in per_frame])) for k in per_frame[0]},
        frame=torch.tensor([t for t, _ in pairs], dtype=torch.long),
        camera=torch.tensor([c for _, c in pairs], dtype=torch.long),
        is_face=torch.full((len(pairs),), is_face),
        valid=torch.tensor(valid),
    )


def over_background(images: torch.Tensor, masks: torch.Tensor, background: float) -> torch.Tensor:
    """``images`` with everything outside ``masks`` (soft masks blend) replaced by the grey level
    ``background``: how every reference view is segmented."""
    return images * masks + background * (1.0 - masks)


def segmented(views: Views, background: float | None) -> Views:
    """``views`` with their background replaced by the grey level ``background`` through the masks (None:
    unchanged)."""
    if background is None:
        return views
    return replace(views, images=over_background(views.images, views.masks, background))


def _concat(a: Views, b: Views) -> Views:
    return Views(
        images=torch.cat([a.images, b.images]),
        masks=torch.cat([a.masks, b.masks]),
        viewmats=torch.cat([a.viewmats, b.viewmats]),
        Ks=torch.cat([a.Ks, b.Ks]),
        params={k: torch.cat([a.params[k], b.params[k]]) for k in a.params},
        frame=torch.cat([a.frame, b.frame]),
        camera=torch.cat([a.camera, b.camera]),
        is_face=torch.cat([a.is_face, b.is_face]),
        valid=torch.cat([a.valid, b.valid]),
    )


def largest_face(meta: GroupMeta, pairs: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The (frame, camera) among ``pairs`` with the largest face box, or None if no face is visible."""
    best, best_area = None, 0.0
    for t, c in pairs:
        x0, y0, x1, y1 = (float(v) for v in meta.box(t, c))
        area = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
        if area > best_area:
            best, best_area = (t, c), area
    return best
