"""Benchmark: opening a dataset of many groups through a manifest against one consolidated store.

    python bench/data_scale.py [--sizes 10000,100000,1000000] [--store-sizes 24,96]

A few real shards (random content, studio layout, 2 frames x 2 cameras of 32x32) are written once; a
manifest of N rows is generated over them (each row its own person, pointing at a real group), and in a
fresh subprocess per case the bench measures: the open time (``ManifestReader`` / ``StoreReader``), the
peak RSS of the process (and above the process after its imports: torch, the toolkit, pyarrow) and the
first-sample latency (the studio dataset built on it, then its first sample: the first shard's open and
its group's reads). The single-store rows are stores of that many
groups, as large as this machine writes in reasonable time; their per-group cost is what a million-group
store would pay.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARDS, GROUPS_PER_SHARD = 4, 8


def _write_store(url: str, groups: int, seed: int) -> None:
    import numpy as np

    from lca.data.schema import SMPLX_POSE_DIMS
    from lca.data.writer import StoreWriter

    rng = np.random.default_rng(seed)
    with StoreWriter(url, "studio") as writer:
        for g in range(groups):
            viewmats = np.tile(np.eye(4, dtype=np.float32), (2, 1, 1))
            viewmats[:, 2, 3] = 3.0
            Ks = np.tile(np.array([[40, 0, 16], [0, 40, 16], [0, 0, 1]], np.float32), (2, 1, 1))
            capture = writer.add_capture(
                f"g{g:05d}", identity=f"s{seed}-p{g}", split=("train", "val", "test")[g % 3], num_frames=2,
                height=32, width=32, viewmats=viewmats, Ks=Ks, betas=rng.normal(size=10),
            )  # fmt: skip
            for _ in range(2):
                params = {k: rng.normal(size=n).astype(np.float32) for k, n in SMPLX_POSE_DIMS.items()}
                params["expression"] = np.zeros(10, np.float32)
                capture.append(
                    image=rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
                    mask=np.full((2, 32, 32), 255, np.uint8), smplx=params,
                    face_box=np.zeros((2, 4), np.float32),
                )  # fmt: skip


def _manifest(folder: Path, shards: list[str], rows: int) -> Path:
    """``rows`` manifest rows, each its own person, cycling over the shards' real groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lca.data.manifest import _schema

    n = range(rows)
    splits = ("train", "val", "test")
    table = pa.table({
        "key": [f"v{i:07d}" for i in n], "store": [shards[i % len(shards)] for i in n],
        "group": [f"g{(i // len(shards)) % GROUPS_PER_SHARD:05d}" for i in n],
        "identity": [f"person-{i}" for i in n], "split": [splits[i % 3] for i in n],
        "layout": ["studio"] * rows,
        "num_frames": [2] * rows, "num_cameras": [2] * rows, "height": [32] * rows, "width": [32] * rows,
        "fps": [10.0] * rows, "source": ["bench"] * rows, "quality": [None] * rows,
    }, schema=_schema())  # fmt: skip
    path = folder / f"m{rows}.parquet"
    pq.write_table(table, path)
    return path


def _measure(kind: str, path: str) -> None:
    """One case, in this (fresh) process: prints a JSON line."""
    import pyarrow.parquet  # noqa: F401  (imported before the baseline, as every dataset process has it)

    from lca.data.manifest import ManifestReader
    from lca.data.reader import StoreReader
    from lca.registry import default_registry

    default_registry().load("dataset", "studio")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    start = time.perf_counter()
    reader = ManifestReader(path) if kind == "manifest" else StoreReader(path)
    opened = time.perf_counter() - start
    groups = len(reader.group_names())
    del reader  # the dataset opens its own: a training process holds one reader, not two
    start = time.perf_counter()
    dataset = default_registry().build("dataset", "studio", {"path": path, "split": "train", "image_size": 32,
                                                             "face_reference": False})  # fmt: skip
    dataset[0]
    first = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "groups": groups, "open_s": opened, "first_s": first, "rss_mib": rss,
                      "base_mib": base}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--store-sizes", default="24,96")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(*args.measure)
        return
    folder = Path(tempfile.mkdtemp(prefix="lca-data-scale-"))
    shards = [str(folder / f"shard-{i}.zarr") for i in range(SHARDS)]
    for i, url in enumerate(shards):
        _write_store(url, GROUPS_PER_SHARD, i)
    cases = [("store", str(folder / f"store-{n}.zarr"), n) for n in map(int, args.store_sizes.split(","))]
    for _, url, n in cases:
        _write_store(url, n, 100 + n)
    cases += [("manifest", str(_manifest(folder, shards, n)), n) for n in map(int, args.sizes.split(","))]
    results = []
    for kind, path, _ in cases:
        command = [sys.executable, __file__, "--measure", kind, path]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    columns = ("source", "groups", "open (s)", "per group (ms)", "first sample (s)", "peak RSS (MiB)",
               "above imports (MiB)")  # fmt: skip
    print("\n| " + " | ".join(columns) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        per = 1000 * r["open_s"] / r["groups"]
        print(f"| {r['kind']} | {r['groups']:,} | {r['open_s']:.3f} | {per:.4f} | {r['first_s']:.3f} | "
              f"{r['rss_mib']:.0f} | {r['rss_mib'] - r['base_mib']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
