"""The ``dataset`` kind: a map-style ``torch.utils.data.Dataset`` of :class:`~lca.contracts.sample.Sample`.

Construction: ``cls(config)``; no context crosses slots. Use with
``DataLoader(dataset, batch_size=B, collate_fn=lca.contracts.sample.collate, num_workers=n)``; under
``accelerate`` the prepared DataLoader shards indices across processes, nothing else is needed.

Guarantees every dataset honours:

- ``dataset[i]`` depends only on ``(config.seed, epoch, i)`` (never on worker count, worker id or
  process), so a run is reproducible however it is parallelised. ``set_epoch(e)`` changes the views
  drawn per index; with ``persistent_workers=True`` call it before the workers start.
- Sample shapes are those of :mod:`lca.contracts.sample`: references ``[V,3,S,S]`` with
  ``S = config.image_size``, ``V = K (+1 face close-up)``, ``K`` in
  ``[min_references or num_references, num_references]``; targets ``[M,3,S,S]``, ``M = num_targets``;
  driving face crops ``[M,3,F,F]`` with ``F = config.face_crop_size``.
- ``on_error``: ``raise`` propagates a :class:`~lca.errors.StoreError` naming store, group, array
  and index. ``skip`` replaces the failing index by the next indices (deterministically) and records
  each error in ``Sample.skipped`` (so ``Batch.skipped`` carries them out of worker processes) and in
  the dataset's own ``skipped`` list (for in-process use). Nothing is dropped silently.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator
from torch.utils.data import Dataset as TorchDataset

from lca.component import ComponentConfig
from lca.contracts.sample import Sample
from lca.errors import Problem, StoreError

log = logging.getLogger(__name__)


class DatasetConfig(ComponentConfig):
    """Fields every dataset shares."""

    path: str = ""
    """Store location: a local path or any fsspec URL (s3://, gs://, memory://...)."""
    storage_options: dict[str, Any] | None = None
    """fsspec options for remote stores (credentials, endpoint...)."""
    split: Literal["train", "val", "test"] = "train"
    """Which identities to read: groups whose 'split' attribute matches."""
    num_references: int = Field(4, ge=1)
    """K, the number of reference views (the largest K when min_references is set)."""
    min_references: int | None = Field(None, ge=1)
    """If set, K is drawn per sample in [min_references, num_references] (variable K)."""
    num_targets: int = Field(2, ge=1)
    """M, the number of target views to render and supervise."""
    face_reference: bool = True
    """Add a face close-up crop (from the face box) to the reference views."""
    reference_background: float | None = Field(1.0, ge=0.0, le=1.0)
    """Grey level in [0, 1] that replaces the background of the reference views (through their masks), so
    the encoder sees the segmented person as LHM's inputs are (white, 1.0); None keeps the photographed
    background. Targets are never changed: the losses mask them."""
    image_size: int = Field(256, ge=1)
    """Side of the square reference and target images, in pixels."""
    face_crop_size: int = Field(128, ge=1)
    """Side of the square face crops given to expression encoders (driving signal), in pixels."""
    face_margin: float = Field(1.4, gt=0)
    """Face crop side as a multiple of the face box's longer side."""
    samples_per_group: int = Field(1, ge=1)
    """Dataset indices per clip/capture (len = groups x samples_per_group)."""
    sampling: Literal["uniform", "identity", "frames"] = "uniform"
    """How training draws the indices of an epoch: ``uniform`` (a permutation: each group equally often),
    ``identity`` (each person equally often, whatever their number of groups) or ``frames`` (each group
    in proportion to its frames); the last two draw with replacement, deterministically per (seed, epoch)."""
    seed: int = Field(0, ge=0)
    """Seed of the per-index view sampling."""
    on_error: Literal["raise", "skip"] = "raise"
    """What an unreadable chunk does: raise a located error, or skip to the next index and count it."""
    max_skips: int = Field(16, ge=0)
    """With on_error=skip, how many following indices to try before raising."""

    @model_validator(mode="after")
    def _min_references_fit(self) -> DatasetConfig:
        if self.min_references is not None and self.min_references > self.num_references:
            raise ValueError(
                f"min_references={self.min_references} is above num_references={self.num_references}"
            )
        return self


@dataclass(frozen=True)
class Provenance:
    """Where a dataset's samples come from, as a training run records it (``seen.json``) so that evaluation
    can refuse people the model trained on (docs/evaluation.md, "Held out means held out")."""

    store: str
    """The store's concrete location."""
    layout: str
    """Its layout (``wild-video``, ``studio``, or a plugin's)."""
    fingerprint: str
    """A hash of the store's group list (names, identities, splits)."""
    split: str
    """The split the dataset reads."""
    identities: tuple[str, ...]
    """Every identity of that split, sorted: the people a model trained on it has seen."""


class Dataset(TorchDataset, ABC):
    """Base of dataset components: the error policy and the per-index random generator live here."""

    test_config: ClassVar[dict[str, Any]] = {}
    """Params of a small, fast build for the conformance checks (:mod:`lca.testing`), set per component."""

    Config: ClassVar[type[DatasetConfig]] = DatasetConfig

    def __init__(self, config: DatasetConfig, **context: Any) -> None:
        self.config = config
        self.epoch = 0
        self.skipped: list[str] = []

    @property
    def skipped_count(self) -> int:
        """Indices skipped in this process (DataLoader workers count their own; see ``Batch.skipped``)."""
        return len(self.skipped)

    def set_epoch(self, epoch: int) -> None:
        """Draw different views per index in another epoch (still independent of workers)."""
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        """The generator of one index: a function of (seed, epoch, index) only."""
        return np.random.default_rng([self.config.seed, self.epoch, index])

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def provenance(self) -> Provenance:
        """The store, split and identities this dataset draws from (recorded by every training run)."""

    @abstractmethod
    def make_sample(self, index: int, rng: np.random.Generator) -> Sample:
        """Build the sample of ``index``; raise :class:`StoreError` for unreadable data."""

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        errors: list[str] = []
        for attempt in range(self.config.max_skips + 1 if self.config.on_error == "skip" else 1):
            current = (index + attempt) % len(self)
            try:
                sample = self.make_sample(current, self.rng(current))
                bad = sample.non_finite()
                if bad:  # one sample's NaN would skip the whole batch's step: it is unreadable data instead
                    problem = f"non-finite values in {', '.join(bad)}"
                    raise StoreError([Problem(self.config.path, problem, sample.group, "", (current,))])
            except StoreError as error:
                if self.config.on_error == "raise":
                    raise
                message = f"skipped index {current}: {error}"
                log.warning(message)
                errors.append(message)
                self.skipped.append(message)
                continue
            sample.index = index
            sample.skipped = errors
            return sample
        raise StoreError(
            [
                Problem(
                    self.config.path,
                    f"on_error=skip gave up after {len(errors)} unreadable indices from {index}",
                )
            ]
        )
