"""The ``driver`` kind: a target frame's driving signals -> an embedding for the decoder's correction branch.

Context passed at construction: none. Several drivers are active at once; the model concatenates their
outputs along the last dim, so the decoder's ``driver_dim`` is the sum of the active drivers' ``out_dim``.

Signals: a ``dict[str, Tensor]``, every tensor with leading dims ``[B, M]`` (``M`` target frames per
sample). The names the toolkit uses (the dataset writes them under these names):

- ``body_pose`` ``[B, M, 63]``: SMPL-X body pose, 21 joints x axis-angle (radians), root excluded;
- ``left_hand_pose`` ``[B, M, 45]``: SMPL-X left hand, 15 joints x axis-angle (full pose, no PCA);
- ``right_hand_pose`` ``[B, M, 45]``: SMPL-X right hand, 15 joints x axis-angle;
- ``jaw_pose`` ``[B, M, 3]``: SMPL-X jaw, axis-angle;
- ``face_crop`` ``[B, M, 3, h, w]``: the target frame's face crop, float RGB in [0, 1];
- ``blendshapes`` ``[B, M, K]``: expression coefficients, ARKit (K = 52) or FLAME (K = its count);
- ``gaze`` ``[B, M, 2, 3]``: unit gaze directions of the (left, right) eye, in the frame the store uses.

A driver reads only the names in its class attribute ``signals``; extra entries are ignored. A missing
or mis-shaped signal raises :class:`lca.errors.SignalError` naming the driver and the signal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from lca.errors import SignalError


class Driver(nn.Module, ABC):
    """``signals: dict[str, Tensor]`` (leading ``[B, M]``) -> embedding ``[B, M, out_dim]``."""

    test_config: ClassVar[dict[str, Any]] = {}
    """Params of a small, fast build for the conformance checks (:mod:`lca.testing`), set per component."""

    signals: ClassVar[tuple[str, ...]]
    """The signal names this driver reads (see the module doc)."""

    @property
    @abstractmethod
    def out_dim(self) -> int:
        """Embedding width ``D``."""

    @abstractmethod
    def forward(self, signals: dict[str, Tensor]) -> Tensor:
        """Signals -> ``[B, M, out_dim]``."""

    def regularization(self) -> dict[str, Tensor]:
        """Scalar loss terms of the last ``forward`` (e.g. ``{"kl": ...}``), weighted by the loss config.
        Empty for drivers without a regulariser."""
        return {}

    def signal(self, signals: dict[str, Tensor], name: str, trailing: Sequence[int | None]) -> Tensor:
        """``signals[name]`` checked to be ``[B, M, *trailing]`` (``None`` = any size); precise errors."""
        if name not in signals:
            raise SignalError(
                f"{type(self).__name__} needs the driving signal '{name}', but the sample has only "
                f"{sorted(signals)}: train on data that has it, or remove the driver (for example "
                "'drivers.gaze=null' for a store without gaze)"
            )
        x = signals[name]
        ok = x.dim() == 2 + len(trailing) and all(
            want is None or got == want for got, want in zip(x.shape[2:], trailing, strict=True)
        )
        if not ok:
            shown = ", ".join("*" if t is None else str(t) for t in trailing)
            raise SignalError(
                f"{type(self).__name__}: signal '{name}' must be [B, M, {shown}]; got {tuple(x.shape)}"
            )
        return x
