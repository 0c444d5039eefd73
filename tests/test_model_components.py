"""Conformance of every registered encoder, tokenizer, block, driver, decoder and loss through
:mod:`lca.testing` (the checks a plugin package runs on its own components), plus the built-ins' specific
promises."""

from __future__ import annotations

import pytest
import torch

from lca.errors import SignalError
from lca.model.backbone import Backbone
from lca.registry import default_registry
from lca.testing import CHECKS, check_component, tiny_config
from lca.testing.block import DIM, tokens
from lca.testing.helpers import jitter_zero_parameters, make_signals

CHECKED = [(kind, name) for kind in CHECKS for name in default_registry().names(kind)]


def build(kind: str, name: str, **context):
    torch.manual_seed(0)
    return default_registry().build(kind, name, tiny_config(kind, name), **context)


@pytest.mark.parametrize(("kind", "name"), CHECKED, ids=[f"{k}-{n}" for k, n in CHECKED])
def test_conformance(kind: str, name: str) -> None:
    check_component(kind, name)


def test_every_kind_with_a_check_has_built_in_components() -> None:
    assert all(default_registry().names(kind) for kind in CHECKS)


# ---------------------------------------------------------------------------------------------- encoders
def test_encoder_rejects_bad_images() -> None:
    encoder = build("encoder", "vit-tiny")
    with pytest.raises(ValueError, match=r"images must be \[B, V, 3, H, W\]; got shape \(2, 3, 32, 32\)"):
        encoder(torch.rand(2, 3, 32, 32))


def test_frozen_encoder_has_no_trainable_parameters_and_stays_in_eval() -> None:
    encoder = default_registry().build(
        "encoder", "sapiens-vit", {**tiny_config("encoder", "sapiens-vit"), "frozen": True}
    )
    encoder.train()
    assert not encoder.vit.training
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder(torch.rand(1, 2, 3, 32, 32)).tokens.requires_grad


# ------------------------------------------------------------------------------------------------ blocks
@pytest.mark.parametrize("name", default_registry().names("block"))
def test_built_in_blocks_are_permutation_invariant(name: str) -> None:
    """All three built-in blocks promise it (no view index enters them); lca.testing checks the promise."""
    assert type(build("block", name, dim=DIM)).permutation_invariant


def test_backbone_rejects_samples_without_real_views() -> None:
    backbone = Backbone(lambda last: build("block", "cross-attention", dim=DIM, last=last), depth=1, dim=DIM)
    image, geometry = tokens(2, 2, 5, 7, 0)
    with pytest.raises(ValueError, match=r"samples \[1\] have no real reference view"):
        backbone(image, geometry, torch.tensor([[True, False], [False, False]]))


# ----------------------------------------------------------------------------------------------- drivers
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
def test_masked_mean_token_is_the_mean_over_real_views_only() -> None:
    from lca.model.modulation import masked_mean_token

    image, _ = tokens(2, 3, 4, 1, 5)
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
        config = {**tiny_config("block", "lca-tri-attention"), "global_context": context}
        blocks.append(registry.build("block", "lca-tri-attention", config, dim=DIM).eval())
    with_context, plain = blocks
    image, geometry = tokens(2, 3, 5, 7, 1)
    mask = torch.ones(2, 3, dtype=torch.bool)
    torch.testing.assert_close(
        with_context(image, geometry, mask), plain(image, geometry, mask), rtol=0, atol=0
    )
    jitter_zero_parameters(with_context)
    other, _ = tokens(2, 3, 5, 7, 2)
    mods, other_mods = with_context.context(image, mask), with_context.context(other, mask)
    assert len(mods) == 3 and all(m.shape == (2, 1, DIM) for pair in mods for m in pair)
    assert all(
        not torch.allclose(a, b)
        for pair, other_pair in zip(mods, other_mods, strict=True)
        for a, b in zip(pair, other_pair, strict=True)
    )
    assert not torch.allclose(with_context(image, geometry, mask)[1], plain(image, geometry, mask)[1])
