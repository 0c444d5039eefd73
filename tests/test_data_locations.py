"""``synthetic://`` is resolved at the entry points (CLI, the trainer's dataset building, avatar and eval
helpers), never by :class:`StoreReader`, which takes concrete locations only. The synthetic generator is
replaced by a stub pointing at small stores, so these tests generate nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_stores import make_store

import lca.data.synth
from lca.avatars.create import store_dataset
from lca.cli import main
from lca.config import resolve_pipeline
from lca.data.locations import resolve_data_paths
from lca.data.reader import StoreReader
from lca.errors import UnresolvedStoreError
from lca.registry import default_registry
from lca.train.stage import build_dataset

Synthetic = tuple[dict[str, Path], list[list[str]]]


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Synthetic:
    """``ensure_synthetic_data`` answering with two small stores; the list records the layouts each call
    asked for."""
    stores = {layout: tmp_path / f"{layout}.zarr" for layout in ("wild-video", "studio")}
    for layout, path in stores.items():
        make_store(str(path), layout, frames=3, cameras=2)
    calls: list[list[str]] = []

    def ensure(*args: object, layouts: tuple[str, ...] = ("wild-video", "studio"), **kwargs: object):
        calls.append(list(layouts))
        return {layout: stores[layout] for layout in layouts}

    monkeypatch.setattr(lca.data.synth, "ensure_synthetic_data", ensure)
    return stores, calls


def test_store_reader_refuses_synthetic_urls_and_says_how_to_resolve(synthetic: Synthetic) -> None:
    with pytest.raises(UnresolvedStoreError, match="resolve_store_url") as error:
        StoreReader("synthetic://studio")
    assert "synthetic://studio" in str(error.value)
    assert synthetic[1] == []  # the reader never ran the generator


def test_resolve_data_paths_resolves_synthetic_slots_only(synthetic: Synthetic) -> None:
    stores, _ = synthetic
    config = resolve_pipeline("lca-tiny", ["data.wild.path=/data/wild.zarr"])
    resolved = resolve_data_paths(config)
    assert resolved.data["studio"].config.path == str(stores["studio"])
    assert resolved.data["wild"].config.path == "/data/wild.zarr"
    assert config.data["studio"].config.path == "synthetic://studio"  # the run keeps the portable URL
    assert resolved.slots == config.slots and resolved.schedule == config.schedule


def test_a_stage_generates_only_the_synthetic_store_it_reads(synthetic: Synthetic) -> None:
    stores, calls = synthetic
    config = resolve_pipeline("lca-tiny")
    assert resolve_data_paths(config, only=["studio"]).data["wild"].config.path == "synthetic://wild-video"
    dataset = build_dataset(config, config.stage("posttrain"), default_registry())
    assert dataset.config.path == str(stores["studio"]) and calls and all(c == ["studio"] for c in calls)


def test_entry_points_accept_synthetic_urls(synthetic: Synthetic, capsys: pytest.CaptureFixture[str]) -> None:
    stores, _ = synthetic
    assert main(["data", "list", "synthetic://studio"]) == 0
    assert str(stores["studio"]) in capsys.readouterr().out
    assert main(["data", "check", "synthetic://wild-video"]) == 0
    config = resolve_pipeline("lca-tiny")
    dataset = build_dataset(config, config.stage("posttrain"), default_registry())
    assert dataset.reader.url == str(stores["studio"]) and len(dataset) > 0
    assert store_dataset(config, "synthetic://studio").reader.url == str(stores["studio"])
