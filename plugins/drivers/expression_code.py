"""``expression-code``: the self-supervised expression encoder (a face crop -> a KL-regularised code)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.driver import Driver
from lca.errors import SignalError


class ExpressionCodeConfig(ComponentConfig):
    code_dim: int = Field(128, ge=1)
    """Size of the expression code (the embedding the decoder sees)."""
    input_size: int = Field(128, ge=1)
    """Face crops are resized to ``input_size`` x ``input_size`` before the encoder."""
    channels: tuple[int, ...] = (32, 64, 128, 256)
    """Channels of the stride-2 conv stages."""


def kl_to_standard_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mean, exp(logvar)) || N(0, I))`` per sample: ``0.5 * sum(mean^2 + exp(logvar) - 1 - logvar)``
    over the last dim."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).sum(-1)


class ExpressionCode(Driver):
    """``face_crop [B, M, 3, h, w]`` -> conv stages -> global average -> ``(mean, logvar)`` of a diagonal
    Gaussian -> code ``[B, M, code_dim]``: a sample ``mean + exp(logvar / 2) * eps`` in training, the mean in
    eval. Trained end to end by the avatar's photometric loss; the KL term (``regularization()["kl"]``, the
    mean over frames of the summed per-dimension KL) keeps the code compact, as in Codec Avatar VAEs.

    Optional signal ``face_valid [B, M]`` bool: frames without a usable face (and padded frames) get the
    prior mean (a zero code) and do not count in the KL.
    """

    Config: ClassVar[type[ExpressionCodeConfig]] = ExpressionCodeConfig
    test_config: ClassVar[dict[str, Any]] = {"code_dim": 8, "input_size": 16, "channels": [4, 8]}
    signals: ClassVar[tuple[str, ...]] = ("face_crop",)

    def __init__(self, config: ExpressionCodeConfig) -> None:
        super().__init__()
        self.config = config
        stages: list[nn.Module] = []
        c_in = 3
        for c_out in config.channels:
            stages += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                nn.GroupNorm(1, c_out),
                nn.LeakyReLU(0.2),
            ]
            c_in = c_out
        self.conv = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, 2 * config.code_dim)
        self._regularization: dict[str, Tensor] = {}

    @property
    def out_dim(self) -> int:
        return self.config.code_dim

    def forward(self, signals: dict[str, Tensor]) -> Tensor:
        crops = self.signal(signals, "face_crop", [3, None, None])
        b, m = crops.shape[:2]
        x = crops.flatten(0, 1)
        size = (self.config.input_size, self.config.input_size)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        mean, logvar = self.head(self.conv(x * 2.0 - 1.0)).unflatten(0, (b, m)).chunk(2, dim=-1)
        code = mean + (0.5 * logvar).exp() * torch.randn_like(mean) if self.training else mean
        kl = kl_to_standard_normal(mean, logvar)  # [B, M]
        valid = signals.get("face_valid")
        if valid is None:
            self._regularization = {"kl": kl.mean()}
            return code
        if valid.shape != (b, m) or valid.dtype != torch.bool:
            raise SignalError(
                f"ExpressionCode: signal 'face_valid' must be bool [{b}, {m}]; "
                f"got {valid.dtype} {tuple(valid.shape)}"
            )
        self._regularization = {"kl": (kl * valid).sum() / valid.sum().clamp(min=1)}
        return code * valid[..., None]

    def regularization(self) -> dict[str, Tensor]:
        """``{"kl": scalar}`` of the last forward (empty before the first one)."""
        return dict(self._regularization)
