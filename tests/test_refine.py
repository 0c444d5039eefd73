"""Render-and-compare colour refinement (lca.model.refine): the step against closed forms of a linear render
written here (each Gaussian covering known pixels with a known weight), a hidden Gaussian, the soft mask,
a padding view, the damping; then through the real model and rasterizer: the refined avatar reproduces its
reference views better, step after step, gradients still reach the decoder's colours, and training steps
are untouched."""

from __future__ import annotations

import torch
from avatar_helpers import studio_batch

from lca.contracts.decoder import AnchorGaussians
from lca.model.avatar import AvatarModel, reference_poses
from lca.model.refine import refine_colors


def _gaussians(colors: torch.Tensor) -> AnchorGaussians:
    """``colors [B, N, K, 3]`` with placeholder geometry (the linear renders below read colours only)."""
    b, n, k = colors.shape[:3]
    return AnchorGaussians(
        offsets=torch.zeros(b, n, k, 3),
        quats=torch.zeros(b, n, k, 4),
        scales=torch.zeros(b, n, k, 3),
        opacities=torch.zeros(b, n, k),
        colors=colors,
    )


def _linear_render(weights: torch.Tensor, height: int, width: int):
    """A render linear in the colours: ``weights [V, H*W, G]`` (pixel x Gaussian), one person, K = 1."""

    def render(canonical: AnchorGaussians) -> torch.Tensor:
        colors = canonical.colors[0, :, 0]  # [G, 3]
        pixels = torch.einsum("vpg,gc->vpc", weights, colors)  # [V, H*W, 3]
        return pixels.transpose(1, 2).reshape(1, weights.shape[0], 3, height, width)

    return render


def _one_gaussian_per_pixel(weight: float) -> torch.Tensor:
    """2 x 2 pixels, 4 Gaussians, Gaussian g alone on pixel g with ``weight`` (one view)."""
    return (weight * torch.eye(4))[None]


def test_a_gaussian_alone_on_its_pixels_takes_the_reference_colour_in_one_step() -> None:
    reference = torch.rand(1, 1, 3, 2, 2)
    start = torch.full((1, 4, 1, 3), 0.5)
    masks, valid = torch.ones(1, 1, 1, 2, 2), torch.ones(1, 1, dtype=torch.bool)
    refined = refine_colors(
        _gaussians(start), _linear_render(_one_gaussian_per_pixel(1.0), 2, 2), reference, masks, valid, 1, 0.0
    )
    torch.testing.assert_close(refined.colors[0, :, 0], reference[0, 0].flatten(1).T)


def test_partial_weights_converge_to_the_colour_that_renders_the_reference() -> None:
    """With alpha 0.8 the render reproduces the reference when c = reference / 0.8: the steps converge there
    (error shrinking by 0.2 each step), clamped to [0, 1]."""
    reference = 0.6 * torch.rand(1, 1, 3, 2, 2)
    start = torch.zeros(1, 4, 1, 3)
    masks, valid = torch.ones(1, 1, 1, 2, 2), torch.ones(1, 1, dtype=torch.bool)
    render = _linear_render(_one_gaussian_per_pixel(0.8), 2, 2)
    errors = []
    for steps in (1, 2, 3, 8):
        refined = refine_colors(_gaussians(start), render, reference, masks, valid, steps, 0.0)
        errors.append(float((refined.colors[0, :, 0] - reference[0, 0].flatten(1).T / 0.8).abs().max()))
    goal = float((reference / 0.8).max())
    torch.testing.assert_close(
        torch.tensor(errors), torch.tensor([0.2, 0.04, 0.008, 0.2**8]) * goal, rtol=0.05, atol=1e-6
    )


def test_hidden_gaussians_masked_pixels_and_padding_views_pull_nothing() -> None:
    weights = torch.zeros(2, 4, 3)  # 2 views, 4 pixels, 3 Gaussians
    weights[0, 0, 0] = weights[0, 1, 1] = weights[1, 2, 1] = 1.0  # Gaussian 2 is seen by no pixel
    reference = torch.rand(1, 2, 3, 2, 2)
    masks = torch.ones(1, 2, 1, 2, 2)
    masks[0, 0, 0, 0, 1] = 0.0  # Gaussian 1's pixel in view 0 is background
    valid = torch.tensor([[True, False]])  # view 1 is padding
    start = torch.full((1, 3, 1, 3), 0.5)
    refined = refine_colors(_gaussians(start), _linear_render(weights, 2, 2), reference, masks, valid, 2, 0.0)
    torch.testing.assert_close(refined.colors[0, 0, 0], reference[0, 0, :, 0, 0])
    torch.testing.assert_close(refined.colors[0, 1:, 0], start[0, 1:, 0])


def test_damping_shrinks_the_step_by_the_footprint() -> None:
    """Closed form of one step: c + w (ref - w c) / (w + damping) for a Gaussian alone on a pixel."""
    reference = torch.full((1, 1, 3, 2, 2), 0.9)
    start = torch.full((1, 4, 1, 3), 0.3)
    masks, valid = torch.ones(1, 1, 1, 2, 2), torch.ones(1, 1, dtype=torch.bool)
    render = _linear_render(_one_gaussian_per_pixel(0.5), 2, 2)
    refined = refine_colors(_gaussians(start), render, reference, masks, valid, 1, 1.5)
    torch.testing.assert_close(refined.colors, torch.full_like(start, 0.3 + 0.5 * (0.9 - 0.15) / 2.0))


def _model_and_batch(store, steps: int):
    config, batch = studio_batch(store, [f"model.refine_steps={steps}"])
    torch.manual_seed(0)
    return AvatarModel(config).eval(), batch


def _reference_error(model: AvatarModel, batch, steps: int) -> float:
    """Masked L1 of the avatar's renders into its own reference views, refined ``steps`` times."""
    refs = batch.references
    poses = reference_poses(refs)
    model.config.model.refine_steps = steps
    with torch.no_grad():
        avatar = model.create_avatar(refs.images, refs.valid, refs.params["betas"][:, 0], poses)
        render = model._reference_renderer(poses, avatar.betas, refs.images.shape[-2:])(avatar.canonical)
    weight = refs.masks * refs.valid[:, :, None, None, None]
    return float(((render - refs.images * refs.masks).abs() * weight).sum() / weight.sum())


def test_the_real_model_reproduces_its_references_better_step_after_step(tiny_studio_store) -> None:
    model, batch = _model_and_batch(tiny_studio_store, 0)
    errors = [_reference_error(model, batch, steps) for steps in (0, 1, 2, 3)]
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[3] < 0.9 * errors[0]  # what is left is mostly the untrained geometry (coverage)


def test_gradients_reach_the_colours_and_training_steps_are_not_refined(tiny_studio_store) -> None:
    model, batch = _model_and_batch(tiny_studio_store, 2)
    refs = batch.references
    args = (refs.images, refs.valid, refs.params["betas"][:, 0], reference_poses(refs))
    refined = model.create_avatar(*args)
    refined.canonical.colors.sum().backward()
    head = [p.grad for n, p in model.decoder.named_parameters() if "color" in n and p.grad is not None]
    assert head and any(float(g.abs().sum()) > 0 for g in head)
    model.train()
    with torch.no_grad():
        training = model.create_avatar(*args)
        model.config.model.refine_steps = 0
        plain = model.create_avatar(*args)
    torch.testing.assert_close(training.canonical.colors, plain.canonical.colors)
    assert not torch.allclose(refined.canonical.colors.detach(), plain.canonical.colors)
