"""Anchor tokenizers: the Fourier basis in closed form, and the geometry of pixel-aligned tokens against
closed-form cases (projection and sampling at known pixels, a face crop's intrinsics, an anchor hidden
behind another, the body's back hidden from a frontal camera), gradients through the sampling, and the
spreading of seen colours to unseen anchors against a direct evaluation of its formula.
Conformance of every registered tokenizer runs in tests/test_model_components.py (lca.testing)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from lca.cameras import intrinsics_from_fov, look_at, project_points
from lca.contracts.template import TemplateParams
from lca.data.crop import crop_intrinsics, crop_resize
from lca.errors import LcaError
from lca.model.fourier import fourier_features
from lca.model.pixel_alignment import (
    aggregate,
    hidden,
    posed_anchors,
    sample_views,
    spread_colors,
    view_weights,
)
from lca.registry import default_registry
from lca.testing.tokenizer import tokenizer_inputs


def test_fourier_basis_in_closed_form_and_parts_change_tokens() -> None:
    x = torch.tensor([[[0.25, -0.5, 1.0]]])
    angles = torch.tensor([0.25, 0.5, -0.5, -1.0, 1.0, 2.0]) * torch.pi
    expected = torch.cat([torch.tensor([0.25, -0.5, 1.0]), angles.sin(), angles.cos()])
    torch.testing.assert_close(fourier_features(x, 2)[0, 0], expected)
    registry = default_registry()
    tokenizer = registry.build("tokenizer", "fourier", {"bands": 3}, dim=12, image_dim=4, num_parts=4)
    inputs = tokenizer_inputs(registry)
    inputs = replace(inputs, part_labels=inputs.part_labels % 4)
    out = tokenizer(inputs).tokens
    other = inputs.part_labels.clone()
    other[0, 0] = (other[0, 0] + 1) % 4
    changed = tokenizer(replace(inputs, part_labels=other)).tokens
    assert not torch.allclose(changed[0, 0], out[0, 0]) and torch.equal(changed[1], out[1])
    # the position tokens read nothing of the references
    noisy = replace(
        inputs, images=torch.rand_like(inputs.images), image_tokens=torch.randn_like(inputs.image_tokens)
    )
    assert torch.equal(tokenizer(noisy).tokens, out)


def test_sampling_at_pixel_centres_reads_the_pixels() -> None:
    maps = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5)
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(5), indexing="ij")
    uv = torch.stack([cols.flatten() + 0.5, rows.flatten() + 0.5], dim=-1).double()[None].expand(2, -1, -1)
    sampled = sample_views(maps, uv, (4, 5))
    torch.testing.assert_close(sampled, maps.flatten(2).transpose(1, 2))
    # a map at half the resolution: the centre of each 2x2 block of the image reads that cell
    coarse = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    centres = torch.tensor([[[1.0, 1.0], [3.0, 1.0], [1.0, 3.0], [3.0, 3.0]]], dtype=torch.float64)
    torch.testing.assert_close(
        sample_views(coarse, centres, (4, 4))[0, :, 0], torch.tensor([1.0, 2, 3, 4]).double()
    )


def test_gradients_through_the_sampling() -> None:
    maps = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    uv = torch.rand(2, 7, 2, dtype=torch.float64) * torch.tensor([12.0, 10.0]).double()
    assert torch.autograd.gradcheck(lambda m: sample_views(m, uv, (10, 12)), (maps,))


def test_a_face_crop_view_reads_the_same_colour_as_the_full_view() -> None:
    """A point projected through the crop's intrinsics (lca.data.crop, as the datasets make face views)
    lands on the same image content as through the full frame's."""
    # a smooth image (sinusoids of 40-48 pixel periods, sampled at pixel centres i + 0.5), so that bilinear
    # interpolation, in the crop and in the samples, is exact to well under the tolerance
    y, x = torch.meshgrid(torch.arange(64.0) + 0.5, torch.arange(64.0) + 0.5, indexing="ij")
    phases = torch.tensor([0.0, 1.0, 2.0])[:, None, None]
    wave = torch.sin(2 * torch.pi * x / 40 + phases) * torch.cos(2 * torch.pi * y / 48)
    image = (0.5 + 0.4 * wave).double()
    K = intrinsics_from_fov(50.0, 64, 64).double()
    viewmat = look_at(torch.tensor([0.0, 0.0, 3.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0])).double()
    points = torch.tensor([[0.1, 0.2, 0.0], [-0.15, 0.05, 0.1], [0.0, 0.3, -0.1]], dtype=torch.float64)
    box = np.array([20.0, 12.0, 44.0, 36.0])  # a 24-pixel square, resized to 48 (x2)
    crop = crop_resize(image, box, 48)
    K_crop = crop_intrinsics(K, box, 48)
    uv_full, _ = project_points(points, viewmat[None], K[None])
    uv_crop, _ = project_points(points, viewmat[None], K_crop[None])
    # pixel i covers [i, i+1) in both images: continuous coordinates scale about the box corner
    torch.testing.assert_close(uv_crop[0], (uv_full[0] - torch.tensor(box[:2])) * 2)
    full = sample_views(image[None], uv_full, (64, 64))
    torch.testing.assert_close(sample_views(crop[None], uv_crop, (48, 48)), full, atol=2e-3, rtol=0)
    # half a pixel off (pixel centres at integers, OpenCV's habit) is visibly wrong at this tolerance
    off = sample_views(crop[None], uv_crop - 0.5, (48, 48))
    assert (off - full).abs().max() > 1e-2


def test_an_anchor_behind_another_is_hidden() -> None:
    """Two points on one camera ray, 1 m apart; the surface is the near one."""
    uv = torch.tensor([[[10.2, 7.7], [10.2, 7.7], [3.0, 3.0]]])
    depth = torch.tensor([[2.0, 3.0, 2.5]])
    surface_uv, surface_depth = uv[:, :1], depth[:, :1]
    result = hidden(uv, depth, surface_uv, surface_depth, (16, 16), cell=2.0, tolerance=0.05)
    assert result.tolist() == [[False, True, False]]  # the third point's cell has no surface in front
    within = hidden(uv, torch.tensor([[2.0, 2.04, 2.5]]), surface_uv, surface_depth, (16, 16), 2.0, 0.05)
    assert within.tolist() == [[False, False, False]]  # 4 cm behind: within the tolerance
    behind_camera = hidden(uv, depth, surface_uv, -surface_depth, (16, 16), 2.0, 0.05)
    assert not behind_camera.any()


def test_a_frontal_camera_sees_the_front_of_the_body_and_not_its_back() -> None:
    template = default_registry().build("template", "mannequin", {"num_anchors": 512, "num_head_anchors": 64})
    params = TemplateParams.zeros(1, num_betas=template.num_betas, num_expression=template.num_expression)
    viewmat = look_at(
        torch.tensor([0.0, 0.2, 3.0]), torch.tensor([0.0, 0.2, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    )
    K = intrinsics_from_fov(40.0, 96, 96)
    vertices, anchors, normals = posed_anchors(template, params)
    uv, weights = view_weights(template, params, viewmat[None], K[None], (96, 96), torch.tensor([True]))
    torso = (anchors[0, :, 1].abs() < 0.3) & (anchors[0, :, 0].abs() < 0.12)
    front, back = torso & (normals[0, :, 2] > 0.7), torso & (normals[0, :, 2] < -0.7)
    assert front.sum() > 5 and back.sum() > 5
    assert (weights[0, front] > 0.5).all() and (weights[0, back] == 0).all()
    # the back is hidden by the depth test itself, not only by its normal
    _, depth = project_points(anchors, viewmat[None, None], K[None, None])
    vertex_uv, vertex_depth = project_points(vertices, viewmat[None, None], K[None, None])
    occluded = hidden(uv, depth[:, 0], vertex_uv[:, 0], vertex_depth[:, 0], (96, 96), 2.0, 0.05)
    assert occluded[0, back].all() and not occluded[0, front].any()
    # a padded view and a camera looking away see nothing
    _, none = view_weights(template, params, viewmat[None], K[None], (96, 96), torch.tensor([False]))
    away = look_at(
        torch.tensor([0.0, 0.2, 3.0]), torch.tensor([0.0, 0.2, 6.0]), torch.tensor([0.0, 1.0, 0.0])
    )
    _, behind = view_weights(template, params, away[None], K[None], (96, 96), torch.tensor([True]))
    assert not none.any() and not behind.any()


def test_aggregate_is_the_weighted_mean_over_views() -> None:
    values = torch.tensor([[[[1.0], [5.0]], [[3.0], [7.0]]]])  # [B=1, V=2, N=2, C=1]
    weights = torch.tensor([[[1.0, 0.0], [3.0, 0.0]]])
    mean, total = aggregate(values, weights)
    torch.testing.assert_close(mean[0, :, 0], torch.tensor([2.5, 0.0]))
    torch.testing.assert_close(total[0], torch.tensor([4.0, 0.0]))


def test_pixel_aligned_tokens_need_the_reference_poses() -> None:
    registry = default_registry()
    tokenizer = registry.build("tokenizer", "pixel-aligned", {"bands": 3}, dim=8, image_dim=8, num_parts=10)
    inputs = tokenizer_inputs(registry)
    with pytest.raises(LcaError, match="needs each reference's camera and template parameters"):
        tokenizer(replace(inputs, poses=None))


def test_colour_prior_starts_canonical_colours_from_the_references() -> None:
    """confidence 0: the decoder's colours unchanged; confidence 1 over a grey (zero-logit) decoder colour:
    exactly the estimate; in between, the logits add."""
    from lca.contracts.decoder import AnchorGaussians
    from lca.model.avatar import with_color_prior

    def canonical(colors: torch.Tensor) -> AnchorGaussians:
        b, n, k = colors.shape[:3]
        return AnchorGaussians(
            offsets=torch.zeros(b, n, k, 3),
            quats=torch.tensor([1.0, 0, 0, 0]).expand(b, n, k, 4),
            scales=torch.ones(b, n, k, 3),
            opacities=torch.ones(b, n, k),
            colors=colors,
        )

    estimate = torch.tensor([[[0.2, 0.7, 0.9], [0.5, 0.1, 0.3]]])
    decoder = torch.tensor([[[[0.3, 0.3, 0.3]] * 2, [[0.8, 0.6, 0.5]] * 2]])  # [1, 2 anchors, 2, 3]
    unseen = with_color_prior(canonical(decoder), estimate, torch.zeros(1, 2)).colors
    torch.testing.assert_close(unseen, decoder)
    grey = torch.full((1, 2, 2, 3), 0.5)
    seen = with_color_prior(canonical(grey), estimate, torch.ones(1, 2)).colors
    torch.testing.assert_close(seen, estimate[:, :, None].expand_as(seen))
    half = with_color_prior(canonical(decoder), estimate, torch.full((1, 2), 0.5)).colors
    expected = torch.sigmoid(torch.logit(decoder) + 0.5 * torch.logit(estimate)[:, :, None])
    torch.testing.assert_close(half, expected)


def test_spread_colours_keep_seen_anchors_and_fill_unseen_ones_from_their_part() -> None:
    """Three anchors on a line, 0.1 m apart, radius 0.1: a fully seen anchor keeps its colour; an unseen one
    between a seen red and an unseen neighbour takes red, with the confidence of the seen share of its
    kernel; another part's anchor, however near, lends nothing."""
    anchors = torch.tensor([[[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.2, 0.0, 0.0]]])
    colors = torch.tensor([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.0, 0.0, 1.0]]])
    confidence = torch.tensor([[1.0, 0.0, 0.0]])
    out, conf = spread_colors(colors, confidence, anchors, 0.1)
    torch.testing.assert_close(out[0, 0], colors[0, 0])
    torch.testing.assert_close(out[0, 1], torch.tensor([1.0, 0.0, 0.0]))
    k1, k2 = float(np.exp(-0.5)), float(np.exp(-2.0))  # the kernel at one and two radii
    torch.testing.assert_close(conf[0], torch.tensor([1.0, k1 / (1 + 2 * k1), k2 / (1 + k1 + k2)]))
    # the same anchors split into parts {0} and {1, 2}: nothing seen in the second part, nothing spreads
    out, conf = spread_colors(colors, confidence, anchors, 0.1, torch.tensor([[0, 1, 1]]))
    torch.testing.assert_close(conf[0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(out[0, 0], colors[0, 0])


def test_spread_colours_match_the_formula_on_random_anchors() -> None:
    """Random anchors, colours, confidences and parts against a direct numpy evaluation of the docstring's
    sums (per anchor, a loop over the others)."""
    generator = torch.Generator().manual_seed(0)
    anchors = torch.rand(2, 12, 3, generator=generator)
    colors = torch.rand(2, 12, 3, generator=generator)
    confidence = torch.rand(2, 12, generator=generator)
    groups = torch.randint(0, 3, (2, 12), generator=generator)
    out, conf = spread_colors(colors, confidence, anchors, 0.3, groups)
    a, c, s, g = (t.double().numpy() for t in (anchors, colors, confidence, groups))
    for b in range(2):
        for i in range(12):
            k = np.array(
                [np.exp(-np.sum((a[b, i] - a[b, j]) ** 2) / 0.18) * (g[b, i] == g[b, j]) for j in range(12)]
            )
            spread = (k * s[b]) @ c[b] / np.sum(k * s[b])
            seen = np.sum(k * s[b]) / np.sum(k)
            np.testing.assert_allclose(out[b, i], s[b, i] * c[b, i] + (1 - s[b, i]) * spread, rtol=1e-5)
            np.testing.assert_allclose(conf[b, i], s[b, i] + (1 - s[b, i]) * seen, rtol=1e-5)
