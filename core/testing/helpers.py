"""Inputs and assertions shared by the conformance checks (and by tests that want the same inputs)."""

from __future__ import annotations

import socket

import torch
from torch import Tensor


def make_signals(b: int, m: int, generator: torch.Generator) -> dict[str, Tensor]:
    """Every documented driving signal at ``[B, M, ...]``, random but valid."""
    g = generator
    gaze = torch.randn(b, m, 2, 3, generator=g)
    return {
        "body_pose": 0.5 * torch.randn(b, m, 63, generator=g),
        "left_hand_pose": 0.5 * torch.randn(b, m, 45, generator=g),
        "right_hand_pose": 0.5 * torch.randn(b, m, 45, generator=g),
        "jaw_pose": 0.2 * torch.randn(b, m, 3, generator=g),
        "face_crop": torch.rand(b, m, 3, 20, 20, generator=g),
        "blendshapes": torch.rand(b, m, 52, generator=g),
        "gaze": gaze / gaze.norm(dim=-1, keepdim=True),
    }


def jitter_zero_parameters(module: torch.nn.Module, seed: int = 0) -> None:
    """Give parameters that start at exactly zero (zero-initialised projections, e.g. AdaLN's) small random
    values, so that a gradient check tests whether the gradient can reach each parameter, not whether it is
    non-zero at that one initial point (the parameters after a zero projection get none there)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if not p.any():
                p.copy_(0.01 * torch.randn(p.shape, generator=generator))


def assert_grads_reach(module: torch.nn.Module, nonzero: bool = True) -> None:
    """Every trainable parameter got a finite gradient (and a non-zero one when ``nonzero``)."""
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        assert p.grad is not None, f"no gradient reached {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient at {name}"
        if nonzero:
            assert p.grad.abs().sum() > 0, f"zero gradient at {name}"


def assert_partition(groups: list[list[torch.nn.Parameter]], module: torch.nn.Module) -> None:
    """``groups`` hold every parameter of ``module`` exactly once."""
    ids = [id(p) for group in groups for p in group]
    assert len(ids) == len(set(ids)), "a parameter appears in two layer groups"
    assert set(ids) == {id(p) for p in module.parameters()}, "layer groups miss parameters"
    assert all(groups), "empty layer group"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a local server or the rendezvous of one launch)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
