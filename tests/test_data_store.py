"""Stores: round trip through writer, reader and plain zarr; schema errors; corrupt chunks; check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr
from data_stores import make_store

from lca.data.check import check_store
from lca.data.reader import StoreReader
from lca.data.schema import SCHEMA_VERSION, SMPLX_POSE_DIMS, open_store
from lca.errors import ChunkError, SchemaError

PLAIN_ZARR = """
import json, sys, hashlib
import zarr, imagecodecs.numcodecs
imagecodecs.numcodecs.register_codecs()
root = zarr.open_group(sys.argv[1], mode="r")
out = {}
for name, group in root.groups():
    for key in ("frames", "masks", "gaze", "smplx/body_pose"):
        out[f"{name}/{key}"] = hashlib.sha256(group[key][...].tobytes()).hexdigest()
print(json.dumps(out))
"""


def _sha(values: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


@pytest.mark.parametrize("layout", ["wild-video", "studio"])
@pytest.mark.parametrize("codec", ["zstd", "jpeg", "webp"])
def test_round_trip_reader_and_plain_zarr(tmp_path: Path, layout: str, codec: str) -> None:
    url = str(tmp_path / "s.zarr")
    written = make_store(url, layout, codec)
    reader = StoreReader(url)
    # Plain zarr in a fresh interpreter that never imports the toolkit.
    plain = json.loads(
        subprocess.run(
            [sys.executable, "-c", PLAIN_ZARR, url], check=True, capture_output=True, text=True
        ).stdout
    )
    assert "lca" not in PLAIN_ZARR
    for name, data in written.items():
        meta = reader.meta(name)
        lead = [(t, c) for t in range(meta.num_frames) for c in range(meta.num_cameras)]
        shape = data["frames"].shape
        frames = np.stack([reader.read_frame(name, t, c) for t, c in lead]).reshape(shape)
        masks = np.stack([reader.read_mask(name, t, c) for t, c in lead]).reshape(data["masks"].shape)
        assert plain[f"{name}/frames"] == _sha(frames)  # reader == plain zarr, whatever the codec
        assert plain[f"{name}/masks"] == _sha(masks)
        np.testing.assert_array_equal(masks, data["masks"])  # masks are always lossless
        np.testing.assert_array_equal(meta.gaze, data["gaze"])
        np.testing.assert_array_equal(meta.smplx["body_pose"], data["body_pose"])
        assert plain[f"{name}/smplx/body_pose"] == _sha(data["body_pose"])
        if codec == "zstd":
            np.testing.assert_array_equal(frames, data["frames"])
        else:
            assert frames.shape == data["frames"].shape and not np.array_equal(frames, data["frames"])


def test_jpeg_store_is_smaller_on_smooth_images(tmp_path: Path) -> None:
    from lca.data.writer import StoreWriter

    yy, xx = np.mgrid[0:64, 0:64]
    image = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).astype(np.uint8)
    sizes = {}
    for codec in ("zstd", "jpeg"):
        url = tmp_path / f"{codec}.zarr"
        with StoreWriter(str(url), "wild-video", codec=codec, quality=90) as store:
            clip = store.add_clip(
                "c", identity="a", split="train", num_frames=1, height=64, width=64, betas=np.zeros(10)
            )
            params = {k: np.zeros(d) for k, d in SMPLX_POSE_DIMS.items()}
            clip.append(
                image=image,
                mask=np.zeros((64, 64), np.uint8),
                smplx={**params, "expression": np.zeros(10)},
                face_box=np.zeros(4),
                viewmat=np.eye(4),
                K=np.eye(3),
            )
        frame = StoreReader(str(url)).read_frame("c", 0)
        assert np.abs(frame.astype(int) - image).mean() < 3.0
        sizes[codec] = sum(f.stat().st_size for f in (url / "c" / "frames").rglob("*") if f.is_file())
    assert sizes["jpeg"] < sizes["zstd"]


def _chunk_file(url: str, group: str, t: int) -> Path:
    return Path(url) / group / "frames" / "c" / str(t) / "0" / "0" / "0"


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 32] = b"\x00" * 32
    path.write_bytes(bytes(data))


def test_corrupt_and_missing_chunks_are_located(tmp_path: Path) -> None:
    url = str(tmp_path / "s.zarr")
    make_store(url, "wild-video")
    _corrupt(_chunk_file(url, "g001", 2))
    with pytest.raises(ChunkError) as info:
        StoreReader(url).read_frame("g001", 2)
    problem = info.value.problems[0]
    assert (problem.store, problem.group, problem.array, problem.index) == (url, "g001", "frames", (2,))
    assert url in str(info.value) and "'g001'" in str(info.value) and "index [2]" in str(info.value)
    _chunk_file(url, "g000", 1).unlink()
    found = {(p.group, p.array, p.index) for p in check_store(url)}
    assert found == {("g001", "frames", (2,)), ("g000", "frames", (1,))}


@pytest.mark.parametrize("codec", ["zstd", "jpeg"])  # Zarr v3 and v2 stores
def test_missing_chunks_and_deleted_arrays_are_errors_not_zeros(tmp_path: Path, codec: str) -> None:
    """Zarr reads a missing chunk as its fill value: a deleted frame chunk, a deleted `masks` array and a
    deleted `smplx/body_pose` (still listed by the consolidated metadata) must each fail to read, located,
    and `lca data check` must report each one."""
    url = str(tmp_path / "s.zarr")
    make_store(url, "wild-video", codec)
    frames = zarr.open_group(url, mode="r")["g000"]["frames"]
    frame_chunk = Path(url) / "g000" / "frames" / frames.metadata.encode_chunk_key((2, 0, 0, 0))
    frame_chunk.unlink()
    shutil.rmtree(Path(url) / "g001" / "masks")
    shutil.rmtree(Path(url) / "g002" / "smplx" / "body_pose")
    reader = StoreReader(url)
    for read, where in (
        (lambda: reader.read_frame("g000", 2), ("g000", "frames", (2,))),
        (lambda: reader.read_mask("g001", 0), ("g001", "masks", (0,))),
        (lambda: reader.meta("g002"), ("g002", "smplx/body_pose", None)),
    ):
        with pytest.raises(ChunkError, match="is missing") as info:
            read()
        problem = info.value.problems[0]
        assert (problem.group, problem.array, problem.index) == where
    reader.read_frame("g000", 1)  # the chunks that are there still read
    found = {(p.group, p.array) for p in check_store(url)}
    assert found == {("g000", "frames"), ("g001", "masks"), ("g002", "smplx/body_pose")}


def test_all_zero_small_arrays_are_stored_and_version_1_stores_still_read(tmp_path: Path) -> None:
    """Schema v2 stores an all-zero pose chunk (Zarr would leave it out); a v1 store, which lacked such
    chunks, keeps reading them as zeros instead of failing."""
    from lca.data.writer import StoreWriter

    url = str(tmp_path / "s.zarr")
    with StoreWriter(url, "wild-video") as store:
        clip = store.add_clip(
            "g000", identity="a", split="train", num_frames=1, height=8, width=8, betas=np.zeros(10)
        )
        clip.append(
            image=np.zeros((8, 8, 3), np.uint8),
            mask=np.zeros((8, 8), np.uint8),
            smplx={**{k: np.zeros(d) for k, d in SMPLX_POSE_DIMS.items()}, "expression": np.zeros(10)},
            face_box=np.zeros(4),
            viewmat=np.eye(4),
            K=np.eye(3),
        )
    assert check_store(url) == []  # every chunk there, the all-zero ones too
    (Path(url) / "g000" / "smplx" / "jaw_pose" / "c" / "0" / "0").unlink()  # its one chunk
    with pytest.raises(ChunkError, match="is missing"):
        StoreReader(url).meta("g000")
    root = zarr.open_group(url, mode="r+", use_consolidated=False)
    for node in (root, root["g000"]):
        node.attrs["schema_version"] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "consolidated metadata is not in the v3 spec"
        zarr.consolidate_metadata(url)
    assert not StoreReader(url).meta("g000").smplx["jaw_pose"].any()
    assert check_store(url) == []


CORRUPTIONS = {
    "truncated": lambda text: text[: len(text) // 2],
    "garbage": lambda text: "\x00\xff not json",
    "a list": lambda text: "[]",
    "null": lambda text: "null",
    "empty object": lambda text: "{}",
    "wrong format": lambda text: re.sub(r'"zarr_format": \d', '"zarr_format": 7', text),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
@pytest.mark.parametrize("codec", ["zstd", "jpeg"])  # Zarr v3 (zarr.json) and v2 (.zmetadata, .zgroup)
def test_corrupt_root_metadata_is_a_located_store_error(tmp_path: Path, codec: str, corruption: str) -> None:
    """What `lca train` and `lca data check` open first: every corruption of the root metadata is a
    StoreError naming the store (the CLI prints it, exit code 2), never a JSON or zarr traceback."""
    from lca.errors import StoreError

    url = str(tmp_path / "s.zarr")
    make_store(url, "wild-video", codec)
    for name in ("zarr.json", ".zmetadata", ".zgroup", ".zattrs"):
        path = Path(url) / name
        if path.exists():
            path.write_text(CORRUPTIONS[corruption](path.read_text()))
    with pytest.raises(StoreError) as info:
        StoreReader(url)
    assert url in str(info.value)
    problems = check_store(url)
    assert problems and all(p.store == url for p in problems)


def test_check_passes_on_a_good_store(tmp_path: Path) -> None:
    for layout in ("wild-video", "studio"):
        url = str(tmp_path / f"{layout}.zarr")
        make_store(url, layout, "jpeg" if layout == "studio" else "zstd")
        assert check_store(url) == []


def _edit(url: str, edit) -> list[str]:
    root = zarr.open_group(url, mode="r+", use_consolidated=False)
    edit(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "consolidated metadata is not in the v3 spec"
        zarr.consolidate_metadata(url)
    with pytest.raises(SchemaError) as info:
        StoreReader(url)
    return [str(p) for p in info.value.problems]


def test_schema_errors_name_store_group_array(tmp_path: Path) -> None:
    cases = {
        "missing_array": (
            lambda r: r["g001"].__delitem__("masks"),
            ["group 'g001', array 'masks': missing array"],
        ),
        "missing_attr": (
            lambda r: r["g002"].attrs.__delitem__("fps"),
            ["group 'g002': missing attribute 'fps'"],
        ),
        "future": (lambda r: r.attrs.update(schema_version=SCHEMA_VERSION + 1), ["from the future"]),
        "dtype": (
            lambda r: (
                r["g000"].__delitem__("face_box"),
                r["g000"].create_array("face_box", data=np.zeros((4, 4))),
            ),
            ["group 'g000', array 'face_box': dtype is float64, expected float32"],
        ),
        "shape": (
            lambda r: (
                r["g000"].__delitem__("gaze"),
                r["g000"].create_array("gaze", data=np.zeros((3, 2, 3), np.float32)),
            ),
            ["group 'g000', array 'gaze': shape is (3, 2, 3)"],
        ),
        "split_leak": (
            lambda r: r["g001"].attrs.update(identity="id-a"),
            ["identity 'id-a' appears in several splits"],
        ),
    }
    for case, (edit, expected) in cases.items():
        url = str(tmp_path / f"{case}.zarr")
        make_store(url, "wild-video")
        messages = _edit(url, edit)
        for text in expected:
            assert any(text in m and url in m for m in messages), (case, messages)


def test_open_fsspec_url() -> None:
    url = "memory://lca-test/store.zarr"
    written = make_store(url, "studio", frames=2, cameras=2)
    reader = StoreReader(url)
    np.testing.assert_array_equal(reader.read_frame("g000", 1, 1), written["g000"]["frames"][1, 1])
    assert open_store(url).attrs["layout"] == "studio"


def test_writing_over_an_existing_store_needs_overwrite(tmp_path) -> None:
    from lca.data.writer import StoreWriter
    from lca.errors import StoreError

    url = str(tmp_path / "s.zarr")
    StoreWriter(url, "studio").close()
    with pytest.raises(StoreError, match="already holds data; pass overwrite=True"):
        StoreWriter(url, "studio")
    StoreWriter(url, "studio", overwrite=True).close()


def test_a_failure_while_writing_leaves_no_store(tmp_path: Path) -> None:
    """An error inside the writer's block (here after one frame of a clip of two) removes the store:
    nothing half-written stays where a reader would take it for a whole one."""
    from data_stores import random_params

    from lca.data.writer import StoreWriter

    url, rng = tmp_path / "s.zarr", np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="camera unplugged"), StoreWriter(str(url), "wild-video") as writer:
        clip = writer.add_clip("g000", identity="a", split="train", num_frames=2, height=8, width=8)
        clip.append(image=np.zeros((8, 8, 3), np.uint8), mask=np.zeros((8, 8), np.uint8),
                    smplx={**random_params(rng), "betas": np.zeros(10)}, face_box=np.zeros(4),
                    viewmat=np.eye(4), K=np.eye(3))  # fmt: skip
        assert url.is_dir()
        raise RuntimeError("camera unplugged")
    assert not url.exists()
