"""``lca eval``: image metrics of driven renders on a store split (held-out identities, views, expressions).

Protocol (deterministic; ``docs/avatars.md`` has the rationale):

- **references** per group follow :mod:`lca.avatars.create`'s store rule at frame 0 (studio: K cameras spread
  over the rig; wild-video: frame 0 and K-1 frames spread over the clip; plus the face close-up). The
  avatar is created once per group; every target is rendered through ``drive``.
- **targets**: every (frame, camera) of the group that is not a reference view.
- categories (an image can be in several):
  ``identity``: all targets (the split's people were never trained on when the split is ``test``/``val``);
  ``views`` (studio only): targets seen by cameras that gave no reference;
  ``expressions``: targets of the frames whose expression differs most from the reference frames: the
  L2 distance of ``[expression, jaw_pose]`` to the nearest reference frame, top :data:`EXPRESSION_SHARE` of
  the non-reference frames (at least one).
- images: the render over black against the target composited over black with its mask (the person only,
  as the training loss sees it), at the pipeline's image size. ``face`` metrics crop both to the target's
  face box (the store's, mapped into the resized image) and resize the crop to :data:`FACE_CROP` pixels;
  targets without a visible face are left out of face metrics (NaN, ignored in the means).
- metrics: :func:`lca.metrics.image_metrics` (torchmetrics PSNR/SSIM, lpips' LPIPS-Alex). LPIPS is only
  computed with converted real weights (:func:`lca.lpips_weights.load_lpips`); otherwise it is absent and
  the outputs say why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lca.avatars.create import reference_cameras, reference_frames, store_dataset
from lca.avatars.views import FixedViewsDataset
from lca.contracts.sample import Batch, collate
from lca.contracts.template import TemplateParams
from lca.data.crop import padded_square
from lca.data.reader import GroupMeta
from lca.data.store_dataset import ViewChoice, largest_face
from lca.errors import LcaError
from lca.eval_protocol import PROTOCOLS, Protocol, ViewSelection
from lca.intervals import by_person, people_interval
from lca.metrics import image_metrics, psnr
from lca.model.avatar import driving_signals, reference_poses
from lca.train.seen import check_held_out

EXPRESSION_SHARE = 0.25
"""Share of a group's non-reference frames counted as held-out expressions."""
FACE_CROP = 64
"""Face crops are resized to this side before the metrics (LPIPS-Alex needs at least 31 pixels)."""
CATEGORIES = ("identity", "views", "expressions")
METRICS = ("psnr", "ssim", "lpips")

Predictor = Callable[[Batch], Tensor]
"""``batch`` (one group: its references and a chunk of targets) -> predicted images ``[M, 3, H, W]`` over
black, or ``[M, 4, H, W]`` with the opacity last (needed by protocols with another background)."""


@dataclass
class GroupPlan:
    """One group's reference views, targets and the categories of each target."""

    group: str
    references: list[tuple[int, int]]
    targets: list[tuple[int, int]]
    categories: list[list[str]]
    faces: list[tuple[int, int]] = field(default_factory=list)


def expression_frames(meta: GroupMeta, reference: list[int], share: float = EXPRESSION_SHARE) -> list[int]:
    """Non-reference frames whose ``[expression, jaw_pose]`` is farthest from every reference frame."""
    code = np.concatenate([meta.smplx["expression"], meta.smplx["jaw_pose"]], axis=1)
    others = [t for t in range(meta.num_frames) if t not in reference]
    if not others:
        return []
    distance = np.linalg.norm(code[others][:, None] - code[reference][None], axis=-1).min(axis=1)
    count = max(1, math.ceil(share * len(others)))
    order = np.argsort(-distance, kind="stable")[:count]
    return sorted(others[i] for i in order)


def plan_group(dataset: FixedViewsDataset, group: str, selection: ViewSelection | None = None) -> GroupPlan:
    """The evaluation views of ``group`` (see the module doc), or those ``selection`` names."""
    meta = dataset.meta(group)
    selection = selection or ViewSelection()
    k = dataset.config.num_references
    frame = selection.reference_frame
    target_frames = selection.frames(meta)
    if meta.layout == "studio":
        if selection.reference_cameras is not None:
            cameras = selection.cameras(meta, selection.reference_cameras, "--reference-cameras")
        else:
            cameras = reference_cameras(meta.num_cameras, k)
        references = [(frame, c) for c in cameras]
    else:
        cameras = [0]
        references = [(t, 0) for t in reference_frames(meta.num_frames, frame, k)]
    if selection.target_cameras is not None:
        target_cameras = selection.cameras(meta, selection.target_cameras, "--target-cameras")
    else:
        target_cameras = list(range(meta.num_cameras))
    reference_set = set(references)
    expressive = set(expression_frames(meta, sorted({t for t, _ in references})))
    targets, categories = [], []
    for t in target_frames:
        for c in target_cameras:
            if (t, c) in reference_set:
                continue
            labels = ["identity"]
            if meta.layout == "studio" and c not in cameras:
                labels.append("views")
            if t in expressive:
                labels.append("expressions")
            targets.append((t, c))
            categories.append(labels)
    if not targets:
        raise LcaError(f"Group '{group}': the chosen target cameras and frames are all reference views.")
    faces = [dataset.face_camera(meta, t) if meta.layout == "studio" else (t, c) for t, c in targets]
    return GroupPlan(group, references, targets, categories, faces)


def face_boxes(meta: GroupMeta, pairs: list[tuple[int, int]], size: int, margin: float = 0.0) -> Tensor:
    """``[M, 4]`` face boxes of ``pairs`` in the ``size x size`` resized target frame (the full frame's
    square widened by ``margin``; empty when no face)."""
    square = padded_square(meta.height, meta.width, margin)
    scale = size / float(square[2] - square[0])
    offset = np.array([square[0], square[1], square[0], square[1]])
    boxes = np.stack([(np.asarray(meta.box(t, c), np.float64) - offset) * scale for t, c in pairs])
    empty = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    boxes[empty] = 0.0
    return torch.from_numpy(boxes)


class ModelPredictor:
    """The default :data:`Predictor`: the model's avatar of the group (created once, cached) driven to the
    targets, rendered over black; with ``alpha``, its opacity as a fourth channel (for protocols that
    composite over another background)."""

    def __init__(self, model: Any, *, alpha: bool = False) -> None:
        self.model = model
        self.alpha = alpha
        self._group: str | None = None
        self._avatar: Any = None

    @torch.no_grad()
    def __call__(self, batch: Batch) -> Tensor:
        device = next(self.model.parameters()).device
        batch = batch.to(device)
        if batch.group[0] != self._group:
            refs = batch.references
            self._avatar = self.model.create_avatar(
                refs.images, refs.valid, refs.params["betas"][:, 0], reference_poses(refs)
            )
            self._group = batch.group[0]
        targets = batch.targets
        params = TemplateParams(**{f.name: targets.params[f.name] for f in fields(TemplateParams)})
        signals = driving_signals(targets.params, batch.driving)
        height, width = targets.images.shape[-2:]
        out = self.model.drive(self._avatar, params, signals, targets.viewmats, targets.Ks, width, height)
        color = out.driven.color[0].clamp(0, 1)
        if self.alpha:
            color = torch.cat([color, out.driven.alpha[0].clamp(0, 1)], dim=1)
        return color.cpu()


def lpips_or_note(net: str = "alex") -> tuple[Any | None, str]:
    """The real LPIPS model, or None and the reason it is not computed (never a random backbone)."""
    from lca.lpips_weights import LpipsWeightsError, load_lpips

    try:
        return load_lpips(net), f"LPIPS-{net} with converted weights"
    except LpipsWeightsError as error:
        return None, f"LPIPS not computed: {error}"


def _value(x: Tensor) -> float | None:
    """A metric value for JSON: None where the metric is undefined (NaN: no face visible)."""
    value = float(x)
    return None if math.isnan(value) else value


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def evaluate_store(
    config: Any,
    store: str,
    split: str,
    predictor: Predictor,
    *,
    lpips_model: Any | None = None,
    lpips_note: str = "",
    chunk: int = 4,
    groups: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    seen_records: Mapping[str, Mapping[str, Any]] | None = None,
    allow_seen: bool = False,
    protocol: Protocol = PROTOCOLS["lca"],
    selection: ViewSelection | None = None,
) -> dict[str, Any]:
    """Evaluate ``predictor`` on the groups of ``split`` of ``store``; returns what ``metrics.json`` holds.
    ``store`` may be ``synthetic://LAYOUT`` (resolved by :func:`store_dataset`; the result keeps the URL).

    ``seen_records`` is the training run's record of whom it saw (:func:`lca.train.seen.load_records`):
    evaluating any of those people raises :class:`~lca.errors.SeenInTrainingError` before anything is
    computed, unless ``allow_seen``; then the result lists them under ``seen_in_training`` and marks
    their images. Means come with a 95% interval from a bootstrap over people (:mod:`lca.intervals`).
    ``protocol`` (:mod:`lca.eval_protocol`) says how images become numbers; ``selection`` which views of
    each group are references and targets."""
    dataset = store_dataset(config, store)
    size = protocol.resolution or dataset.config.image_size
    target_dataset = dataset
    if size != dataset.config.image_size or protocol.margin:
        target_dataset = store_dataset(config, store, image_size=size, target_margin=protocol.margin)
    names = groups if groups is not None else dataset.reader.group_names(split)
    if not names:
        raise LcaError(f"{store} has no group in split '{split}' (groups: {dataset.groups[:12]}).")
    identities = {name: dataset.meta(name).identity for name in names}
    seen = check_held_out(
        seen_records, identities.values(), where=f"{store} split '{split}'", allow_seen=allow_seen
    )
    records: list[dict[str, Any]] = []
    for name in names:
        plan = plan_group(dataset, name, selection)
        meta = dataset.meta(name)
        for start in range(0, len(plan.targets), chunk):
            window = slice(start, start + chunk)
            targets = plan.targets[window]
            choice = ViewChoice(
                plan.references, targets, largest_face(meta, plan.references), plan.faces[window]
            )
            batch = _batch(dataset, target_dataset, name, choice)
            mask = batch.targets.masks[0]
            target = _over(batch.targets.images[0] * mask, mask, protocol.background)
            pred = _prediction(predictor(batch), protocol.background)
            whole = image_metrics(pred, target, lpips_model=lpips_model)
            if protocol.psnr_region == "person":
                whole["psnr"] = psnr(pred, target, mask=(mask > 0.5).float())
            face = image_metrics(
                pred,
                target,
                lpips_model=lpips_model,
                boxes=face_boxes(meta, targets, size, protocol.margin),
                crop_size=FACE_CROP,
            )
            for i, (t, c) in enumerate(targets):
                record = {
                    "group": name,
                    "identity": identities[name],
                    "seen_in_training": identities[name] in seen,
                    "frame": t,
                    "camera": c,
                    "categories": plan.categories[start + i],
                }
                record.update({k: _value(v[i]) for k, v in whole.items()})
                record.update({f"face_{k}": _value(v[i]) for k, v in face.items()})
                records.append(record)
            if progress is not None:
                progress(len(targets))
    summary: dict[str, Any] = {}
    for category in CATEGORIES:
        chosen = [r for r in records if category in r["categories"]]
        if not chosen:
            continue
        metrics = [m for m in METRICS if m in chosen[0]]
        summary[category] = {
            "count": len(chosen),
            "people": len({r["identity"] for r in chosen}),
            "full": {m: _mean([r[m] for r in chosen]) for m in metrics},
            "face": {m: _mean([r[f"face_{m}"] for r in chosen]) for m in metrics},
            "interval": {
                "full": {m: people_interval(by_person(chosen, m)) for m in metrics},
                "face": {m: people_interval(by_person(chosen, f"face_{m}")) for m in metrics},
            },
            "face_count": sum(r["face_psnr"] is not None for r in chosen),
        }
    return {
        "store": store,
        "split": split,
        "groups": names,
        "identities": identities,
        "seen_in_training": seen,
        "image_size": size,
        "protocol": protocol.describe(),
        "selection": None if selection is None else asdict(selection),
        "face_crop": FACE_CROP,
        "lpips": {"computed": lpips_model is not None, "note": lpips_note},
        "categories": summary,
        "images": records,
    }


def _batch(dataset: FixedViewsDataset, targets: FixedViewsDataset, group: str, choice: ViewChoice) -> Batch:
    """One group's references from ``dataset`` (the pipeline's size) with the targets of ``choice`` from
    ``targets`` (the protocol's frame and size; the same dataset under the default protocol)."""
    dataset.plan = [(group, choice)]
    sample = dataset[0]
    if targets is not dataset:
        targets.plan = [(group, choice)]
        sample = replace(sample, targets=targets[0].targets)
    return collate([sample])


def _over(images: Tensor, masks: Tensor, background: float) -> Tensor:
    """Images premultiplied by ``masks`` (over black) composited over the grey level ``background``."""
    return (images + (1.0 - masks) * background).clamp(0, 1)


def _prediction(pred: Tensor, background: float) -> Tensor:
    """A predictor's images over ``background``: RGB over black as they are, RGBA composited."""
    if pred.shape[1] == 4:
        return _over(pred[:, :3], pred[:, 3:], background)
    if background:
        raise LcaError(
            "This protocol composites over a non-black background: the predictor must return opacity."
        )
    return pred


def markdown_table(result: dict[str, Any]) -> str:
    """The summary of :func:`evaluate_store` as a markdown table: each mean with its 95% interval over
    people (``24.31 [23.80, 24.77]``), the LPIPS note, and a warning naming any people seen in training."""

    def cell(value: float | None, interval: list[float] | tuple[float, float] | None, digits: int) -> str:
        if value is None:
            return "n/a"
        if interval is None:
            return f"{value:.{digits}f}"
        return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"

    seen = result.get("seen_in_training") or {}
    people = len(set(result.get("identities", {}).values())) or len(result["groups"])
    protocol = result.get("protocol", PROTOCOLS["lca"].describe())
    region = "the target mask's pixels" if protocol["psnr_region"] == "person" else "the whole image"
    lines = [
        f"Evaluation of `{result.get('checkpoint', '')}` on `{result['store']}` split `{result['split']}` "
        f"({len(result['groups'])} groups, {people} people, {result['image_size']} px). Means over images "
        "with 95% intervals from a bootstrap over people.",
        "",
        f"Protocol `{protocol['name']}`: over {'white' if protocol['background'] else 'black'}, the frame "
        f"padded by {protocol['margin']:.0%}, PSNR over {region}, SSIM and LPIPS-{protocol['lpips_net']} "
        "over the whole image." + "".join(f" Deviation: {d}." for d in protocol.get("deviations", ())),
        "",
    ]
    if seen:
        lines += [
            f"**Seen in training: {len(seen)} of these {people} people were in the run's training data "
            f"({', '.join(sorted(seen)[:8])}{' ...' if len(seen) > 8 else ''}); these are not held-out "
            "numbers.**",
            "",
        ]
    held = "held out" if not seen else "seen in training"
    lines += [
        f"| {held} | region | images | PSNR (dB) | SSIM | LPIPS |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for category, entry in result["categories"].items():
        intervals = entry.get("interval", {})
        for region in ("full", "face"):
            values, spans = entry[region], intervals.get(region, {})
            count = entry["count"] if region == "full" else entry["face_count"]
            lines.append(
                f"| {category} | {region} | {count} | {cell(values.get('psnr'), spans.get('psnr'), 2)} | "
                f"{cell(values.get('ssim'), spans.get('ssim'), 4)} | "
                f"{cell(values.get('lpips'), spans.get('lpips'), 4)} |"
            )
    lines += ["", result["lpips"]["note"].splitlines()[0] if result["lpips"]["note"] else ""]
    return "\n".join(lines).rstrip() + "\n"


def write_results(out: str | Path, result: dict[str, Any]) -> tuple[Path, Path]:
    """``metrics.json`` and ``metrics.md`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "metrics.json", out / "metrics.md"
    json_path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    md_path.write_text(markdown_table(result), encoding="utf-8")
    return json_path, md_path
