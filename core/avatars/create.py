"""Making an avatar: a trained checkpoint + reference images + shape -> :class:`AvatarFile`.

References come from image files (any number; a face close-up is simply one more image) with the betas of
a parameters ``.npz``, or with a body tracker's output per image (its camera and pose, for tokenizers that
read the references where the anchors project), or from a store group. The store rule is deterministic
(so evaluation knows what is held out): ``studio`` uses frame ``T`` seen by :func:`reference_cameras` (K
cameras spread evenly over the rig), ``wild-video`` uses frame ``T`` and K-1 other frames spread evenly
over the clip; both add the face close-up of the reference with the largest face box, as the datasets
do. K is the pipeline's ``num_references`` of the data slot of that layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lca.avatars.file import AvatarFile, from_model
from lca.config import PipelineConfig, SlotConfig, resolve_pipeline
from lca.contracts.tokenizer import ReferencePoses
from lca.errors import LcaError
from lca.paths import not_a_file
from lca.train.checkpoint import CONFIG_FILE, Checkpoint, CheckpointError, load_weights, resolve


def load_model(checkpoint: str | Path, *, ema: bool = False, device: str = "cpu") -> tuple[Any, Checkpoint]:
    """The :class:`~lca.model.avatar.AvatarModel` of a run folder or checkpoint folder, in eval mode.

    A run folder resolves to its newest valid checkpoint (the last stage's ``final`` after training)."""
    from lca.model.avatar import AvatarModel

    path = Path(checkpoint)
    if not path.exists():
        raise CheckpointError(
            f"Checkpoint {path} does not exist: pass a run folder (runs/<pipeline>/<time>) or a checkpoint "
            "folder (.../checkpoints/<stage>/final) written by `lca train`."
        )
    found = resolve(path)
    config = resolve_pipeline(found.path / CONFIG_FILE)
    model = AvatarModel(config)
    load_weights(found, model, ema=ema)
    return model.to(device).eval(), found


def reference_cameras(num_cameras: int, k: int) -> list[int]:
    """K camera indices spread evenly over a rig of ``num_cameras`` (all of them when K >= the rig)."""
    if k >= num_cameras:
        return list(range(num_cameras))
    return sorted({round(x) for x in np.linspace(0, num_cameras - 1, k, endpoint=False)})


def reference_frames(num_frames: int, frame: int, k: int) -> list[int]:
    """``frame`` and K-1 others spread evenly over a clip (wild-video references)."""
    others = [int(x) % num_frames for x in np.linspace(frame, frame + num_frames, k, endpoint=False)]
    return list(dict.fromkeys(others))


def data_slot(config: PipelineConfig, layout: str) -> SlotConfig:
    """The pipeline's data slot reading ``layout`` (same type name), else the last stage's slot: its image
    size, face crop size and margin are what the model was trained with."""
    for slot in config.data.values():
        if slot.type == layout:
            return slot
    if not config.data:
        raise LcaError(f"Pipeline '{config.name}' has no data slot: cannot tell the image size it expects.")
    stage = config.schedule[-1].data if config.schedule else next(iter(config.data))
    return config.data[stage]


def store_dataset(config: PipelineConfig, store: str, **updates: Any) -> Any:
    """A :class:`~lca.avatars.views.FixedViewsDataset` over ``store`` (any location, ``synthetic://``
    included) with the pipeline's data settings."""
    from lca.avatars.views import FixedViewsDataset
    from lca.data.locations import resolve_store_url
    from lca.data.reader import StoreReader

    reader = StoreReader(resolve_store_url(store))
    slot = data_slot(config, reader.layout)
    base = {k: v for k, v in slot.config.model_dump().items() if k in FixedViewsDataset.Config.model_fields}
    params = {**base, "path": reader.url, **updates}
    return FixedViewsDataset(FixedViewsDataset.Config(**params), reader=reader)


def store_references(config: PipelineConfig, store: str, group: str, frame: int = 0) -> tuple[Any, str]:
    """Reference views (:class:`lca.contracts.sample.Views`, face close-up included) of ``group``."""
    dataset = store_dataset(config, store)
    meta = dataset.meta(group)
    if not 0 <= frame < meta.num_frames:
        raise LcaError(
            f"--frame {frame} is out of range: group '{group}' of {store} has {meta.num_frames} frames."
        )
    k = dataset.config.num_references
    if meta.layout == "studio":
        pairs = [(frame, c) for c in reference_cameras(meta.num_cameras, k)]
    else:
        pairs = [(t, 0) for t in reference_frames(meta.num_frames, frame, k)]
    views = dataset.references(meta, pairs)
    return views, f"store {store} group {group} views {pairs} identity {meta.identity}"


def load_images(paths: Sequence[str | Path], size: int, background: float | None = None) -> torch.Tensor:
    """Image files -> ``[V, 3, size, size]`` in [0, 1], each fitted into a centred square (zero padded) like
    the datasets' full frames. With ``background`` (the pipeline's ``reference_background``) an image's alpha
    channel, if any, is its mask: the person is composited onto that grey level, as the model saw its
    reference views in training (give RGBA cut-outs, e.g. from a person segmenter). Without an alpha
    channel the image is used as it is."""

    return torch.stack([_fit(*_read_image(path), size, background)[0] for path in paths])


def load_tracked_references(
    paths: Sequence[str | Path],
    smplx: Sequence[str | Path],
    *,
    size: int,
    background: float | None,
    masks: Sequence[str | Path] | None = None,
    smplx_model: str | Path | None = None,
) -> tuple[torch.Tensor, torch.Tensor, ReferencePoses]:
    """Photos with a body tracker's output for each (:mod:`lca.data.trackers`: LHM's ``.json`` or
    SMPLer-X's ``.npz``, whose ``meta/`` JSON is found beside its ``smplx/`` folder) -> the reference
    images ``[V, 3, size, size]``, the person's betas (the views' mean) and where each view was taken
    from, the tracker's camera (identity world-to-camera, ``K`` taken through the same square crop as the
    image). A view's mask is its ``masks`` file (the person where white) or its alpha channel; the person
    is composited onto ``background`` through it, as in training."""
    from lca.contracts.template import TemplateParams
    from lca.data.crop import crop_intrinsics
    from lca.data.smplx_model_file import load_smplx_model_arrays
    from lca.data.trackers import MEAN_HAND_KEYS, read_lhm_frame, read_smplerx_frame

    if len(smplx) != len(paths) or (masks and len(masks) != len(paths)):
        counts = f"{len(paths)} --images, {len(smplx)} --smplx" + (f", {len(masks)} --masks" if masks else "")
        raise LcaError(f"Give one --smplx file (and one --masks file, if any) per --images: got {counts}.")
    mean_hands = None
    images, view_masks, Ks, frames = [], [], [], []
    for index, (path, fit) in enumerate(zip(paths, smplx, strict=True)):
        image, alpha = _read_image(path)
        if masks:
            alpha = _read_mask(masks[index], image.shape[1:])
        if alpha is None:
            raise LcaError(
                f"Reference image {path} has no alpha channel and no --masks file: the model reads segmented "
                "references; give an RGBA cut-out or a mask (white = person), e.g. from SAM2 or RVM."
            )
        fit = Path(fit)
        try:
            if fit.suffix == ".npz":
                if mean_hands is None:
                    mean_hands = load_smplx_model_arrays(
                        None if smplx_model is None else str(smplx_model), MEAN_HAND_KEYS,
                        "SMPLer-X's hand poses are relative to SMPL-X's mean hand (CLI: --smplx-model)",
                    )  # fmt: skip
                params, K = read_smplerx_frame(fit, mean_hands)
            elif fit.suffix == ".json":
                params, K = read_lhm_frame(fit, image.shape[2], image.shape[1])
            else:
                raise ValueError(f"{fit}: expected LHM's tracker .json or SMPLer-X's .npz")
        except (FileNotFoundError, ValueError) as error:
            raise LcaError(str(error)) from error
        image, mask, box = _fit(image, alpha, size, background)
        images.append(image)
        view_masks.append(mask)
        Ks.append(crop_intrinsics(torch.from_numpy(K).float(), box, size))
        frames.append(params)
    stacked = {k: torch.from_numpy(np.stack([f[k] for f in frames])) for k in frames[0]}
    poses = ReferencePoses(
        viewmats=torch.eye(4).expand(len(paths), 4, 4).clone(),
        Ks=torch.stack(Ks),
        params=TemplateParams(**{f.name: stacked[f.name] for f in fields(TemplateParams)}),
        masks=torch.stack(view_masks),
    )
    return torch.stack(images), stacked["betas"].mean(dim=0), poses


def _fit(
    image: torch.Tensor, alpha: torch.Tensor | None, size: int, background: float | None
) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray]:
    """An image ``[3, H, W]`` fitted into its centred square at ``size``, like the datasets' full frames;
    with ``alpha`` and ``background``, composited onto that grey level after resizing, as the datasets
    segment. Returns the image, the resized mask (None without alpha) and the square."""
    from lca.data.crop import crop_resize, full_square
    from lca.data.store_dataset import over_background

    box = full_square(*image.shape[1:])
    image = crop_resize(image, box, size)
    mask = None if alpha is None else crop_resize(alpha[None], box, size)
    if background is not None and mask is not None:
        image = over_background(image, mask, background)
    return image, mask, box


def _read_image(path: str | Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """An image file -> RGB ``[3, H, W]`` in [0, 1] and its alpha ``[H, W]`` (None without one)."""
    import imageio.v3 as iio

    reason = not_a_file(path)
    if reason:
        raise LcaError(f"Reference image {path} {reason}.")
    try:
        array = np.asarray(iio.imread(path))
    except Exception as error:  # imageio raises many types for unreadable files
        raise LcaError(f"Cannot read reference image {path}: {error}") from error
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] < 3:
        raise LcaError(f"Reference image {path} has shape {array.shape}; expected H x W x 3 (RGB).")
    scale = 65535.0 if array.dtype == np.uint16 else 255.0
    image = torch.from_numpy(array[..., :3].astype(np.float32) / scale).permute(2, 0, 1)
    alpha = torch.from_numpy(array[..., 3].astype(np.float32) / scale) if array.shape[-1] == 4 else None
    return image, alpha


def _read_mask(path: str | Path, shape: tuple[int, ...]) -> torch.Tensor:
    """A mask image (white = person) as ``[H, W]`` in [0, 1], refused unless it is ``shape``."""
    image, _ = _read_image(path)
    mask = image.mean(dim=0)
    if tuple(mask.shape) != tuple(shape):
        raise LcaError(
            f"Mask {path} is {mask.shape[1]}x{mask.shape[0]} pixels, its image {shape[1]}x{shape[0]}."
        )
    return mask


def load_betas(path: str | Path, num_betas: int) -> torch.Tensor:
    """``betas [S]`` from an ``.npz`` holding ``betas`` as ``[S]`` or ``[T, S]`` (first row)."""
    path = Path(path)
    reason = not_a_file(path)
    if reason:
        raise LcaError(f"Template parameters file {path} {reason}.")
    with np.load(path) as data:
        if "betas" not in data:
            raise LcaError(f"{path} has no 'betas' array (it has {sorted(data.files)}).")
        betas = np.asarray(data["betas"], dtype=np.float32)
    betas = betas.reshape(-1, betas.shape[-1])[0]
    if betas.shape[0] != num_betas:
        raise LcaError(f"{path}: betas have {betas.shape[0]} values; the template takes {num_betas}.")
    return torch.from_numpy(betas)


@torch.no_grad()
def create_avatar_file(
    model: Any,
    images: torch.Tensor,
    betas: torch.Tensor,
    *,
    view_mask: torch.Tensor | None = None,
    poses: ReferencePoses | None = None,
    source_checkpoint: str = "",
    source: str = "",
) -> AvatarFile:
    """Run the encoder, tokenizer and backbone once: ``images [V, 3, H, W]``, ``betas [S]`` and, when known,
    where each view was taken from (``poses`` with batch dims ``[V]``, e.g. :func:`reference_poses` of
    :func:`store_references`' views) -> :class:`AvatarFile`."""
    device = next(model.parameters()).device
    mask = torch.ones(1, images.shape[0], dtype=torch.bool) if view_mask is None else view_mask[None]
    batched = None if poses is None else poses.batched().to(device)
    avatar = model.create_avatar(images[None].to(device), mask.to(device), betas[None].to(device), batched)
    return from_model(model, avatar, source_checkpoint=source_checkpoint, source=source)


def store_person_avatar(
    model: Any, store: str, group: str, frame: int = 0, checkpoint: str = ""
) -> AvatarFile:
    """The avatar of ``group`` of ``store`` from the store rule's references at ``frame``."""
    from lca.model.avatar import reference_poses

    views, source = store_references(model.config, store, group, frame)
    return create_avatar_file(
        model, views.images, views.params["betas"][0], view_mask=views.valid, poses=reference_poses(views),
        source_checkpoint=checkpoint, source=source,
    )  # fmt: skip
