"""Small-budget comparisons of pipeline variants: the shared code of the notebooks in ``notebooks/``.

A variant is a :class:`~lca.config.PipelineConfig` (a registered pipeline plus overrides), so everything
here builds components only through the registry. Training runs the trainer's own stage loop
(:class:`lca.train.stage.StageLoop`), so a variant trains exactly as under `lca train` (``init_from``,
``freeze``, gradient accumulation, EMA, the seed of each stage), with callbacks that keep every step's
loss and the model in memory instead of writing a run folder. Held-out numbers come from
:func:`lca.evaluate.evaluate_store`, the protocol of ``lca eval``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lca.config import PipelineConfig, StageConfig
from lca.contracts.model import ModelFactory
from lca.contracts.sample import Batch, collate
from lca.data.locations import resolve_store_url
from lca.data.reader import StoreReader
from lca.metrics import pixel_box
from lca.model.avatar import AvatarModel, build_model
from lca.registry import Registry, default_registry
from lca.train import checkpoint as ckpt
from lca.train.callbacks import Ema, Evaluations, LossHistory
from lca.train.stage import InitialWeights, StageLoop, build_dataset

Evaluation = Callable[[AvatarModel], dict[str, float]]
"""A model -> named numbers (e.g. :func:`heldout_psnr` with its other arguments bound)."""


@dataclass
class TrainResult:
    """One variant after :func:`train_small`: the model in eval mode (its trained weights, what `lca eval`
    reads by default), the total loss of every step of the asked stage, its training wall time
    (evaluations left out), the evaluations taken during it as ``(step, numbers)``, and the EMA of the
    weights when ``run.ema_decay`` is set."""

    model: AvatarModel
    losses: list[float]
    seconds: float
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    ema: nn.Module | None = None


def parameter_count(module: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def forward_seconds(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Median wall time of ``fn()`` without gradients, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def stage_batch(config: PipelineConfig, stage: str, index: int = 0) -> Batch:
    """One training batch of ``stage`` (its dataset, batch size and view counts), for timing forwards."""
    spec = config.stage(stage)
    dataset = build_dataset(config, spec, default_registry())
    return collate([dataset[(index + i) % len(dataset)] for i in range(spec.batch_size)])


def stage_chain(config: PipelineConfig, stage: str) -> list[StageConfig]:
    """``stage`` and the earlier stages it starts from through ``init_from`` (a stage name), first first.
    A checkpoint path in ``init_from`` ends the chain: that stage loads it. (Config validation allows only
    earlier stages in ``init_from``, so the chain cannot loop.)"""
    chain = [config.stage(stage)]
    names = [s.name for s in config.schedule]
    while chain[0].init_from in names:
        chain.insert(0, config.stage(chain[0].init_from))
    return chain


def train_small(
    config: PipelineConfig,
    stage: str,
    *,
    evaluate: Evaluation | None = None,
    eval_every: int | None = None,
    registry: Registry | None = None,
    model_factory: ModelFactory = build_model,
) -> TrainResult:
    """Train a fresh model of ``config`` through ``stage`` with the trainer's stage loop, in memory.

    A stage whose ``init_from`` names an earlier stage starts from that stage's final weights, trained
    first here (so ``train_small(config, "posttrain")`` runs pretrain, then posttrain); a checkpoint path
    is loaded. Each stage is seeded as under `lca train` (``run.seed`` + its index), so variants differ only
    by their config. ``evaluate`` runs before the first step of ``stage`` and every ``eval_every`` steps
    (and after the last step). ``registry`` and ``model_factory`` are the trainer's (default: every
    plugin's components, the assembled avatar).
    """
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    registry = registry or default_registry()
    weights: InitialWeights = None
    result = TrainResult(model=None, losses=[], seconds=0.0)  # type: ignore[arg-type]
    for spec in stage_chain(config, stage):
        if weights is None and spec.init_from is not None:
            weights = ckpt.resolve(spec.init_from)
        ema = Ema(config.run.ema_decay) if config.run.ema_decay is not None else None
        history = LossHistory()
        callbacks: list[Any] = [*([ema] if ema is not None else []), history]
        evaluations = None
        if spec.name == stage and evaluate is not None:
            evaluations = Evaluations(evaluate, eval_every)
            callbacks.append(evaluations)
        loop = StageLoop(
            config,
            spec,
            index=config.schedule.index(spec),
            accelerator=accelerator,
            model_factory=model_factory,
            registry=registry,
            initial=weights,
            callbacks=callbacks,
        )
        began = time.perf_counter()
        loop.run()
        model = loop.unwrapped
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}  # the next stage's start
        if spec.name == stage:
            result.model = model.eval()
            result.ema = ema.model.module.eval() if ema is not None and ema.model is not None else None
            result.losses = history.losses
            result.seconds = time.perf_counter() - began - (evaluations.seconds if evaluations else 0.0)
            result.evaluations = evaluations.results if evaluations else []
    return result


def store_of(config: PipelineConfig, data: str) -> str:
    """The concrete location of the ``data`` member's store (synthetic stores are generated if missing)."""
    return resolve_store_url(config.data[data].config.path)


def training_records(config: PipelineConfig) -> dict[str, dict[str, Any]]:
    """What :func:`train_small` (and `lca train`) trains ``config`` on, in the form of a run's ``seen.json``:
    ``{stage: {"identities": [...]}}``, the train split of each stage's data member."""
    records: dict[str, dict[str, Any]] = {}
    for stage in config.schedule:
        reader = StoreReader(store_of(config, stage.data))
        records[stage.name] = {"identities": sorted(set(reader.identities("train").values()))}
    return records


def heldout_psnr(
    model: AvatarModel, config: PipelineConfig, data: str, split: str = "test", *, allow_seen: bool = False
) -> dict[str, float]:
    """Mean PSNR (dB) of driven renders on ``split`` of the ``data`` store, ``lca eval``'s protocol: every
    non-reference view of each person. Keys ``psnr`` (whole image) and ``face_psnr`` (face box crops).

    ``model`` is taken to be trained on ``config``'s schedule (as :func:`train_small` does): evaluating people
    of its training splits raises :class:`~lca.errors.SeenInTrainingError` unless ``allow_seen`` (e.g. to
    show how the model does on the people it saw, as the drivers notebook does, labelled so)."""
    from lca.evaluate import ModelPredictor, evaluate_store

    result = evaluate_store(
        config,
        store_of(config, data),
        split,
        ModelPredictor(model),
        seen_records=training_records(config),
        allow_seen=allow_seen,
    )
    numbers = result["categories"]["identity"]
    return {"psnr": float(numbers["full"]["psnr"]), "face_psnr": float(numbers["face"]["psnr"] or np.nan)}


@dataclass
class HeldOutViews:
    """A few evaluation targets of one held-out person: ``batch`` (its references and the targets),
    ``target [M, 3, H, W]`` (ground truth over black, as the metrics see it) and face ``boxes [M, 4]``."""

    batch: Batch
    target: Tensor
    boxes: Tensor


def heldout_views(
    config: PipelineConfig, data: str, count: int = 4, split: str = "test", *, with_face: bool = False
) -> HeldOutViews:
    """``count`` targets spread over the evaluation plan of the first person of ``split`` (``lca eval``'s
    views, so the images are the ones the held-out numbers average); ``with_face`` keeps only targets whose
    face box is not empty (the face is visible)."""
    from lca.avatars.create import store_dataset
    from lca.data.store_dataset import ViewChoice, largest_face
    from lca.evaluate import face_boxes, plan_group

    store = store_of(config, data)
    dataset = store_dataset(config, store)
    group = dataset.reader.group_names(split)[0]
    plan, meta = plan_group(dataset, group), dataset.meta(group)
    size = dataset.config.image_size
    candidates = list(range(len(plan.targets)))
    if with_face:
        boxes = face_boxes(meta, plan.targets, size)
        candidates = [i for i in candidates if bool((boxes[i, 2:] > boxes[i, :2]).all())] or candidates
    spread = np.unique(np.linspace(0, len(candidates) - 1, count).round().astype(int))
    chosen = [candidates[i] for i in spread]
    targets = [plan.targets[i] for i in chosen]
    faces = [plan.faces[i] for i in chosen]
    dataset.plan = [(group, ViewChoice(plan.references, targets, largest_face(meta, plan.references), faces))]
    batch = collate([dataset[0]])
    target = (batch.targets.images[0] * batch.targets.masks[0]).clamp(0, 1)
    return HeldOutViews(batch, target, face_boxes(meta, targets, size))


def render_views(model: AvatarModel, views: HeldOutViews) -> Tensor:
    """The model's driven renders ``[M, 3, H, W]`` of ``views`` (avatar from the references, then drive)."""
    from lca.evaluate import ModelPredictor

    return ModelPredictor(model)(views.batch)


def crop_boxes(images: Tensor, boxes: Tensor, size: int) -> Tensor:
    """``images [M, 3, H, W]`` cropped to ``boxes [M, 4]`` (x0, y0, x1, y1 pixels) and resized to ``size``;
    an empty box (no visible face) gives a black square."""
    crops = []
    for image, box in zip(images, boxes, strict=True):
        window = pixel_box(box, image.shape[-2], image.shape[-1])
        if window is None:
            crops.append(image.new_zeros(3, size, size))
            continue
        x0, y0, x1, y1 = window
        piece = image[None, :, y0:y1, x0:x1]
        crops.append(F.interpolate(piece, size=(size, size), mode="bilinear", antialias=True)[0])
    return torch.stack(crops)


# ------------------------------------------------------------------------------------------------ display
def markdown_table(rows: Mapping[str, Mapping[str, float]], significant: int = 4) -> str:
    """``{variant: {column: value}}`` as a markdown table with ``significant`` digits (columns in first-seen
    order, blanks where a variant has no value)."""
    columns = list(dict.fromkeys(key for values in rows.values() for key in values))
    lines = ["| variant | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, values in rows.items():
        cells = [f"{values[c]:.{significant}g}" if c in values else "" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_bars(ax: Any, values: Mapping[str, Mapping[str, float]], *, ylabel: str) -> None:
    """Grouped bars on ``ax``: a group per variant, a bar (and colour) per key, values written on top."""
    keys = list(dict.fromkeys(key for row in values.values() for key in row))
    width = 0.8 / len(keys)
    positions = np.arange(len(values))
    for index, key in enumerate(keys):
        heights = [row.get(key, np.nan) for row in values.values()]
        bars = ax.bar(positions + (index - (len(keys) - 1) / 2) * width, heights, width, label=key)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
    ax.set_xticks(positions, list(values), rotation=15, fontsize=8)
    ax.set_ylabel(ylabel)
    if len(keys) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_curves(
    ax: Any, curves: Mapping[str, Sequence[float]], *, smooth: int = 1, ylabel: str = "loss"
) -> None:
    """One line per variant on ``ax``; ``smooth > 1`` draws a trailing moving average over that many
    steps on top of the faint raw curve."""
    for index, (name, values) in enumerate(curves.items()):
        y = np.asarray(values, dtype=float)
        x = np.arange(1, len(y) + 1)
        colour = f"C{index}"
        if smooth > 1 and len(y) >= smooth:
            ax.plot(x, y, color=colour, alpha=0.25, linewidth=0.8)
            kernel = np.ones(smooth) / smooth
            ax.plot(x[smooth - 1 :], np.convolve(y, kernel, mode="valid"), color=colour, label=name)
        else:
            ax.plot(x, y, color=colour, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)


def image_grid(rows: Mapping[str, Tensor], *, scale: float = 1.4, title: str | None = None) -> Any:
    """A matplotlib figure with one row per entry (label on the left), each ``[M, 3, H, W]`` in [0, 1]
    drawn as M images side by side."""
    import matplotlib.pyplot as plt

    columns = max(images.shape[0] for images in rows.values())
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(scale * columns, scale * len(rows)), squeeze=False, layout="constrained"
    )
    for axes_row, (label, images) in zip(axes, rows.items(), strict=True):
        for column, ax in enumerate(axes_row):
            ax.set_xticks([])
            ax.set_yticks([])
            if column < images.shape[0]:
                ax.imshow(images[column].clamp(0, 1).permute(1, 2, 0).cpu().numpy())
            else:
                ax.axis("off")
        axes_row[0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
