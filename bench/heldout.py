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
    """``(stage name, model)`` for every stage's final checkpoint of a run, in schedule order; a run that
    kept an EMA of the weights (``run.ema_decay``) adds ``"<stage> (EMA)"`` after each stage."""
    from lca.avatars.create import load_model
    from lca.train.checkpoint import EMA_FILE

    config = resolve_pipeline(run_dir / "config.yaml")
    out = []
    for stage in config.schedule:
        final = run_dir / "checkpoints" / stage.name / "final"
        if final.is_dir():
            out.append((stage.name, load_model(final)[0]))
            if (final / EMA_FILE).is_file():
                out.append((f"{stage.name} (EMA)", load_model(final, ema=True)[0]))
    return out


def lpips() -> tuple[Any | None, str]:
    """LPIPS-Alex with converted weights, or None and why (never a random backbone)."""
    from lca.evaluate import lpips_or_note

    return lpips_or_note()


@torch.no_grad()
def heldout(
    model: Any,
    store: str,
    split: str = "test",
    lpips_model: Any | None = None,
    predictor: Any | None = None,
    seen_records: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``evaluate_store``'s per-category summary (``identity``, ``views``, ``expressions``: full and face
    PSNR/SSIM/LPIPS means and their 95% intervals over people) of ``model`` on ``split`` of ``store``, with
    the model's own data settings; ``predictor`` replaces the model's renders (the :data:`REFERENCES`);
    ``model`` then only gives the config. ``seen_records`` (a run's ``seen.json``) marks the people it
    trained on in ``summary["seen_in_training"]``; :func:`check_held_out_stores` refuses them first. The
    per-image records are kept under ``"images"``, for paired comparisons (:func:`paired_cell`)."""
    from lca.evaluate import ModelPredictor, evaluate_store

    predictor = predictor or ModelPredictor(model)
    result = evaluate_store(
        model.config, store, split, predictor, lpips_model=lpips_model, seen_records=seen_records,
        allow_seen=True,
    )  # fmt: skip
    return {
        **result["categories"],
        "seen_in_training": result["seen_in_training"],
        "images": result["images"],
    }


def check_held_out_stores(run_dir: Path, split: str, allow_seen: bool) -> dict[str, Any] | None:
    """The run's record of whom it trained on, after checking that none of :data:`STORES`' ``split`` people
    is among them (:class:`lca.errors.SeenInTrainingError` otherwise, unless ``allow_seen``)."""
    from lca.data.locations import resolve_store_url
    from lca.data.reader import StoreReader
    from lca.train.seen import check_held_out, load_records

    records = load_records(run_dir)
    if records is None:
        print(f"warning: {run_dir} has no seen.json: cannot check that the evaluated people were held out")
        return None
    for store in STORES.values():
        identities = StoreReader(resolve_store_url(store)).identities(split).values()
        check_held_out(records, identities, where=f"{store} split '{split}'", allow_seen=allow_seen)
    return records


def _true_silhouette(batch: Any, colour: torch.Tensor) -> torch.Tensor:
    """``colour`` (broadcastable to ``[M, 3, 1, 1]``) inside each target's own mask, black outside."""
    masks = batch.targets.masks[0]
    return (colour * masks).expand(-1, 3, -1, -1).clamp(0, 1)


def grey_silhouette(batch: Any) -> torch.Tensor:
    """Reference that reads the answer: the target's true mask, filled with grey 0.5."""
    return _true_silhouette(batch, torch.tensor(0.5))


def mean_colour_silhouette(batch: Any) -> torch.Tensor:
    """Reference that reads the answer: the target's true mask, filled with the person's mean colour in that
    very image. A model beats it only by getting colours right region by region."""
    images, masks = batch.targets.images[0], batch.targets.masks[0]
    mean = (images * masks).sum((2, 3), keepdim=True) / masks.sum((2, 3), keepdim=True).clamp(min=1.0)
    return _true_silhouette(batch, mean)


REFERENCES = {
    "reference: true mask, grey": grey_silhouette,
    "reference: true mask, true mean colour": mean_colour_silhouette,
}
"""What the PSNR scale means here: renders made from the targets themselves (not models), evaluated alike."""


def paired_cell(a: dict[str, Any], b: dict[str, Any], metric: str = "psnr", digits: int = 2) -> str:
    """The mean per-image difference ``a - b`` of two :func:`heldout` summaries of the same images, with its
    95% interval from a bootstrap over people (``+0.41 [-0.02, 0.80]``): each person's difficulty, shared by
    both sides, drops out, so this interval is far narrower than either side's."""
    from lca.intervals import paired_differences, people_interval

    differences = paired_differences(a["images"], b["images"], metric)
    values = [v for person in differences.values() for v in person if v is not None]
    if not values:
        return "n/a"
    mean, interval = sum(values) / len(values), people_interval(differences)
    if interval is None:
        return f"{mean:+.{digits}f}"
    return f"{mean:+.{digits}f} [{interval[0]:+.{digits}f}, {interval[1]:+.{digits}f}]"


def cell(summary: dict[str, Any], category: str, region: str, metric: str, digits: int) -> str:
    """One formatted metric of a :func:`heldout` summary with its 95% interval over people
    (``24.31 [23.80, 24.77]``; ``n/a`` where absent)."""
    entry = summary.get(category, {})
    value = entry.get(region, {}).get(metric)
    if value is None:
        return "n/a"
    interval = entry.get("interval", {}).get(region, {}).get(metric)
    if interval is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
