"""Stores on object storage for real: a local S3-compatible server (moto's server mode, on 127.0.0.1)
receives shards written through s3fs; they are indexed into a manifest, read back pixel for pixel, and
a training step runs from the manifest with the bucket's credentials as ``storage_options``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_stores import make_store
from importer_truth import trains_one_step

from lca.data.manifest import ManifestReader, index_stores
from lca.testing.helpers import free_port

BUCKET = "lca-test"


@pytest.fixture(scope="module")
def s3() -> dict:
    server_module = pytest.importorskip(
        "moto.server", reason="moto[server] (a dev dependency) is not installed"
    )
    s3fs = pytest.importorskip("s3fs")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "key": "testing", "secret": "testing",
               "client_kwargs": {"region_name": "us-east-1"}}  # fmt: skip
    import boto3  # moto's own dependency: creates the bucket without a location constraint

    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    client = boto3.client("s3", endpoint_url=options["endpoint_url"], region_name="us-east-1", **credentials)
    client.create_bucket(Bucket=BUCKET)
    yield {"options": options, "fs": s3fs.S3FileSystem(**options)}
    server.stop()


def test_shards_on_s3_are_indexed_read_and_trained_from(s3: dict, tmp_path: Path) -> None:
    urls, written = [], {}
    for i in range(2):
        url = f"s3://{BUCKET}/people/shard-{i:04d}.zarr"
        ids = tuple(f"s3-person-{i}-{j}" for j in range(3))
        written[url] = make_store(url, "studio", identities=ids, frames=2, cameras=3, seed=10 + i,
                                  storage_options=s3["options"])  # fmt: skip
        urls.append(url)
    assert s3["fs"].exists(f"{BUCKET}/people/shard-0001.zarr/zarr.json")  # really in the bucket
    manifest = index_stores(urls, tmp_path / "s3.parquet", s3["options"], workers=2)
    reader = ManifestReader(str(manifest), s3["options"])
    assert reader.stores() == urls and len(reader) == 6
    for key, (url, group) in {
        "shard-0001:g002": (urls[1], "g002"),
        "shard-0000:g000": (urls[0], "g000"),
    }.items():
        np.testing.assert_array_equal(reader.read_frame(key, 1, 2), written[url][group]["frames"][1, 2])
        np.testing.assert_array_equal(reader.read_mask(key, 0, 1), written[url][group]["masks"][0, 1])
    options = json.dumps(s3["options"])
    assert trains_one_step(manifest, tmp_path / "run", f"data.studio.storage_options={options}")
