"""Sharded imports (``lca data import ... --shard-size N --workers W``): a HuGe100K folder of five subjects
into shards of at most two subjects, written by two processes, joined by a manifest that reads each
subject exactly as a one-store import of it; sources of a one-sequence format (transforms-json) one shard
each; and the mistakes (several sources without --shard-size, --group over many units, a bad unit leaves
no manifest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from importer_truth import synthetic_truth
from test_data_import import _make_folder
from test_import_huge100k import CAMERAS, SIZE, _write_huge

from lca.cli import main
from lca.data.check import check_store
from lca.data.manifest import ManifestReader
from lca.data.reader import StoreReader
from lca.registry import default_registry
from lca.testing.importer import check_importer

SUBJECTS = [f"subject_{k}" for k in range(5)]


@pytest.fixture(scope="module")
def huge_folder(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("huge-shards")
    truth, group = synthetic_truth(folder, 1, CAMERAS, SIZE)
    model = {"hands_meanl": np.zeros(45), "hands_meanr": np.zeros(45)}
    model_file = folder / "SMPLX_NEUTRAL.npz"
    np.savez(model_file, **model)
    source = folder / "images0"
    for subject in SUBJECTS:
        _write_huge(source, truth, group, model, subject)
    return {"source": source, "model": model_file, "folder": folder}


def _huge_argv(huge_folder: dict) -> list[str]:
    return ["data", "import", "--format", "huge100k", "--set", f"smplx_model={huge_folder['model']}"]


def test_a_folder_of_subjects_goes_into_bounded_shards_read_like_one_store(
    huge_folder: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shards"
    argv = [*_huge_argv(huge_folder), str(huge_folder["source"]), str(out), "--shard-size", "2"]
    assert main([*argv, "--workers", "2"]) == 0
    assert "shards indexed by" in capsys.readouterr().out
    shards = sorted(out.glob("huge100k-*.zarr"))
    assert [p.name for p in shards] == [f"huge100k-{k:05d}.zarr" for k in range(3)]
    assert [len(StoreReader(str(p)).group_names()) for p in shards] == [2, 2, 1]
    for shard in shards:
        assert check_store(str(shard)) == []
    manifest = ManifestReader(str(out / "huge100k.parquet"))
    assert len(manifest) == len(SUBJECTS)
    assert sorted(key.split(":")[1] for key in manifest.group_names()) == SUBJECTS
    # each subject reads through the manifest exactly as a one-store import of that subject alone
    single = tmp_path / "single.zarr"
    one = huge_folder["source"] / "param" / "subject_3.npy"
    assert main([*_huge_argv(huge_folder), str(one), str(single)]) == 0
    alone = StoreReader(str(single))
    (key,) = [k for k in manifest.group_names() if k.endswith(":subject_3")]
    assert key.startswith("huge100k-00001:")  # units in order: subjects 2 and 3 share the second shard
    a, b = manifest.meta(key), alone.meta("subject_3")
    np.testing.assert_array_equal(a.viewmats, b.viewmats)
    np.testing.assert_array_equal(a.Ks, b.Ks)
    assert manifest.identities()[key] == "subject_3"
    for camera in range(CAMERAS):
        np.testing.assert_array_equal(
            manifest.read_frame(key, 0, camera), alone.read_frame("subject_3", 0, camera)
        )
        np.testing.assert_array_equal(
            manifest.read_mask(key, 0, camera), alone.read_mask("subject_3", 0, camera)
        )


def test_huge100k_units_conform(huge_folder: dict) -> None:
    params = {"smplx_model": str(huge_folder["model"]), "max_subjects": 3}
    assert check_importer(default_registry(), "huge100k", huge_folder["source"], params) == SUBJECTS[:3]


def test_sources_of_a_one_sequence_format_become_one_shard_each(tmp_path: Path) -> None:
    sources = [tmp_path / "walk_a", tmp_path / "walk_b"]
    for source in sources:
        _make_folder(source, studio=True)
    out = tmp_path / "shards"
    argv = [
        "data",
        "import",
        "--format",
        "transforms-json",
        "--layout",
        "studio",
        *map(str, sources),
        str(out),
    ]
    assert main([*argv, "--shard-size", "8", "--workers", "2"]) == 0
    shards = sorted(out.glob("transforms-json-*.zarr"))
    assert [StoreReader(str(p)).group_names() for p in shards] == [["walk_a"], ["walk_b"]]
    assert sorted(ManifestReader(str(out / "transforms-json.parquet")).group_names()) == [
        "transforms-json-00000:walk_a",
        "transforms-json-00001:walk_b",
    ]


def test_sharded_import_mistakes_are_named(
    huge_folder: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(huge_folder["source"])
    assert main([*_huge_argv(huge_folder), source, source, str(tmp_path / "x.zarr")]) == 2
    assert "add --shard-size N" in capsys.readouterr().err
    argv = [*_huge_argv(huge_folder), source, str(tmp_path / "named"), "--shard-size", "2", "--group", "g"]
    assert main(argv) == 2
    assert "--group name(s) one group, but the sources hold 5 units" in capsys.readouterr().err
    # a broken subject: its shard fails by name, its half-written store is gone, no manifest is written
    broken = tmp_path / "broken"
    broken.mkdir()
    for subject in SUBJECTS[:3]:
        for kind, suffix in (("param", "npy"), ("videos", "mp4")):
            (broken / kind).mkdir(exist_ok=True)
            (broken / kind / f"{subject}.{suffix}").write_bytes(
                (huge_folder["source"] / kind / f"{subject}.{suffix}").read_bytes()
            )
    (broken / "param" / "subject_2.npy").write_bytes(b"not a numpy file")
    out = tmp_path / "broken-shards"
    assert main([*_huge_argv(huge_folder), str(broken), str(out), "--shard-size", "2"]) == 2
    assert "subject_2.npy" in capsys.readouterr().err
    assert not (out / "huge100k.parquet").exists() and not (out / "huge100k-00001.zarr").exists()
