"""Conformance of every registered encoder, block, driver and decoder (at test size, on the CPU):
shapes, dtype, masks, 1..8 views, eval determinism, gradients reaching every trainable parameter."""

from __future__ import annotations

import pytest
import torch
from model_helpers import TINY, assert_grads_reach, assert_partition, jitter_zero_parameters, make_signals

from lca.contracts.block import Block
from lca.contracts.decoder import Decoder
from lca.contracts.driver import Driver
from lca.contracts.encoder import Encoder
from lca.errors import SignalError
from lca.model.backbone import Backbone
from lca.registry import default_registry

KINDS = {"encoder": Encoder, "block": Block, "driver": Driver, "decoder": Decoder}
REGISTERED = {kind: default_registry().names(kind) for kind in KINDS}
DIM = 16


def build(kind: str, name: str, **context):
    torch.manual_seed(0)
    return default_registry().build(kind, name, TINY[kind][name], **context)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_registered_component_has_a_tiny_config(kind: str) -> None:
    assert sorted(TINY[kind]) == REGISTERED[kind]


# ---------------------------------------------------------------------------------------------- encoders
@pytest.mark.parametrize("name", REGISTERED["encoder"])
def test_encoder_conformance(name: str) -> None:
    encoder = build("encoder", name)
    assert isinstance(encoder, Encoder)
    g = torch.Generator().manual_seed(1)
    for views in range(1, 9):
        images = torch.rand(2, views, 3, 36, 30, generator=g)
        out = encoder(images)
        h, w = out.grid
        assert out.tokens.shape == (2, views, h * w, encoder.out_dim)
        assert out.tokens.dtype == torch.float32
    # views are processed independently: junk in other views never changes view 0
    other = images.clone()
    other[:, 1:] = torch.rand_like(other[:, 1:])
    encoder.eval()
    assert torch.allclose(encoder(images).tokens[:, 0], encoder(other).tokens[:, 0], atol=1e-6)
    assert torch.equal(encoder(images).tokens, encoder(images).tokens)
    encoder.train()
    encoder(images).tokens.square().mean().backward()
    assert_grads_reach(encoder)
    assert_partition(encoder.layer_groups(), encoder)


def test_encoder_rejects_bad_images() -> None:
    encoder = build("encoder", "vit-tiny")
    with pytest.raises(ValueError, match=r"images must be \[B, V, 3, H, W\]; got shape \(2, 3, 32, 32\)"):
        encoder(torch.rand(2, 3, 32, 32))


def test_frozen_encoder_has_no_trainable_parameters_and_stays_in_eval() -> None:
    encoder = default_registry().build(
        "encoder", "sapiens-vit", {**TINY["encoder"]["sapiens-vit"], "frozen": True}
    )
    encoder.train()
    assert not encoder.vit.training
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder(torch.rand(1, 2, 3, 32, 32)).tokens.requires_grad


# ------------------------------------------------------------------------------------------------ blocks
def _tokens(b: int, v: int, p: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, v, p, DIM, generator=g), torch.randn(b, n, DIM, generator=g)


@pytest.mark.parametrize("name", REGISTERED["block"])
def test_block_conformance(name: str) -> None:
    block = build("block", name, dim=DIM)
    assert isinstance(block, Block)
    for views in range(1, 9):
        image, geometry = _tokens(2, views, 5, 7, views)
        mask = torch.ones(2, views, dtype=torch.bool)
        mask[1, 1:] = False  # sample 1 keeps a single real view
        out_image, out_geometry = block(image, geometry, mask)
        assert out_image.shape == image.shape and out_geometry.shape == geometry.shape
        assert out_image.dtype == out_geometry.dtype == torch.float32
        assert torch.equal(out_image[1, 1:], image[1, 1:]), "padded views must come back unchanged"
    block.eval()
    first, second = block(image, geometry, mask), block(image, geometry, mask)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    block.train()
    jitter_zero_parameters(block)
    out_image, out_geometry = block(image, geometry, mask)
    (out_image.square().mean() + out_geometry.square().mean()).backward()
    assert_grads_reach(block)


@pytest.mark.parametrize("name", REGISTERED["block"])
def test_padded_views_do_not_change_block_outputs(name: str) -> None:
    block = build("block", name, dim=DIM).eval()
    jitter_zero_parameters(block)  # e.g. the zero-initialised AdaLN projection: the context path must count
    image, geometry = _tokens(2, 3, 5, 7, 0)
    real = torch.ones(2, 3, dtype=torch.bool)
    ref_image, ref_geometry = block(image, geometry, real)
    for seed in (1, 2):
        junk = torch.randn(2, 4, 5, DIM, generator=torch.Generator().manual_seed(seed)) * 10
        padded = torch.cat([image, junk], dim=1)
        mask = torch.cat([real, torch.zeros(2, 4, dtype=torch.bool)], dim=1)
        out_image, out_geometry = block(padded, geometry, mask)
        torch.testing.assert_close(out_geometry, ref_geometry, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out_image[:, :3], ref_image, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", REGISTERED["block"])
def test_permuting_views_leaves_geometry_tokens_unchanged(name: str) -> None:
    """All three built-in blocks promise it (no view index enters them); a block that does not must say so."""
    block = build("block", name, dim=DIM).eval()
    jitter_zero_parameters(block)
    assert type(block).permutation_invariant
    image, geometry = _tokens(2, 4, 5, 7, 3)
    mask = torch.tensor([[True, True, False, True], [True, False, True, True]])
    perm = torch.tensor([2, 0, 3, 1])
    out_image, out_geometry = block(image, geometry, mask)
    perm_image, perm_geometry = block(image[:, perm], geometry, mask[:, perm])
    torch.testing.assert_close(perm_geometry, out_geometry, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(perm_image, out_image[:, perm], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", REGISTERED["block"])
def test_backbone_checkpointing_matches_plain_and_groups_by_depth(name: str) -> None:
    factory = lambda last: default_registry().build("block", name, TINY["block"][name], dim=DIM, last=last)  # noqa: E731
    torch.manual_seed(0)
    plain = Backbone(factory, depth=3, dim=DIM)
    checkpointed = Backbone(factory, depth=3, dim=DIM, grad_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    image, geometry = _tokens(1, 2, 5, 7, 4)
    image.requires_grad_(True)
    grads = []
    for model in (plain, checkpointed):
        out_image, out_geometry = model(image, geometry, torch.tensor([[True, False]]))
        (out_image.sum() + out_geometry.square().sum()).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
    assert_partition(plain.layer_groups(), plain)
    assert len(plain.layer_groups()) == 3


def test_backbone_rejects_samples_without_real_views() -> None:
    backbone = Backbone(lambda last: build("block", "cross-attention", dim=DIM, last=last), depth=1, dim=DIM)
    image, geometry = _tokens(2, 2, 5, 7, 0)
    with pytest.raises(ValueError, match=r"samples \[1\] have no real reference view"):
        backbone(image, geometry, torch.tensor([[True, False], [False, False]]))


# ----------------------------------------------------------------------------------------------- drivers
@pytest.mark.parametrize("name", REGISTERED["driver"])
def test_driver_conformance(name: str) -> None:
    driver = build("driver", name)
    assert isinstance(driver, Driver)
    signals = make_signals(2, 3, torch.Generator().manual_seed(0))
    out = driver(signals)
    assert out.shape == (2, 3, driver.out_dim) and out.dtype == torch.float32
    regularizers = driver.regularization()
    assert all(value.dim() == 0 for value in regularizers.values())
    (out.square().mean() + sum(regularizers.values())).backward()
    assert_grads_reach(driver)
    driver.eval()
    assert torch.equal(driver(signals), driver(signals))
    # frames are independent: changing frame 2's signals leaves frames 0 and 1 unchanged
    changed = {k: v.clone() for k, v in signals.items()}
    for key in driver.signals:
        changed[key][:, 2] = make_signals(2, 3, torch.Generator().manual_seed(9))[key][:, 2]
    torch.testing.assert_close(driver(changed)[:, :2], driver(signals)[:, :2])
    # a missing signal is named
    missing = {k: v for k, v in signals.items() if k != driver.signals[0]}
    with pytest.raises(SignalError, match=f"needs the driving signal '{driver.signals[0]}'"):
        driver(missing)


def test_driver_rejects_misshaped_signal() -> None:
    driver = build("driver", "blendshapes")
    with pytest.raises(SignalError, match=r"signal 'blendshapes' must be \[B, M, 52\]; got \(2, 3, 50\)"):
        driver({"blendshapes": torch.zeros(2, 3, 50)})


def test_smplx_pose_sees_rotations_not_axis_angle_vectors() -> None:
    """``v`` and ``v * (1 - 2*pi/|v|)`` are the same rotation: the embedding must not tell them apart."""
    driver = build("driver", "smplx-pose").eval()
    signals = make_signals(1, 2, torch.Generator().manual_seed(0))
    other = dict(signals)
    body = signals["body_pose"].unflatten(-1, (21, 3))
    angle = body.norm(dim=-1, keepdim=True)
    other["body_pose"] = (body * (1 - 2 * torch.pi / angle)).flatten(-2)
    assert not torch.allclose(other["body_pose"], signals["body_pose"])
    torch.testing.assert_close(driver(other), driver(signals), atol=1e-5, rtol=1e-5)


def test_gaze_ignores_direction_length() -> None:
    driver = build("driver", "gaze").eval()
    signals = make_signals(1, 2, torch.Generator().manual_seed(0))
    scaled = {"gaze": signals["gaze"] * 3.0}
    torch.testing.assert_close(driver(scaled), driver(signals))


# ----------------------------------------------------------------------------------------------- decoder
@pytest.mark.parametrize("name", REGISTERED["decoder"])
@pytest.mark.parametrize("driver_dim", [0, 6])
def test_decoder_conformance(name: str, driver_dim: int) -> None:
    decoder = build("decoder", name, dim=DIM, driver_dim=driver_dim)
    assert isinstance(decoder, Decoder)
    k = decoder.num_gaussians
    torch.manual_seed(1)
    for head in decoder.modules():  # move off the zero init so every field varies
        if isinstance(head, torch.nn.Linear):
            torch.nn.init.normal_(head.weight, std=0.5)
    features, driving = torch.randn(2, 7, DIM), torch.randn(2, 3, driver_dim)
    canonical, driven = decoder(features, driving)
    assert canonical.offsets.shape == (2, 7, k, 3) and canonical.quats.shape == (2, 7, k, 4)
    assert canonical.scales.shape == (2, 7, k, 3) and canonical.opacities.shape == (2, 7, k)
    assert canonical.colors.shape == (2, 7, k, 3)
    assert driven.offsets.shape == (2, 3, 7, k, 3) and driven.opacities.shape == (2, 3, 7, k)
    torch.testing.assert_close(driven.opacities, canonical.opacities[:, None].expand_as(driven.opacities))
    for gaussians in (canonical, driven):
        torch.testing.assert_close(gaussians.quats.norm(dim=-1), torch.ones_like(gaussians.quats[..., 0]))
        assert (gaussians.scales > 0).all() and ((gaussians.colors >= 0) & (gaussians.colors <= 1)).all()
        assert ((gaussians.opacities > 0) & (gaussians.opacities < 1)).all()
    (
        canonical.offsets.sum()
        + canonical.colors.sum()
        + canonical.scales.sum()
        + canonical.opacities.sum()
        + canonical.quats[..., 1:].sum()
        + driven.offsets.sum()
        + driven.scales.sum()
        + driven.colors.sum()
        + driven.quats[..., 1:].sum()
    ).backward()
    assert_grads_reach(decoder)
    decoder.eval()
    again = decoder(features, driving)[1]
    assert torch.equal(again.offsets, decoder(features, driving)[1].offsets)


def test_masked_mean_token_is_the_mean_over_real_views_only() -> None:
    from lca.model.modulation import masked_mean_token

    image, _ = _tokens(2, 3, 4, 1, 5)
    mask = torch.tensor([[True, False, True], [False, True, False]])
    expected = torch.stack([image[0, [0, 2]].mean(dim=(0, 1)), image[1, 1].mean(dim=0)])
    torch.testing.assert_close(masked_mean_token(image, mask), expected)


def test_global_context_starts_as_the_plain_block_and_then_depends_on_the_views() -> None:
    """The AdaLN projection is zero-initialised (created last, so the other weights are the same draws):
    at initialisation the block equals ``global_context: false``; once the projection is not zero, the
    geometry tokens depend on the mean image token."""
    registry = default_registry()
    blocks = []
    for context in (True, False):
        torch.manual_seed(0)
        config = {**TINY["block"]["lca-tri-attention"], "global_context": context}
        blocks.append(registry.build("block", "lca-tri-attention", config, dim=DIM).eval())
    with_context, plain = blocks
    image, geometry = _tokens(2, 3, 5, 7, 1)
    mask = torch.ones(2, 3, dtype=torch.bool)
    torch.testing.assert_close(
        with_context(image, geometry, mask), plain(image, geometry, mask), rtol=0, atol=0
    )
    jitter_zero_parameters(with_context)
    other, _ = _tokens(2, 3, 5, 7, 2)
    mods, other_mods = with_context.context(image, mask), with_context.context(other, mask)
    assert len(mods) == 3 and all(m.shape == (2, 1, DIM) for pair in mods for m in pair)
    assert all(
        not torch.allclose(a, b)
        for pair, other_pair in zip(mods, other_mods, strict=True)
        for a, b in zip(pair, other_pair, strict=True)
    )
    assert not torch.allclose(with_context(image, geometry, mask)[1], plain(image, geometry, mask)[1])
