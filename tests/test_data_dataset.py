"""Datasets: splits by identity, determinism across workers, skip policy, collate padding, crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_stores import make_store
from torch.utils.data import DataLoader

from lca.contracts.sample import collate
from lca.data.crop import crop_intrinsics, crop_resize, square_around
from lca.errors import ChunkError
from lca_plugins.datasets.studio import StudioDataset
from lca_plugins.datasets.wild_video import WildVideoDataset

IDS = tuple(f"id-{i}" for i in range(6))
SPLITS = ("train", "train", "val", "test", "train", "val")


@pytest.fixture(scope="module")
def wild(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("wild") / "w.zarr")
    make_store(url, "wild-video", identities=IDS, splits=SPLITS, frames=5)
    return url


def _config(cls, url: str, **overrides):
    fields = dict(
        path=url, num_references=2, num_targets=2, image_size=24, face_crop_size=16, samples_per_group=2
    )
    return cls.Config(**{**fields, **overrides})


def test_splits_are_by_identity(wild: str) -> None:
    seen = {}
    for split in ("train", "val", "test"):
        ds = WildVideoDataset(_config(WildVideoDataset, wild, split=split))
        seen[split] = {ds[i].identity for i in range(len(ds))}
    assert seen["train"] == {"id-0", "id-1", "id-4"}
    assert seen["val"] == {"id-2", "id-5"} and seen["test"] == {"id-3"}


def _flat(batch) -> list[torch.Tensor]:
    views = [batch.references, batch.targets]
    return [t for v in views for t in (v.images, v.masks, v.Ks, v.viewmats, v.frame, *v.params.values())] + [
        batch.driving.face,
        batch.index,
    ]


def test_deterministic_for_a_seed_with_0_and_2_workers(wild: str) -> None:
    ds = WildVideoDataset(_config(WildVideoDataset, wild, min_references=1, num_references=3))
    runs = [list(DataLoader(ds, batch_size=2, num_workers=n, collate_fn=collate)) for n in (0, 2)]
    for a, b in zip(*runs, strict=True):
        for x, y in zip(_flat(a), _flat(b), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0)
    other = WildVideoDataset(_config(WildVideoDataset, wild, min_references=1, num_references=3, seed=1))
    frames = [ds[i].references.frame.tolist() for i in range(len(ds))]
    assert frames != [other[i].references.frame.tolist() for i in range(len(ds))]


def test_skip_policy_finishes_and_reports(wild: str) -> None:
    corrupt = str(Path(wild).parent / "corrupt.zarr")
    make_store(corrupt, "wild-video", identities=IDS, splits=SPLITS, frames=5)
    for t in range(5):  # every frame of the second training clip (g001)
        chunk = Path(corrupt) / "g001" / "frames" / "c" / str(t) / "0" / "0" / "0"
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 32] = b"\x00" * 32
        chunk.write_bytes(bytes(data))
    strict = WildVideoDataset(_config(WildVideoDataset, corrupt))
    with pytest.raises(ChunkError, match="group 'g001', array 'frames', index"):
        strict[2]  # indices 2, 3 are g001 (2 samples per group)
    lenient = WildVideoDataset(_config(WildVideoDataset, corrupt, on_error="skip"))
    batches = list(DataLoader(lenient, batch_size=3, num_workers=2, collate_fn=collate))
    skipped = [m for b in batches for m in b.skipped]
    assert sum(len(b.identity) for b in batches) == len(lenient) == 6
    assert len(skipped) == 3  # index 2 tries 2 then 3; index 3 tries 3; both then land on g004
    assert all("g001" in m and "frames" in m for m in skipped)
    assert [b.group for b in batches] == [["g000", "g000", "g004"], ["g004", "g004", "g004"]]


def test_collate_pads_variable_views(tmp_path: Path) -> None:
    url = str(tmp_path / "studio.zarr")
    make_store(url, "studio", cameras=4)
    ds = StudioDataset(_config(StudioDataset, url, min_references=1, num_references=3, samples_per_group=8))
    samples = [ds[i] for i in range(len(ds))]
    counts = [len(s.references) for s in samples]
    assert len(set(counts)) > 1
    batch = collate(samples)
    assert batch.references.images.shape == (8, max(counts), 3, 24, 24)
    assert batch.references.valid.sum(1).tolist() == counts
    for i, n in enumerate(counts):
        assert torch.equal(batch.references.viewmats[i, n:], torch.eye(4).expand(max(counts) - n, 4, 4))
        assert batch.references.is_face[i, n - 1] and not batch.references.is_face[i, : n - 1].any()
        assert (batch.references.images[i, n:] == 0).all()
    assert batch.driving.blendshapes.shape == (8, 2, 52) and batch.driving.face.shape == (8, 2, 3, 16, 16)
    assert batch.targets.params["body_pose"].shape == (8, 2, 63)


def test_crop_intrinsics_follow_the_image() -> None:
    """A point projected with K lands where its blob is in the crop, which K' must predict. Pixel centres are
    at ``i + 0.5`` (lca.cameras' convention, the rasterizer's: gsplat's), in the image and in the crop."""
    height, width = 60, 80
    K = torch.tensor([[50.0, 0, 39.5], [0, 55.0, 29.5], [0, 0, 1]])
    point = torch.tensor([0.11, -0.07, 1.0])
    u, v = (K @ point)[:2] / point[2]
    yy, xx = torch.meshgrid(
        torch.arange(height, dtype=torch.float32) + 0.5,
        torch.arange(width, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    blob = torch.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * 2.0**2))[None]
    box = square_around(np.array([u - 12.3, v - 9.1, u + 7.7, v + 14.0]), 1.2)
    size = 48
    crop = crop_resize(blob, box, size)[0]
    K2 = crop_intrinsics(K, box, size)
    u2, v2 = (K2 @ point)[:2] / point[2]
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32) + 0.5,
        torch.arange(size, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    weight = crop / crop.sum()
    assert abs(float((weight * xs).sum() - u2)) < 0.05
    assert abs(float((weight * ys).sum() - v2)) < 0.05


@pytest.mark.parametrize("background", [1.0, 0.25])
def test_reference_views_are_segmented_targets_are_not(wild: str, background: float) -> None:
    """References: the photographed pixels where the mask is 1, ``background`` where it is 0, blended in
    between; targets and all masks are exactly what ``reference_background=None`` reads from the store."""
    raw = WildVideoDataset(_config(WildVideoDataset, wild, reference_background=None))[0]
    cut = WildVideoDataset(_config(WildVideoDataset, wild, reference_background=background))[0]
    mask = raw.references.masks
    assert 0 < mask.mean() < 1, "the test store must have both person and background pixels"
    torch.testing.assert_close(cut.references.images, raw.references.images * mask + background * (1 - mask))
    torch.testing.assert_close(cut.references.masks, mask, rtol=0, atol=0)
    torch.testing.assert_close(cut.targets.images, raw.targets.images, rtol=0, atol=0)
    outside = (mask == 0).expand_as(cut.references.images)
    assert torch.all(cut.references.images[outside] == background)


def test_reference_background_outside_0_1_is_a_config_error() -> None:
    from lca.config import resolve_pipeline
    from lca.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data\.wild\.reference_background"):
        resolve_pipeline("lca-tiny", ["data.wild.reference_background=2.0"])
    config = resolve_pipeline("lca-tiny", ["data.wild.reference_background=null"])
    assert config.data["wild"].config.reference_background is None
    assert config.data["studio"].config.reference_background == 1.0
