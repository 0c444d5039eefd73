"""Errors raised by model components (subclasses of :class:`lca.errors.LcaError`, so the CLI prints them
without a traceback)."""

from __future__ import annotations

from lca.errors import LcaError


class WeightsNotFoundError(LcaError, FileNotFoundError):
    """A pretrained-weights file that is not where the config says; names the file and where to get it."""

    def __init__(self, component: str, path: str, how_to_get: str) -> None:
        super().__init__(
            f"{component}: weights file '{path}' does not exist. The toolkit never downloads weights at run "
            f"time; {how_to_get} and set the component's `weights` field to its local path (or set "
            "`weights: null` for a random initialisation)."
        )


class WeightsMismatchError(LcaError, ValueError):
    """A weights file whose tensors do not fit the configured architecture."""


class SignalError(LcaError, KeyError, ValueError):
    """A driving signal that is missing or has the wrong shape."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]
