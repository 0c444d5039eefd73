"""Conformance of a ``decoder``: canonical and driven Gaussian shapes with and without driving features,
the driven branch never changing opacity, valid ranges, gradients, eval determinism."""

from __future__ import annotations

import torch

from lca.contracts.decoder import Decoder
from lca.registry import Registry
from lca.testing.helpers import assert_grads_reach

DIM = 16


def check_decoder(registry: Registry, name: str) -> None:
    for driver_dim in (0, 6):
        _check(registry, name, driver_dim)


def _check(registry: Registry, name: str, driver_dim: int) -> None:
    torch.manual_seed(0)
    params = dict(registry.load("decoder", name).test_config)
    decoder = registry.build("decoder", name, params, dim=DIM, driver_dim=driver_dim)
    assert isinstance(decoder, Decoder), f"decoder '{name}' does not subclass lca.contracts.decoder.Decoder"
    k = decoder.num_gaussians
    torch.manual_seed(1)
    for head in decoder.modules():  # move off the zero init so every field varies
        if isinstance(head, torch.nn.Linear):
            torch.nn.init.normal_(head.weight, std=0.5)
    features, driving = torch.randn(2, 7, DIM), torch.randn(2, 3, driver_dim)
    canonical, driven = decoder(features, driving)
    assert canonical.offsets.shape == (2, 7, k, 3) and canonical.quats.shape == (2, 7, k, 4), name
    assert canonical.scales.shape == (2, 7, k, 3) and canonical.opacities.shape == (2, 7, k), name
    assert canonical.colors.shape == (2, 7, k, 3), name
    assert driven.offsets.shape == (2, 3, 7, k, 3) and driven.opacities.shape == (2, 3, 7, k), name
    torch.testing.assert_close(driven.opacities, canonical.opacities[:, None].expand_as(driven.opacities))
    for gaussians in (canonical, driven):
        torch.testing.assert_close(gaussians.quats.norm(dim=-1), torch.ones_like(gaussians.quats[..., 0]))
        assert (gaussians.scales > 0).all(), f"decoder '{name}': non-positive scales"
        assert ((gaussians.colors >= 0) & (gaussians.colors <= 1)).all(), (
            f"decoder '{name}': colours off [0, 1]"
        )
        assert ((gaussians.opacities > 0) & (gaussians.opacities < 1)).all(), f"decoder '{name}': opacities"
    total = sum(
        part.sum()
        for part in (
            canonical.offsets,
            canonical.colors,
            canonical.scales,
            canonical.opacities,
            canonical.quats[..., 1:],
            driven.offsets,
            driven.scales,
            driven.colors,
            driven.quats[..., 1:],
        )
    )
    total.backward()
    assert_grads_reach(decoder)
    decoder.eval()
    again = decoder(features, driving)[1]
    assert torch.equal(again.offsets, decoder(features, driving)[1].offsets), f"decoder '{name}': eval varies"
