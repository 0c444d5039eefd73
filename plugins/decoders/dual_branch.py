"""``dual-branch``: the LCA decoder (canonical Gaussians + driven corrections), zero-initialised."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from lca.component import ComponentConfig
from lca.contracts.decoder import AnchorGaussians, Decoder, GaussianCorrection


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class DualBranchConfig(ComponentConfig):
    num_gaussians: int = Field(2, ge=1)
    """K, Gaussians per anchor."""
    hidden_dim: int = Field(256, ge=1)
    """Hidden width of both branches' MLPs."""
    num_layers: int = Field(2, ge=1)
    """Hidden layers of each branch's MLP."""
    max_offset: float = Field(0.1, gt=0)
    """Canonical offsets from the anchor are ``max_offset * tanh(.)`` per axis (metres)."""
    init_spread: float = Field(0.005, ge=0)
    """At initialisation the K Gaussians of an anchor sit on a sphere of this radius (metres) around it
    (Fibonacci points), so they receive different gradients; unused when K = 1 (offset 0)."""
    min_scale: float = Field(0.0001, gt=0)
    """Lower bound of the scales (metres)."""
    max_scale: float = Field(0.05, gt=0)
    """Upper bound of the scales (metres)."""
    init_scale: float = Field(0.005, gt=0)
    """Scale of every Gaussian at initialisation (metres), between the bounds."""
    init_opacity: float = Field(0.5, gt=0, lt=1)
    """Opacity of every Gaussian at initialisation, in (0, 1)."""
    max_correction_offset: float = Field(0.05, ge=0)
    """Position corrections are ``max_correction_offset * tanh(.)`` per axis (metres)."""
    max_log_scale_correction: float = Field(1.0, ge=0)
    """Log-scale corrections are ``max_log_scale_correction * tanh(.)`` (so scales change by at most e^1)."""
    max_color_correction: float = Field(0.5, ge=0)
    """Colour corrections are ``max_color_correction * tanh(.)`` per channel."""

    @model_validator(mode="after")
    def _check_bounds(self) -> DualBranchConfig:
        """The rules across fields (each field's own bounds are on the field)."""
        if not 0 < self.min_scale < self.init_scale < self.max_scale:
            raise ValueError("need 0 < min_scale < init_scale < max_scale")
        if not 0 <= self.init_spread < self.max_offset:
            raise ValueError("need 0 <= init_spread < max_offset")
        return self


def fibonacci_sphere(k: int) -> Tensor:
    """``k`` roughly evenly spread unit vectors ``[k, 3]`` (zeros for ``k = 1``: a single Gaussian stays on
    its anchor). Hand-written: a few lines of closed form, no library provides it."""
    if k == 1:
        return torch.zeros(1, 3)
    i = torch.arange(k, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / k
    r = (1.0 - z.square()).sqrt()
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    return torch.stack([r * phi.cos(), r * phi.sin(), z], dim=-1).float()


def _mlp(in_dim: int, hidden: int, layers: int) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.SiLU()]
    return nn.Sequential(*blocks)


def _zero_linear(in_dim: int, out_dim: int) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class DualBranch(Decoder):
    """Canonical branch: ``MLP -> zero-initialised heads -> activations`` per anchor, K Gaussians each:

    - offset   = ``max_offset * tanh(raw + atanh(base_k / max_offset))``, ``base_k = init_spread * fib_k``
    - rotation = ``normalize(raw + (1, 0, 0, 0))`` (wxyz)
    - scale    = ``min + (max - min) * sigmoid(raw + logit((init_scale - min) / (max - min)))``
    - colour   = ``sigmoid(raw)``
    - opacity  = ``sigmoid(raw + logit(init_opacity))``

    so with the heads at zero (weights and biases), training starts from exactly: offset ``base_k``
    (0 for K = 1), identity rotation, scale ``init_scale`` on all axes, colour 0.5 grey, opacity
    ``init_opacity``. The constants live in the activations, not in the biases, so "zero-initialised"
    is literal.

    Correction branch: ``h = SiLU(W_f f_n + W_d d_m + b)`` (a linear layer on the concatenation
    ``[f_n, d_m]``, computed without materialising it), more hidden layers, then a zero-initialised head:
    position ``max_correction_offset * tanh``, rotation ``normalize(raw + (1, 0, 0, 0))``, log-scale
    ``max_log_scale_correction * tanh``, colour ``max_color_correction * tanh``. At initialisation every
    correction is exactly zero / identity. There is no opacity output.
    """

    Config: ClassVar[type[DualBranchConfig]] = DualBranchConfig
    test_config: ClassVar[dict[str, Any]] = {"hidden_dim": 16, "num_gaussians": 3}

    def __init__(self, config: DualBranchConfig, *, dim: int, driver_dim: int) -> None:
        super().__init__()
        self.config = config
        self.dim, self.driver_dim = dim, driver_dim
        k, hidden = config.num_gaussians, config.hidden_dim
        # canonical branch
        self.canonical_mlp = _mlp(dim, hidden, config.num_layers)
        self.offset_head = _zero_linear(hidden, k * 3)
        self.rotation_head = _zero_linear(hidden, k * 4)
        self.scale_head = _zero_linear(hidden, k * 3)
        self.color_head = _zero_linear(hidden, k * 3)
        self.opacity_head = _zero_linear(hidden, k)
        base = config.init_spread * fibonacci_sphere(k)
        self.register_buffer("offset_shift", torch.atanh(base / config.max_offset), persistent=False)
        span = config.max_scale - config.min_scale
        self.scale_shift = _logit((config.init_scale - config.min_scale) / span)  # plain floats: no tensors,
        self.opacity_shift = _logit(config.init_opacity)  # so the decoder also builds on the meta device
        # correction branch
        self.correction_features = nn.Linear(dim, hidden)
        self.correction_driving = nn.Linear(driver_dim, hidden, bias=False) if driver_dim > 0 else None
        self.correction_mlp = _mlp(hidden, hidden, config.num_layers - 1)
        self.correction_head = _zero_linear(hidden, k * (3 + 4 + 3 + 3))
        self.register_buffer("identity_quat", torch.tensor([1.0, 0.0, 0.0, 0.0]), persistent=False)

    @property
    def num_gaussians(self) -> int:
        return self.config.num_gaussians

    def canonical(self, features: Tensor) -> AnchorGaussians:
        self._check_features(features)
        c, k = self.config, self.config.num_gaussians
        h = self.canonical_mlp(features)
        per_k = lambda head: head(h).unflatten(-1, (k, -1))  # noqa: E731  [B, N, K, d]
        offsets = c.max_offset * torch.tanh(per_k(self.offset_head) + self.offset_shift.to(h.dtype))
        quats = F.normalize(per_k(self.rotation_head) + self.identity_quat.to(h.dtype), dim=-1)
        scales = c.min_scale + (c.max_scale - c.min_scale) * torch.sigmoid(
            per_k(self.scale_head) + self.scale_shift
        )
        colors = torch.sigmoid(per_k(self.color_head))
        opacities = torch.sigmoid(self.opacity_head(h) + self.opacity_shift)
        return AnchorGaussians(
            offsets=offsets, quats=quats, scales=scales, opacities=opacities, colors=colors
        )

    def correction(self, features: Tensor, driving: Tensor) -> GaussianCorrection:
        self._check_features(features)
        b = features.shape[0]
        if driving.dim() != 3 or driving.shape[0] != b or driving.shape[2] != self.driver_dim:
            raise ValueError(
                f"dual-branch: driving must be [{b}, M, {self.driver_dim}] (driver_dim); "
                f"got {tuple(driving.shape)}"
            )
        m = driving.shape[1]
        pre = self.correction_features(features)[:, None]  # [B, 1, N, H]
        if self.correction_driving is not None:
            pre = pre + self.correction_driving(driving)[:, :, None]  # [B, M, N, H]
        else:
            pre = pre.expand(-1, m, -1, -1)
        raw = self.correction_head(self.correction_mlp(F.silu(pre))).unflatten(-1, (self.num_gaussians, -1))
        d_offset, d_rot, d_scale, d_color = raw.split([3, 4, 3, 3], dim=-1)
        c = self.config
        return GaussianCorrection(
            offsets=c.max_correction_offset * torch.tanh(d_offset),
            rotations=F.normalize(d_rot + self.identity_quat.to(raw.dtype), dim=-1),
            log_scales=c.max_log_scale_correction * torch.tanh(d_scale),
            colors=c.max_color_correction * torch.tanh(d_color),
        )

    def _check_features(self, features: Tensor) -> None:
        if features.dim() != 3 or features.shape[-1] != self.dim:
            raise ValueError(f"dual-branch: features must be [B, N, {self.dim}]; got {tuple(features.shape)}")
