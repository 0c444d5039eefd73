"""Evaluation metrics against closed forms and scikit-image."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
from skimage.metrics import structural_similarity

from lca.lpips_weights import RandomLpipsBackboneWarning, load_lpips
from lca.metrics import MetricInputError, image_metrics, lpips_distance, pixel_box, psnr, ssim


def images(n: int = 2, size: int = 32, seed: int = 0, low: float = 0.2, high: float = 0.8) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(n, 3, size, size, generator=generator)


@pytest.fixture(scope="module")
def random_lpips(tmp_path_factory: pytest.TempPathFactory):
    """Masks and boxes are plumbing: a random backbone (lpips' real heads) exercises them exactly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomLpipsBackboneWarning)
        torch.manual_seed(0)
        return load_lpips("alex", tmp_path_factory.mktemp("none") / "absent", allow_random_backbone=True)


def test_psnr_of_constant_offsets_is_closed_form() -> None:
    target = images()
    pred = target + torch.tensor([0.05, 0.1]).view(2, 1, 1, 1)
    expected = torch.tensor([-10 * math.log10(0.05**2), 20.0], dtype=torch.float64)
    torch.testing.assert_close(psnr(pred, target), expected, rtol=1e-5, atol=1e-4)
    assert torch.isinf(psnr(target, target)).all()


def test_masked_psnr_ignores_everything_outside_the_mask() -> None:
    target = images()
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 4:20, 8:30] = 1.0
    pred = torch.where(mask.bool(), target + 0.1, images(seed=5))
    torch.testing.assert_close(psnr(pred, target, mask=mask), torch.full((2,), 20.0, dtype=torch.float64))
    full = torch.ones_like(mask)
    torch.testing.assert_close(psnr(pred, target, mask=full), psnr(pred, target))
    assert psnr(pred, target, mask=torch.zeros_like(mask)).isnan().all()


def test_face_boxes_crop_floor_ceil_and_empty_boxes_give_nan() -> None:
    assert pixel_box(torch.tensor([2.5, 3.2, 10.1, 12.0]), 32, 32) == (2, 3, 11, 12)
    assert pixel_box(torch.tensor([-4.0, 30.0, 40.0, 50.0]), 32, 32) == (0, 30, 32, 32)
    assert pixel_box(torch.tensor([5.0, 5.0, 5.0, 9.0]), 32, 32) is None  # x1 <= x0: "no face"
    target = images()
    pred = (target + 0.3).clamp(max=1.0)
    pred[:, :, 3:12, 2:11] = target[:, :, 3:12, 2:11] + 0.1
    boxes = torch.tensor([[2.5, 3.2, 10.1, 12.0], [0.0, 0.0, 0.0, 0.0]])
    values = psnr(pred, target, boxes=boxes)
    assert values[0].item() == pytest.approx(20.0, abs=1e-4) and values[1].isnan()
    # A constant offset stays constant when the crop is resized, so the answer does not change.
    assert psnr(pred, target, boxes=boxes, crop_size=48)[0].item() == pytest.approx(20.0, abs=1e-4)


def test_ssim_of_identical_images_is_one() -> None:
    target = images(size=24)
    torch.testing.assert_close(ssim(target, target), torch.ones(2, dtype=torch.float64))


def test_ssim_matches_scikit_image() -> None:
    """scikit-image averages the SSIM map without its 5-pixel border; the same mask gives the same number."""
    target = images(n=1, size=48, seed=1, low=0.0, high=1.0)
    pred = (target + 0.3 * torch.randn(target.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    reference = structural_similarity(
        pred[0].double().numpy(),
        target[0].double().numpy(),
        channel_axis=0,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    interior = torch.zeros(1, 1, 48, 48)
    interior[..., 5:-5, 5:-5] = 1.0
    assert ssim(pred, target, mask=interior).item() == pytest.approx(reference, abs=1e-5)
    assert 0.1 < reference < 0.9  # a pair where SSIM is informative, not a trivial 0 or 1


def test_ssim_and_lpips_refuse_crops_too_small_and_accept_resized_ones(random_lpips) -> None:
    target = images(n=1, size=64)
    pred = (target + 0.05).clamp(max=1)
    boxes = torch.tensor([[10.0, 10.0, 18.0, 18.0]])
    with pytest.raises(
        MetricInputError, match=r"SSIM needs images of at least 11x11 pixels; a crop is \(8, 8\)"
    ):
        ssim(pred, target, boxes=boxes)
    with pytest.raises(MetricInputError, match="LPIPS needs images of at least 31x31 pixels"):
        lpips_distance(pred, target, random_lpips, boxes=boxes, crop_size=16)
    assert lpips_distance(pred, target, random_lpips, boxes=boxes, crop_size=32).shape == (1,)


def test_lpips_distance_is_lpips_on_the_same_pixels(random_lpips) -> None:
    target = images(size=40)
    pred = images(size=40, seed=3)
    direct = random_lpips(2 * pred - 1, 2 * target - 1).flatten().double()
    torch.testing.assert_close(lpips_distance(pred, target, random_lpips), direct)
    assert (lpips_distance(target, target, random_lpips) == 0).all()
    # Differences outside the mask do not count; inside they do.
    mask = torch.zeros(2, 1, 40, 40)
    mask[..., 5:35, 5:35] = 1.0
    outside_only = torch.where(mask.bool(), target, pred)
    assert (lpips_distance(outside_only, target, random_lpips, mask=mask) == 0).all()
    assert (lpips_distance(pred, target, random_lpips, mask=mask) > 0).all()


def test_image_metrics_bundles_the_three(random_lpips) -> None:
    target = images(size=40)
    pred = (target + 0.1).clamp(max=1)
    out = image_metrics(pred, target, lpips_model=random_lpips)
    assert set(out) == {"psnr", "ssim", "lpips"} and all(v.shape == (2,) for v in out.values())
    torch.testing.assert_close(out["psnr"], psnr(pred, target))
    assert set(image_metrics(pred, target)) == {"psnr", "ssim"}


@pytest.mark.parametrize(
    ("pred", "target", "kwargs", "message"),
    [
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 9), {}, r"\[N,3,H,W\] of the same shape"),
        (torch.rand(2, 4, 8, 8), torch.rand(2, 4, 8, 8), {}, r"\[N,3,H,W\]"),
        (
            torch.rand(2, 3, 8, 8) * 2,
            torch.rand(2, 3, 8, 8),
            {},
            r"pred spans \[.*\] \(clamp renders first\)",
        ),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), {"mask": torch.ones(2, 8, 8)}, r"mask must be"),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), {"boxes": torch.ones(4)}, r"boxes must be \[N,4\]"),
    ],
)
def test_bad_inputs_are_named(pred, target, kwargs, message: str) -> None:
    with pytest.raises(MetricInputError, match=message):
        psnr(pred, target, **kwargs)


def test_real_lpips_ranks_a_face_crop(real_alex: Path) -> None:
    """With real weights: a slightly noisy crop is closer than a blurred one."""
    from skimage import data, filters

    face = torch.from_numpy(data.astronaut()[None] / 255.0).permute(0, 3, 1, 2).float()  # 512², face near top
    noisy = (face + 0.03 * torch.randn(face.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    blurred = torch.from_numpy(filters.gaussian(face[0].numpy(), sigma=4, channel_axis=0)[None]).float()
    boxes = torch.tensor([[160.0, 40.0, 300.0, 200.0]])
    model = load_lpips("alex", real_alex)
    near = lpips_distance(noisy, face, model, boxes=boxes, crop_size=128)
    far = lpips_distance(blurred, face, model, boxes=boxes, crop_size=128)
    assert 0 < near.item() < far.item()
