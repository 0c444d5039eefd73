"""Conformance of a ``block``: shapes for 1..8 views, padded views passed through and never read,
eval-mode determinism, gradients reaching every parameter, view-permutation equivariance when the block
claims it, and activation checkpointing in the backbone equal to the plain forward."""

from __future__ import annotations

import torch
from torch import Tensor

from lca.contracts.block import Block
from lca.model.backbone import Backbone
from lca.registry import Registry
from lca.testing.helpers import assert_grads_reach, assert_partition, jitter_zero_parameters

DIM = 16
"""Token width of the checks."""


def tokens(b: int, v: int, p: int, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Image tokens ``[b, v, p, DIM]`` and geometry tokens ``[b, n, DIM]``, standard normal."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, v, p, DIM, generator=g), torch.randn(b, n, DIM, generator=g)


def _build(registry: Registry, name: str, **context: object) -> Block:
    torch.manual_seed(0)
    block = registry.build("block", name, dict(registry.load("block", name).test_config), dim=DIM, **context)
    assert isinstance(block, Block), f"block '{name}' does not subclass lca.contracts.block.Block"
    return block


def check_block(registry: Registry, name: str) -> None:
    block = _build(registry, name)
    image = geometry = mask = torch.empty(0)
    for views in range(1, 9):
        image, geometry = tokens(2, views, 5, 7, views)
        mask = torch.ones(2, views, dtype=torch.bool)
        mask[1, 1:] = False  # sample 1 keeps a single real view
        out_image, out_geometry = block(image, geometry, mask)
        assert out_image.shape == image.shape and out_geometry.shape == geometry.shape, (
            f"block '{name}': shapes"
        )
        assert out_image.dtype == out_geometry.dtype == torch.float32, f"block '{name}': dtype"
        assert torch.equal(out_image[1, 1:], image[1, 1:]), (
            f"block '{name}': padded views must come back unchanged"
        )
    block.eval()
    first, second = block(image, geometry, mask), block(image, geometry, mask)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1]), (
        f"block '{name}': eval varies"
    )
    block.train()
    jitter_zero_parameters(block)
    out_image, out_geometry = block(image, geometry, mask)
    (out_image.square().mean() + out_geometry.square().mean()).backward()
    assert_grads_reach(block)
    _check_padding_is_never_read(registry, name)
    if type(block).permutation_invariant:
        _check_permutation(registry, name)
    _check_checkpointing(registry, name)


def _check_padding_is_never_read(registry: Registry, name: str) -> None:
    block = _build(registry, name).eval()
    jitter_zero_parameters(block)  # e.g. a zero-initialised AdaLN projection: the context path must count
    image, geometry = tokens(2, 3, 5, 7, 0)
    real = torch.ones(2, 3, dtype=torch.bool)
    ref_image, ref_geometry = block(image, geometry, real)
    for seed in (1, 2):
        junk = torch.randn(2, 4, 5, DIM, generator=torch.Generator().manual_seed(seed)) * 10
        padded = torch.cat([image, junk], dim=1)
        mask = torch.cat([real, torch.zeros(2, 4, dtype=torch.bool)], dim=1)
        out_image, out_geometry = block(padded, geometry, mask)
        torch.testing.assert_close(out_geometry, ref_geometry, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out_image[:, :3], ref_image, atol=1e-5, rtol=1e-5)


def _check_permutation(registry: Registry, name: str) -> None:
    """A block that declares ``permutation_invariant`` gives the same geometry tokens for permuted views."""
    block = _build(registry, name).eval()
    jitter_zero_parameters(block)
    image, geometry = tokens(2, 4, 5, 7, 3)
    mask = torch.tensor([[True, True, False, True], [True, False, True, True]])
    perm = torch.tensor([2, 0, 3, 1])
    out_image, out_geometry = block(image, geometry, mask)
    perm_image, perm_geometry = block(image[:, perm], geometry, mask[:, perm])
    torch.testing.assert_close(perm_geometry, out_geometry, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(perm_image, out_image[:, perm], atol=1e-5, rtol=1e-5)


def _check_checkpointing(registry: Registry, name: str) -> None:
    """Three blocks in the backbone, with and without activation checkpointing: same gradients."""
    params = dict(registry.load("block", name).test_config)

    def factory(last: bool) -> Block:
        return registry.build("block", name, params, dim=DIM, last=last)

    torch.manual_seed(0)
    plain = Backbone(factory, depth=3, dim=DIM)
    checkpointed = Backbone(factory, depth=3, dim=DIM, grad_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    image, geometry = tokens(1, 2, 5, 7, 4)
    image.requires_grad_(True)
    grads = []
    for model in (plain, checkpointed):
        out_image, out_geometry = model(image, geometry, torch.tensor([[True, False]]))
        (out_image.sum() + out_geometry.square().sum()).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
    assert_partition(plain.layer_groups(), plain)
    assert len(plain.layer_groups()) == 3, (
        f"block '{name}': the backbone's layer groups are not one per block"
    )
