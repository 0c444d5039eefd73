"""Conformance of a ``tokenizer``: token shape and dtype, eval determinism, gradients reaching every
parameter (and the encoder's tokens, for tokenizers that read the references), and, for those, the
reference views' order and padded views never changing the tokens.

The inputs are a real person: the ``mannequin`` template (the licence-free body every test uses) at a few
anchors, posed in two random-ish frames, seen by cameras in front of it, with random image tokens."""

from __future__ import annotations

from dataclasses import replace

import torch

from lca.cameras import intrinsics_from_fov, look_at
from lca.contracts.template import TemplateParams
from lca.contracts.tokenizer import ReferencePoses, Tokenizer, TokenizerInputs
from lca.registry import Registry
from lca.testing.helpers import assert_grads_reach, jitter_zero_parameters

DIM, IMAGE_DIM, SIZE, GRID = 16, 8, 32, (4, 4)


def tokenizer_inputs(registry: Registry, views: int = 3, seed: int = 0) -> TokenizerInputs:
    """Two people seen by ``views`` cameras each (the last view of the second person is padding)."""
    template = registry.build("template", "mannequin", {"num_anchors": 48, "num_head_anchors": 16})
    g = torch.Generator().manual_seed(seed)
    b = 2
    betas = 0.5 * torch.randn(b, template.num_betas, generator=g)
    anchors = template.shaped_anchors(betas, torch.zeros(b, template.num_expression))
    params = TemplateParams.zeros(
        b, views, num_betas=template.num_betas, num_expression=template.num_expression
    )
    params.betas = betas[:, None].expand(b, views, -1).clone()
    params.body_pose = 0.2 * torch.randn(b, views, 63, generator=g)
    cameras = []
    for v in range(views):
        angle = torch.tensor(0.6 * v - 0.6)
        eye = torch.stack([2.5 * torch.sin(angle), torch.tensor(0.2), 2.5 * torch.cos(angle)])
        cameras.append(look_at(eye, torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])))
    viewmats = torch.stack(cameras)[None].expand(b, -1, -1, -1).clone()
    Ks = intrinsics_from_fov(45.0, SIZE, SIZE)[None, None].expand(b, views, -1, -1).clone()
    mask = torch.ones(b, views, dtype=torch.bool)
    mask[1, -1] = False
    return TokenizerInputs(
        anchors=anchors,
        part_labels=template.anchor_part_labels.expand(b, -1),
        image_tokens=torch.randn(b, views, GRID[0] * GRID[1], IMAGE_DIM, generator=g),
        grid=GRID,
        images=torch.rand(b, views, 3, SIZE, SIZE, generator=g),
        view_mask=mask,
        poses=ReferencePoses(
            viewmats, Ks, params, (torch.rand(b, views, 1, SIZE, SIZE, generator=g) > 0.3).float()
        ),
        template=template,
    )


def _reorder(inputs: TokenizerInputs, order: torch.Tensor) -> TokenizerInputs:
    pick = lambda x: x[:, order]  # noqa: E731
    poses = inputs.poses
    assert poses is not None
    params = TemplateParams(**{k: pick(v) for k, v in vars(poses.params).items()})
    return replace(
        inputs,
        image_tokens=pick(inputs.image_tokens),
        images=pick(inputs.images),
        view_mask=pick(inputs.view_mask),
        poses=ReferencePoses(
            pick(poses.viewmats), pick(poses.Ks), params, None if poses.masks is None else pick(poses.masks)
        ),
    )


def check_tokenizer(registry: Registry, name: str) -> None:
    torch.manual_seed(0)
    params = dict(registry.load("tokenizer", name).test_config)
    tokenizer = registry.build("tokenizer", name, params, dim=DIM, image_dim=IMAGE_DIM, num_parts=4)
    assert isinstance(tokenizer, Tokenizer), f"tokenizer '{name}' does not subclass lca.contracts.Tokenizer"
    inputs = tokenizer_inputs(registry)
    inputs = replace(inputs, part_labels=inputs.part_labels % 4)
    read = tokenizer(inputs)
    tokens = read.tokens
    expected = (2, inputs.anchors.shape[1], DIM)
    assert tokens.shape == expected, f"tokenizer '{name}': tokens {tuple(tokens.shape)}, not {expected}"
    assert tokens.dtype == torch.float32 and torch.isfinite(tokens).all(), f"tokenizer '{name}': dtype/finite"
    if read.colors is not None:
        assert read.confidence is not None, f"tokenizer '{name}': colours without a confidence"
        assert read.colors.shape == (*expected[:2], 3) and read.confidence.shape == expected[:2], name
        for values in (read.colors, read.confidence):
            assert ((values >= 0) & (values <= 1)).all(), f"tokenizer '{name}': colours/confidence off [0, 1]"
    tokenizer.eval()
    assert torch.equal(tokenizer(inputs).tokens, tokenizer(inputs).tokens), f"tokenizer '{name}': eval varies"
    tokenizer.train()
    jitter_zero_parameters(tokenizer)
    image_tokens = inputs.image_tokens.clone().requires_grad_(True)
    tokenizer(replace(inputs, image_tokens=image_tokens)).tokens.square().mean().backward()
    assert_grads_reach(tokenizer)
    if not type(tokenizer).reads_references:
        return
    assert image_tokens.grad is not None and image_tokens.grad.abs().sum() > 0, (
        f"tokenizer '{name}' reads the references, but no gradient reaches the encoder's tokens"
    )
    tokenizer.eval()
    with torch.no_grad():
        plain = tokenizer(inputs)
        flipped = tokenizer(_reorder(inputs, torch.tensor([2, 1, 0])))
        torch.testing.assert_close(flipped.tokens[0], plain.tokens[0], atol=1e-5, rtol=1e-5)
        junk = replace(inputs, images=inputs.images.clone(), image_tokens=inputs.image_tokens.clone())
        junk.images[1, -1] = torch.rand_like(junk.images[1, -1])
        junk.image_tokens[1, -1] = 10 * torch.randn_like(junk.image_tokens[1, -1])
        padded = tokenizer(junk)
        torch.testing.assert_close(padded.tokens, plain.tokens, atol=1e-6, rtol=1e-6)
        if plain.colors is not None:
            torch.testing.assert_close(flipped.colors[0], plain.colors[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(padded.colors, plain.colors, atol=1e-6, rtol=1e-6)
