"""Held-out image metrics of trained and untrained models, shared by ``bench/main_job.py`` and
``bench/ablation.py``: ``lca train`` in a subprocess, then :func:`lca.evaluate.evaluate_store` in this one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from lca.config import PipelineConfig, resolve_pipeline

STORES = {"wild": "synthetic://wild-video", "studio": "synthetic://studio"}


def train_command(pipeline: str, overrides: list[str], run_dir: Path) -> list[str]:
    """The ``lca train`` command line (through this interpreter) for a fresh run in ``run_dir``."""
    return [sys.executable, "-m", "lca", "train", pipeline, *overrides, "--run-dir", str(run_dir)]


def untrained_model(config: PipelineConfig) -> Any:
    """The weights training starts from: the trainer seeds ``run.seed + stage index`` (0 for the first
    stage) with accelerate's ``set_seed`` and then builds the model, so this is the same draw."""
    from accelerate.utils import set_seed

    from lca.model.avatar import AvatarModel

    set_seed(config.run.seed)
    return AvatarModel(config).eval()


def stage_models(run_dir: Path) -> list[tuple[str, Any]]:
    """``(stage name, model)`` for every stage's final checkpoint of a run, in schedule order."""
    from lca.avatars.create import load_model

    config = resolve_pipeline(run_dir / "config.yaml")
    out = []
    for stage in config.schedule:
        final = run_dir / "checkpoints" / stage.name / "final"
        if final.is_dir():
            out.append((stage.name, load_model(final)[0]))
    return out


def lpips() -> tuple[Any | None, str]:
    """LPIPS-Alex with converted weights, or None and why (never a random backbone)."""
    from lca.evaluate import lpips_or_note

    return lpips_or_note()


@torch.no_grad()
def heldout(model: Any, store: str, split: str = "test", lpips_model: Any | None = None) -> dict[str, Any]:
    """``evaluate_store``'s per-category summary (``identity``, ``views``, ``expressions``: full and face
    PSNR/SSIM/LPIPS means) of ``model`` on ``split`` of ``store``, with the model's own data settings."""
    from lca.evaluate import ModelPredictor, evaluate_store

    result = evaluate_store(model.config, store, split, ModelPredictor(model), lpips_model=lpips_model)
    return result["categories"]


def cell(summary: dict[str, Any], category: str, region: str, metric: str, digits: int) -> str:
    """One formatted metric of a :func:`heldout` summary (``n/a`` where absent)."""
    value = summary.get(category, {}).get(region, {}).get(metric)
    return "n/a" if value is None else f"{value:.{digits}f}"
