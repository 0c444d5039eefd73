"""``lca view --run RUN_DIR``: follow a training run. The run's newest valid checkpoint (as ``--resume`` and
``lca avatar create`` find it) becomes the avatar of one held-out person of a store whenever a new one
appears, and the run's logged total losses (its TensorBoard events, read with tensorboard's own reader)
are plotted per stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lca.avatars.file import AvatarFile
from lca.errors import LcaError


@dataclass
class Snapshot:
    """What the follower last found: the checkpoint (``stage/name``) and the avatar made from it."""

    checkpoint: Path
    label: str
    avatar: AvatarFile


class RunFollower:
    """Watches ``run``; each new checkpoint -> the avatar of ``group`` of ``store`` (default: the store's
    first ``test`` group, a person no run trains on)."""

    def __init__(
        self, run: Path, store: str = "synthetic://studio", group: str | None = None, device: str = "cpu"
    ):
        if not Path(run).is_dir():
            raise LcaError(f"Run folder {run} does not exist (give runs/<pipeline>/<time> of `lca train`).")
        self.run, self.store, self.device = Path(run), store, device
        self.group = group
        self.last: Snapshot | None = None

    def poll(self) -> Snapshot | None:
        """A new snapshot when the newest checkpoint changed since the last poll, else None."""
        from lca.train.checkpoint import CheckpointError, resolve

        try:
            found = resolve(self.run)
        except CheckpointError:
            return None  # no checkpoint written yet
        if self.last is not None and self.last.checkpoint == found.path:
            return None
        self.last = Snapshot(
            found.path, f"{found.path.parent.name}/{found.path.name}", self._avatar(found.path)
        )
        return self.last

    def _avatar(self, checkpoint: Path) -> AvatarFile:
        from lca.avatars.create import load_model, store_person_avatar
        from lca.data.locations import resolve_store_url
        from lca.data.reader import StoreReader

        model, found = load_model(checkpoint, device=self.device)
        if self.group is None:
            groups = StoreReader(resolve_store_url(self.store)).group_names("test")
            if not groups:
                raise LcaError(f"{self.store} has no test group to show: pass --group.")
            self.group = groups[0]
        return store_person_avatar(model, self.store, self.group, checkpoint=str(found.path))

    def losses(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The logged ``<stage>/loss/total`` of every stage on one axis (the stages one after another):
        ``x [N]`` and per stage ``y [N]`` (NaN outside the stage)."""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        folder = self.run / "tensorboard"
        if not folder.is_dir():
            return np.zeros(0), {}
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        stages = []
        for tag in events.Tags().get("scalars", []):
            scalars = events.Scalars(tag) if tag.endswith("/loss/total") else []
            if scalars:
                stages.append((scalars[0].wall_time, tag.split("/")[0], [e.value for e in scalars]))
        stages.sort()
        total = sum(len(values) for _, _, values in stages)
        series, start = {}, 0
        for _, stage, values in stages:
            y = np.full(total, np.nan)
            y[start : start + len(values)] = values
            series[stage] = y
            start += len(values)
        return np.arange(total, dtype=np.float64), series
