"""A tiny run folder (untrained weights, real checkpoint layout) and tiny stores for the avatar/eval tests."""

from __future__ import annotations

from pathlib import Path

import torch
from data_stores import make_store

from lca.config import PipelineConfig, resolve_pipeline
from lca.contracts.sample import Batch, collate
from lca.model.avatar import AvatarModel
from lca.registry import default_registry
from lca.train.checkpoint import model_signature, save_checkpoint

TINY_OVERRIDES = [
    "template.num_anchors=48",
    "template.num_head_anchors=16",
    "encoder.dim=16",
    "encoder.depth=1",
    "encoder.image_size=[32, 32]",
    "model.width=16",
    "model.depth=1",
    "tokenizer.bands=2",
    "block.num_heads=2",
    "decoder.hidden_dim=16",
    "drivers.pose.out_dim=4",
    "drivers.pose.hidden_dim=8",
    "drivers.expression.code_dim=4",
    "drivers.expression.input_size=16",
    "drivers.expression.channels=[4, 8]",
    "drivers.gaze.out_dim=4",
    "drivers.gaze.hidden_dim=8",
    "data.wild.image_size=32",
    "data.studio.image_size=32",
    "data.wild.face_crop_size=16",
    "data.studio.face_crop_size=16",
]


def make_stores(folder: Path) -> dict[str, str]:
    """A 4-camera studio store and a wild-video store (3 groups each: train, val, test)."""
    studio, wild = str(folder / "studio.zarr"), str(folder / "wild.zarr")
    make_store(studio, "studio", frames=4, cameras=4)
    make_store(wild, "wild-video", frames=5)
    return {"studio": studio, "wild": wild}


def make_run(
    folder: Path, stores: dict[str, str], seed: int = 0, overrides: tuple[str, ...] = ()
) -> tuple[Path, AvatarModel]:
    """A run folder with ``config.yaml`` and ``checkpoints/posttrain/final`` holding a tiny random model whose
    decoder outputs are perturbed away from their zero initialisation (so corrections are not trivial)."""
    paths = [f"data.studio.path={stores['studio']}", f"data.wild.path={stores['wild']}"]
    config = resolve_pipeline("lca-tiny", [*TINY_OVERRIDES, *paths, *overrides])
    torch.manual_seed(seed)
    model = AvatarModel(config).eval()
    with torch.no_grad():
        for name, parameter in model.decoder.named_parameters():
            if name.endswith("weight"):
                parameter.add_(0.3 * torch.randn_like(parameter))
    run = folder / "run"
    run.mkdir(parents=True, exist_ok=True)
    text = config.to_yaml()
    (run / "config.yaml").write_text(text, encoding="utf-8")
    meta = {
        "stage": "posttrain",
        "stage_index": 1,
        "step": 1,
        "final": True,
        "pipeline": config.name,
        "signature": model_signature(config),
    }
    save_checkpoint(
        run / "checkpoints" / "posttrain",
        "final",
        model=model,
        state=None,
        ema=None,
        config_yaml=text,
        meta=meta,
    )
    return run, model


def studio_batch(store: Path, overrides: list[str]) -> tuple[PipelineConfig, Batch]:
    """lca-tiny at a small size (32 px, 128 + 64 anchors, width 32) on ``store`` and a batch of its first two
    studio samples, for model tests that need real references (cameras, poses, masks)."""
    config = resolve_pipeline(
        "lca-tiny",
        [
            f"data.studio.path={store}",
            "data.studio.image_size=32",
            "template.num_anchors=128",
            "template.num_head_anchors=64",
            "model.width=32",
            *overrides,
        ],
    )
    dataset = default_registry().build("dataset", "studio", config.data["studio"].config)
    return config, collate([dataset[0], dataset[1]])
