"""The dual-branch decoder's documented initial state, correction algebra, and the expression code's KL."""

from __future__ import annotations

import roma
import torch
from torch.distributions import Normal, kl_divergence

from lca.contracts.decoder import apply_correction
from lca.testing.helpers import assert_grads_reach
from lca_plugins.decoders.dual_branch import DualBranch, DualBranchConfig
from lca_plugins.drivers.expression_code import ExpressionCode, ExpressionCodeConfig


def test_zero_init_gives_the_documented_gaussians_and_zero_corrections() -> None:
    config = DualBranchConfig(
        num_gaussians=4, hidden_dim=16, init_scale=0.004, init_opacity=0.3, init_spread=0.006
    )
    decoder = DualBranch(config, dim=8, driver_dim=5)
    features, driving = torch.randn(2, 9, 8), torch.randn(2, 3, 5)
    canonical, driven = decoder(features, driving)
    # offsets: K distinct points at distance init_spread from the anchor, the same for every anchor
    torch.testing.assert_close(canonical.offsets.norm(dim=-1), torch.full((2, 9, 4), 0.006))
    assert torch.cdist(canonical.offsets[0, 0], canonical.offsets[0, 0]).add(torch.eye(4)).min() > 1e-3
    torch.testing.assert_close(canonical.offsets, canonical.offsets[:1, :1].expand_as(canonical.offsets))
    torch.testing.assert_close(canonical.quats, torch.tensor([1.0, 0, 0, 0]).expand(2, 9, 4, 4))
    torch.testing.assert_close(canonical.scales, torch.full((2, 9, 4, 3), 0.004))
    torch.testing.assert_close(canonical.colors, torch.full((2, 9, 4, 3), 0.5))
    torch.testing.assert_close(canonical.opacities, torch.full((2, 9, 4), 0.3))
    correction = decoder.correction(features, driving)
    assert torch.equal(correction.offsets, torch.zeros(2, 3, 9, 4, 3))
    assert torch.equal(correction.log_scales, torch.zeros(2, 3, 9, 4, 3))
    assert torch.equal(correction.colors, torch.zeros(2, 3, 9, 4, 3))
    assert torch.equal(correction.rotations, torch.tensor([1.0, 0, 0, 0]).expand(2, 3, 9, 4, 4))
    for field in ("offsets", "quats", "scales", "opacities", "colors"):
        a, b = getattr(driven, field), getattr(canonical, field)[:, None]
        torch.testing.assert_close(a, b.expand_as(a))
    # a single Gaussian per anchor sits exactly on it
    single = DualBranch(DualBranchConfig(num_gaussians=1, hidden_dim=16), dim=8, driver_dim=0)
    assert torch.equal(single.canonical(features).offsets, torch.zeros(2, 9, 1, 3))


def test_zero_init_still_lets_gradients_reach_every_parameter_once_heads_move() -> None:
    decoder = DualBranch(DualBranchConfig(hidden_dim=16), dim=8, driver_dim=4)
    features, driving = torch.randn(1, 5, 8), torch.randn(1, 2, 4)
    canonical, driven = decoder(features, driving)
    loss = sum(
        getattr(g, f).square().sum() for g in (canonical, driven) for f in ("offsets", "scales", "colors")
    )
    (
        loss + canonical.opacities.sum() + driven.quats[..., 1:].sum() + canonical.quats[..., 1:].sum()
    ).backward()
    assert_grads_reach(decoder, nonzero=False)  # heads at zero block the hidden layers' gradients at step 0
    assert decoder.color_head.weight.grad.abs().sum() > 0


def test_apply_correction_composes_like_rotation_matrices_and_scales_multiply() -> None:
    decoder = DualBranch(DualBranchConfig(hidden_dim=16, num_gaussians=2), dim=8, driver_dim=3)
    torch.manual_seed(0)
    for layer in decoder.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=0.5)
    features, driving = torch.randn(1, 4, 8), torch.randn(1, 2, 3)
    canonical, correction = decoder.canonical(features), decoder.correction(features, driving)
    driven = apply_correction(canonical, correction)
    rot = lambda q: roma.unitquat_to_rotmat(roma.quat_wxyz_to_xyzw(q))  # noqa: E731
    torch.testing.assert_close(rot(driven.quats), rot(correction.rotations) @ rot(canonical.quats)[:, None])
    torch.testing.assert_close(driven.scales.log(), canonical.scales.log()[:, None] + correction.log_scales)
    torch.testing.assert_close(driven.offsets, canonical.offsets[:, None] + correction.offsets)
    anchors = torch.randn(1, 4, 3)
    gaussians = driven.to_gaussians(anchors)
    assert gaussians.means.shape == (1, 2, 8, 3) and gaussians.opacities.shape == (1, 2, 8)
    torch.testing.assert_close(gaussians.means[0, 1, 2 * 3 + 1], anchors[0, 3] + driven.offsets[0, 1, 3, 1])
    assert (driven.offsets.abs() <= 0.1 + 0.05).all() and (canonical.scales <= 0.05).all()


def test_kl_term_matches_the_closed_form_of_torch_distributions() -> None:
    driver = ExpressionCode(ExpressionCodeConfig(code_dim=6, input_size=16, channels=(4, 8)))
    raw = {}
    driver.head.register_forward_hook(lambda module, args, out: raw.setdefault("out", out))
    crops = torch.rand(2, 3, 3, 16, 16)
    driver.eval()
    code = driver({"face_crop": crops})
    mean, logvar = raw["out"].unflatten(0, (2, 3)).chunk(2, dim=-1)
    expected = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1).mean()
    torch.testing.assert_close(driver.regularization()["kl"], expected)
    torch.testing.assert_close(code, mean)  # eval uses the mean
    driver.train()
    assert not torch.equal(driver({"face_crop": crops}), driver({"face_crop": crops}))  # training samples


def test_expression_code_invalid_frames_get_the_prior_mean_and_no_kl() -> None:
    driver = ExpressionCode(ExpressionCodeConfig(code_dim=6, input_size=16, channels=(4, 8))).eval()
    crops = torch.rand(1, 3, 3, 16, 16)
    valid = torch.tensor([[True, False, True]])
    code = driver({"face_crop": crops, "face_valid": valid})
    assert torch.equal(code[0, 1], torch.zeros(6))
    only_valid = driver({"face_crop": crops[:, [0, 2]]})
    torch.testing.assert_close(code[:, [0, 2]], only_valid)
    kl_valid = driver.regularization()["kl"]
    driver({"face_crop": crops, "face_valid": valid})
    torch.testing.assert_close(driver.regularization()["kl"], kl_valid)
