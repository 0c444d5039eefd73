"""Loss terms against closed-form values, and the objective's weighting."""

from __future__ import annotations

import pytest
import torch

from lca.config import LossOptions
from lca.contracts.model import ModelOutput
from lca.errors import LcaError
from lca.losses import Objective, acap_loss, asap_loss, linear_ramp, lpips_loss, mask_loss, masked_l1
from lca.losses.terms import part_weight_vector


def _images(value: float, b: int = 1, m: int = 2, h: int = 4, w: int = 4) -> torch.Tensor:
    return torch.full((b, m, 3, h, w), value)


def test_masked_l1_counts_only_masked_pixels_of_valid_views() -> None:
    pred, target = _images(0.2), _images(0.7)
    pred[:, 1] = 5.0  # view 1 is padding: must not count
    mask = torch.zeros(1, 2, 1, 4, 4)
    mask[:, :, :, :2, :2] = 1.0
    pred[0, 0, :, 3, 3] = 9.0  # outside the mask: must not count
    valid = torch.tensor([[True, False]])
    assert masked_l1(pred, target, mask, valid).item() == pytest.approx(0.5)


def test_mask_loss_is_mean_alpha_error_over_valid_views() -> None:
    alpha = torch.full((1, 2, 1, 2, 2), 0.25)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0]).reshape(1, 1, 1, 2, 2).expand(1, 2, 1, 2, 2)
    alpha[:, 1] = 1.0
    valid = torch.tensor([[True, False]])
    assert mask_loss(alpha, mask, valid).item() == pytest.approx((0.75 + 0.25) / 2)


def test_acap_hinges_on_offset_length_with_part_weights() -> None:
    offsets = torch.zeros(1, 2, 1, 3)
    offsets[0, 0, 0] = torch.tensor([0.03, 0.04, 0.0])  # length 0.05, anchor of part 0 (head)
    offsets[0, 1, 0] = torch.tensor([0.01, 0.0, 0.0])  # under the threshold
    parts = torch.tensor([0, 3])
    weights = part_weight_vector({"head": 2.0})
    expected = (2.0 * (0.05 - 0.02) + 0.0) / 2
    assert acap_loss(offsets, parts, weights, 0.02).item() == pytest.approx(expected)


def test_asap_hinges_on_scale_ratio() -> None:
    scales = torch.tensor([[[[1.0, 1.0, 4.0]], [[2.0, 2.0, 2.0]]]])  # ratios 4 and 1
    parts = torch.tensor([1, 2])
    weights = part_weight_vector({"hands": 0.5, "upper_body": 3.0})
    assert asap_loss(scales, parts, weights, 3.0).item() == pytest.approx(0.5 * (4 - 3) / 2)


def test_part_weights_in_label_order_and_unknown_part_is_an_error() -> None:
    assert part_weight_vector({"lower_body": 4.0}).tolist() == [1.0, 1.0, 1.0, 4.0]
    with pytest.raises(ValueError, match="unknown body parts \\['feet'\\]"):
        part_weight_vector({"feet": 1.0})


def test_linear_ramp() -> None:
    assert [linear_ramp(s, 4) for s in (0, 1, 4, 9)] == [0.0, 0.25, 1.0, 1.0]
    assert linear_ramp(0, 0) == 1.0


def test_lpips_loss_cuts_out_the_subject_and_skips_padding() -> None:
    class MeanAbs(torch.nn.Module):  # a stand-in network: per-pair mean |a - b|
        def forward(self, a: torch.Tensor, b: torch.Tensor, normalize: bool) -> torch.Tensor:
            assert normalize
            return (a - b).abs().mean(dim=(1, 2, 3))

    pred, target = _images(0.2), _images(0.6)
    pred[:, 1] = 100.0
    mask = torch.ones(1, 2, 1, 4, 4)
    mask[..., 2:, :] = 0.0
    valid = torch.tensor([[True, False]])
    assert lpips_loss(MeanAbs(), pred, target, mask, valid).item() == pytest.approx(0.4 * 0.5)


def _output(driven: torch.Tensor) -> ModelOutput:
    return ModelOutput(
        driven=driven,
        driven_alpha=torch.ones(1, 2, 1, 4, 4),
        offsets=torch.zeros(1, 2, 1, 3),
        scales=torch.ones(1, 2, 1, 3),
        part_labels=torch.tensor([0, 1]),
        regularization={"kl": torch.tensor(2.0)},
    )


class _Batch:
    class targets:
        images = _images(0.5)
        masks = torch.ones(1, 2, 1, 4, 4)
        valid = torch.tensor([[True, True]])


def test_objective_total_is_the_weighted_sum_with_ramped_regularisers() -> None:
    options = LossOptions(
        ramp_steps=4,
        canonical=0.5,
        terms={
            "l1": {"type": "l1", "weight": 2.0},
            "mask": {"type": "mask", "weight": 0.0},
            "acap": {"type": "acap", "weight": 1.0},
            "asap": {"type": "asap", "weight": 1.0},
            "kl": {"type": "regularizer", "key": "kl", "weight": 0.5},
        },
    )
    terms = Objective(options)(_output(_images(0.25)), _Batch(), step=1)
    assert set(terms.values) == {"driven/l1", "acap", "asap", "kl"}  # no canonical render, mask weight 0
    assert terms.weights["kl"] == pytest.approx(0.5 * 0.25)
    assert terms.total.item() == pytest.approx(2.0 * 0.25 + 0.5 * 0.25 * 2.0)


def test_objective_refuses_an_unknown_regularisation_term() -> None:
    output = _output(_images(0.25))
    output.regularization = {"tv": torch.tensor(1.0)}
    with pytest.raises(LcaError, match="regularization term 'tv'"):
        Objective(LossOptions())(output, _Batch(), step=0)
