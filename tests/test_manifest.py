"""Manifests: a Parquet index over several store shards (written with pyarrow, read back with pyarrow
alone, as a user without the toolkit would), read by the datasets wherever a store is; the reader opens
the table only and a shard on first use; bad manifests are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from data_stores import make_store

from lca.cli import main
from lca.data.manifest import COLUMNS, ManifestReader, index_stores, write_manifest
from lca.data.reader import StoreReader


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("manifest")
    stores = []
    for i in range(2):
        url = str(folder / f"shard-{i:04d}.zarr")
        ids = tuple(f"person-{i}-{j}" for j in range(3))
        make_store(url, "studio", identities=ids, frames=3, cameras=3, seed=i)
        stores.append(url)
    out = index_stores(stores, folder / "people.parquet", workers=2)
    return {"folder": folder, "stores": stores, "manifest": out}


def test_the_table_is_plain_parquet_with_the_documented_schema(shards: dict) -> None:
    table = pq.read_table(shards["manifest"])
    assert tuple(table.column_names) == COLUMNS
    rows = table.to_pylist()
    assert len(rows) == 6 and rows[0]["key"] == "shard-0000:g000" and rows[4]["store"] == shards["stores"][1]
    reader = StoreReader(shards["stores"][1])
    for row in rows[3:]:
        attrs, shape = reader.attrs(row["group"]), reader.frames_shape(row["group"])
        assert (row["identity"], row["split"]) == (attrs["identity"], attrs["split"])
        assert (row["num_frames"], row["num_cameras"], row["height"], row["width"]) == (
            shape[0],
            shape[1],
            *shape[2:4],
        )
        assert row["quality"] is None and row["layout"] == "studio"


def test_the_reader_reads_every_shard_as_its_store_does(shards: dict) -> None:
    manifest = ManifestReader(str(shards["manifest"]))
    assert len(manifest) == 6 and manifest.layout == "studio"
    assert manifest.group_names("train") == ["shard-0000:g000", "shard-0001:g000"]
    assert manifest._readers == {}  # opening read the table only
    store = StoreReader(shards["stores"][1])
    meta = manifest.meta("shard-0001:g002")
    assert meta.name == "shard-0001:g002" and list(manifest._readers) == [shards["stores"][1]]
    np.testing.assert_array_equal(meta.viewmats, store.meta("g002").viewmats)
    np.testing.assert_array_equal(
        manifest.read_frame("shard-0001:g002", 2, 1), store.read_frame("g002", 2, 1)
    )
    np.testing.assert_array_equal(manifest.read_mask("shard-0001:g002", 0, 2), store.read_mask("g002", 0, 2))
    with pytest.raises(Exception, match="has no group 'shard-0009:g000'"):
        manifest.meta("shard-0009:g000")


def test_a_dataset_and_training_read_the_manifest(shards: dict, tmp_path: Path) -> None:
    from importer_truth import trains_one_step

    from lca.registry import default_registry

    dataset = default_registry().build(
        "dataset", "studio", {"path": str(shards["manifest"]), "split": "train"}
    )
    assert sorted(dataset.groups) == ["shard-0000:g000", "shard-0001:g000"]
    sample = dataset[0]
    assert sample.group in dataset.groups and sample.targets.images.shape[-1] > 0
    assert trains_one_step(shards["manifest"], tmp_path / "run")


def test_bad_manifests_are_named(shards: dict, tmp_path: Path, capsys) -> None:
    rows = pq.read_table(shards["manifest"]).to_pylist()
    with pytest.raises(Exception, match="the key 'shard-0000:g000' occurs twice"):
        write_manifest([*rows, rows[0]], tmp_path / "twice.parquet")
    with pytest.raises(Exception, match=r"is in splits .* one person has one split"):
        write_manifest([rows[0], dict(rows[1], identity=rows[0]["identity"])], tmp_path / "split.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(Exception, match=r"junk.parquet cannot be read .* build one with `lca data index`"):
        ManifestReader(str(tmp_path / "junk.parquet"))
    assert main(["data", "index", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "x.parquet")]) == 2
    assert "none.zarr" in capsys.readouterr().err and not (tmp_path / "x.parquet").exists()


def test_synthetic_shards_written_at_once_hold_the_people_of_one_store(tmp_path: Path) -> None:
    """Two processes write two shards of two people; the manifest joins them, and they are the people one
    four-person store holds (same groups, identities, splits and pixels: a person is a function of the seed,
    the layout and the index)."""
    from lca.data.synth import synthesize

    sizes = [
        "--layout",
        "wild-video",
        "--identities",
        "4",
        "--frames",
        "2",
        "--resolution",
        "16",
        "--no-progress",
    ]
    assert (
        main(
            [
                "data",
                "synth",
                *sizes,
                "--out",
                str(tmp_path / "shards"),
                "--shard-size",
                "2",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    manifest = ManifestReader(str(tmp_path / "shards" / "wild-video.parquet"))
    assert manifest.stores() == [str(tmp_path / "shards" / f"wild-video-{k:05d}.zarr") for k in range(2)]
    one = synthesize(
        "wild-video", tmp_path / "one.zarr", identities=4, frames=2, resolution=16, progress=False
    )
    whole = StoreReader(str(one))
    assert manifest.group_names() == [
        f"wild-video-{k // 2:05d}:{g}" for k, g in enumerate(whole.group_names())
    ]
    assert sorted(manifest.identities().values()) == sorted(whole.identities().values())
    key = "wild-video-00001:clip-0003"
    assert manifest.attrs(key)["split"] == whole.attrs("clip-0003")["split"]
    np.testing.assert_array_equal(manifest.read_frame(key, 1), whole.read_frame("clip-0003", 1))


def test_identity_balanced_and_frame_weighted_sampling(shards: dict, tmp_path: Path) -> None:
    """Person A has three train groups, person B one: ``identity`` gives each half the draws; ``frames``
    follows the table's frame counts; both are functions of (seed, epoch) only."""
    from lca.registry import default_registry
    from lca.train.stage import EpochSampler

    base = pq.read_table(shards["manifest"]).to_pylist()[0]  # a real train group
    rows = [dict(base, key=f"a{i}", identity="A", num_frames=f) for i, f in enumerate((1, 2, 3))]
    rows.append(dict(base, key="b0", identity="B", num_frames=6))
    manifest = write_manifest(rows, tmp_path / "weighted.parquet")
    build = default_registry().build
    weights = {}
    for mode in ("identity", "frames"):
        params = {"path": str(manifest), "split": "train", "sampling": mode, "samples_per_group": 2}
        weights[mode] = build("dataset", "studio", params).sample_weights()
    np.testing.assert_allclose(weights["identity"], np.repeat([1 / 6, 1 / 6, 1 / 6, 1 / 2], 2) / 2)
    np.testing.assert_allclose(weights["frames"], np.repeat([1, 2, 3, 6], 2) / 12 / 2)
    uniform = build("dataset", "studio", {"path": str(manifest), "split": "train"}).sample_weights()
    assert uniform is None
    sampler = EpochSampler(8, seed=3, weights=weights["identity"])
    first = list(sampler)
    assert list(sampler) == first  # the same (seed, epoch), the same draws
    draws = []
    for epoch in range(400):
        sampler.set_epoch(epoch)
        draws += list(sampler)
    share_b = np.isin(draws, [6, 7]).mean()  # person B's indices
    assert abs(share_b - 0.5) < 0.03, share_b
