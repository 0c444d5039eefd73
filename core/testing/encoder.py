"""Conformance of an ``encoder``: token shapes for 1..8 views, views encoded independently, eval-mode
determinism, gradients reaching every trainable parameter, layer groups that partition the parameters."""

from __future__ import annotations

import torch

from lca.contracts.encoder import Encoder
from lca.registry import Registry
from lca.testing.helpers import assert_grads_reach, assert_partition


def check_encoder(registry: Registry, name: str) -> None:
    torch.manual_seed(0)
    cls = registry.load("encoder", name)
    encoder = registry.build("encoder", name, dict(cls.test_config))
    assert isinstance(encoder, Encoder), f"encoder '{name}' does not subclass lca.contracts.encoder.Encoder"
    g = torch.Generator().manual_seed(1)
    images = torch.empty(0)
    for views in range(1, 9):
        images = torch.rand(2, views, 3, 36, 30, generator=g)
        out = encoder(images)
        h, w = out.grid
        expected = (2, views, h * w, encoder.out_dim)
        assert out.tokens.shape == expected, (
            f"encoder '{name}': tokens {tuple(out.tokens.shape)}, not {expected}"
        )
        assert out.tokens.dtype == torch.float32, f"encoder '{name}': tokens are {out.tokens.dtype}"
    other = images.clone()
    other[:, 1:] = torch.rand_like(other[:, 1:])
    encoder.eval()
    assert torch.allclose(encoder(images).tokens[:, 0], encoder(other).tokens[:, 0], atol=1e-6), (
        f"encoder '{name}': the other views changed view 0's tokens (views must be encoded independently)"
    )
    assert torch.equal(encoder(images).tokens, encoder(images).tokens), (
        f"encoder '{name}': eval not deterministic"
    )
    encoder.train()
    encoder(images).tokens.square().mean().backward()
    assert_grads_reach(encoder)
    assert_partition(encoder.layer_groups(), encoder)
