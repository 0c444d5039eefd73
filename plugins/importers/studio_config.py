"""The config fields importers share: which frames of a long source to keep (every importer of a
sequence), and the studio layout of the multi-view dataset importers (DNA-Rendering, ZJU-MoCap, ActorsHQ,
MVHumanNet)."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import Field

from lca.contracts.importer import ImporterConfig

T = TypeVar("T")


class FrameSelectionConfig(ImporterConfig):
    frame_step: int = Field(1, ge=1)
    """Import every n-th frame."""
    max_frames: int | None = Field(None, ge=1)
    """Import at most this many frames (after ``frame_step``)."""

    def select(self, frames: list[T]) -> list[T]:
        """The frames kept: every ``frame_step``-th, at most ``max_frames``."""
        return frames[:: self.frame_step][: self.max_frames]


class StudioImportConfig(FrameSelectionConfig):
    layout: Literal["studio"] = "studio"
    """A calibrated multi-view capture: studio only."""
