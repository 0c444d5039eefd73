"""Benchmark: frames/s of the studio dataset reading a store from S3-compatible object storage (a local
moto server on 127.0.0.1, through s3fs) against the same store on local disk, with 0, 2 and 4 loader
workers, in the same run.

    python bench/object_storage.py [--samples 48] [--size 128]

moto's server is a Python process serving from memory: its rows measure the path (s3fs, zarr's async
reads, one request per chunk) at loopback latency, not a cloud bucket's throughput.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _store(url: str, size: int, storage_options: dict | None) -> None:
    from lca.data.synth import SynthConfig, synthesize_config

    config = SynthConfig(layout="studio", identities=6, frames=2, cameras=4, resolution=size)
    if storage_options is None:
        synthesize_config(config, url, progress=False)
        return
    local = Path(tempfile.mkdtemp()) / "s.zarr"
    synthesize_config(config, local, progress=False)
    import s3fs

    s3fs.S3FileSystem(**storage_options).put(str(local), url.removeprefix("s3://"), recursive=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()

    import boto3
    import torch
    from moto.server import ThreadedMotoServer

    from lca.contracts.sample import collate
    from lca.registry import default_registry
    from lca.testing.helpers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "key": "bench", "secret": "bench",
               "client_kwargs": {"region_name": "us-east-1"}}  # fmt: skip
    credentials = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    boto3.client(
        "s3", endpoint_url=options["endpoint_url"], region_name="us-east-1", **credentials
    ).create_bucket(Bucket="bench")
    local = str(Path(tempfile.mkdtemp()) / "studio.zarr")
    _store(local, args.size, None)
    _store("s3://bench/studio.zarr", args.size, options)
    rows = []
    for name, url, storage in (("local disk", local, None), ("S3 (moto)", "s3://bench/studio.zarr", options)):
        dataset = default_registry().build(
            "dataset",
            "studio",
            {
                "path": url,
                "storage_options": storage,
                "split": "train",
                "image_size": args.size,
                "samples_per_group": args.samples,
            },
        )
        frames_per_sample = dataset.config.num_references + dataset.config.num_targets
        for workers in (0, 2, 4):
            loader = torch.utils.data.DataLoader(
                dataset, batch_size=1, num_workers=workers, collate_fn=collate
            )
            iterator = iter(loader)
            next(iterator)  # start-up (workers, first store open) is not counted
            start = time.perf_counter()
            count = 0
            for _ in iterator:
                count += 1
                if count >= args.samples:
                    break
            seconds = time.perf_counter() - start
            rows.append((name, workers, count / seconds, count * frames_per_sample / seconds))
    server.stop()
    base = {w: fps for name, w, _, fps in rows if name == "local disk"}
    print(f"\nstudio store, {args.size}x{args.size}, {args.samples} samples per row\n")
    print("| storage | loader workers | samples/s | frames/s | x local disk |")
    print("|---|---:|---:|---:|---:|")
    for name, workers, sps, fps in rows:
        print(f"| {name} | {workers} | {sps:.1f} | {fps:.1f} | {fps / base[workers]:.2f} |")


if __name__ == "__main__":
    main()
