"""Expression sliders for pipelines whose expression driver reads face crops (``expression-code``): the
learned code's principal directions. The driver encodes the face crops of the demo performer's changing
expressions (:func:`~lca.avatars.demo.demo_motion`); the mean code and the top principal directions of
those codes (with their spreads) span what a slider can reach, and the viewer drives the avatar with
``mean + sum_i slider_i * spread_i * direction_i`` in place of the driver's output for a face crop."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

CODE_SIGNAL = "expression_code"
"""The signal that carries a code to :class:`CodeOverride` (``[B, M, D]``)."""


class CodeOverride(nn.Module):
    """An expression driver that returns the ``expression_code`` signal when one is given, else runs the
    wrapped driver (same output width, signals and regularisers)."""

    def __init__(self, driver: nn.Module) -> None:
        super().__init__()
        self.driver = driver
        self.signals = driver.signals
        self.config = getattr(driver, "config", None)  # face_input_size reads its input size

    @property
    def out_dim(self) -> int:
        return self.driver.out_dim

    def forward(self, signals: dict[str, Tensor]) -> Tensor:
        return signals[CODE_SIGNAL] if CODE_SIGNAL in signals else self.driver(signals)

    def regularization(self) -> dict[str, Tensor]:
        return self.driver.regularization()


class CodeDirections:
    """The mean ``[D]``, principal directions ``[K, D]`` and spreads ``[K]`` of a face-crop driver's codes."""

    def __init__(self, driver: nn.Module, crops: Tensor, count: int = 5) -> None:
        with torch.no_grad():
            valid = torch.ones(1, crops.shape[0], dtype=torch.bool)
            codes = driver({"face_crop": crops[None], "face_valid": valid})[0].double()  # [T, D]
        self.mean = codes.mean(dim=0)
        _, singular, vh = torch.linalg.svd(codes - self.mean, full_matrices=False)
        k = min(count, vh.shape[0])
        self.directions = vh[:k]
        self.spreads = singular[:k] / max(codes.shape[0] - 1, 1) ** 0.5

    def code(self, weights: list[float]) -> Tensor:
        """``mean + sum_i weights_i * spread_i * direction_i`` as ``[1, 1, D]`` float."""
        w = torch.zeros(len(self.spreads), dtype=torch.float64)
        w[: len(weights)] = torch.tensor(weights[: len(self.spreads)], dtype=torch.float64)
        return (self.mean + (w * self.spreads) @ self.directions).float()[None, None]


def face_crop_driver(player: Any) -> str | None:
    """The name of the player's driver that reads face crops, if any."""
    for name, driver in player.drivers.items():
        if "face_crop" in driver.signals:
            return name
    return None


def install_code_directions(player: Any, crops: Tensor) -> CodeDirections | None:
    """Wrap the player's face-crop driver in :class:`CodeOverride` and return its code directions for the
    face ``crops [T, 3, H, W]`` (None when the pipeline has no such driver)."""
    name = face_crop_driver(player)
    if name is None:
        return None
    driver = player.drivers[name]
    if not isinstance(driver, CodeOverride):
        driver = CodeOverride(driver)
        player.drivers[name] = driver
    return CodeDirections(driver.driver, crops)
