"""Writing synthetic stores: :func:`synthesize` for one layout, :func:`ensure_synthetic_data` for the cached
default pair that ``lca train`` and the tests use.

Determinism: every random draw comes from ``numpy.random.default_rng([seed, layout, identity, purpose])``,
so a person, their motion and their camera depend only on the seed and their index (not on how many
people are generated). Splits are by identity and by index alone (:func:`lca.splits.synthetic_split`: every
third person is ``test``), so a person is in the same split in a store of any size made with the same seed.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lca.data.synth.config import GENERATOR_VERSION, Layout, SynthConfig
from lca.data.synth.identity import make_identity
from lca.data.synth.motion import Motion, arkit_blendshapes, make_motion
from lca.data.synth.regions import BodyRegions, body_regions
from lca.data.synth.render import Rendered, render_clip
from lca.data.synth.scene import clutter, degrade, pan, studio_cameras, wild_cameras
from lca.data.writer import StoreWriter
from lca.paths import cache_dir as default_cache_dir
from lca.splits import synthetic_split
from lca.threads import torch_threads

_LAYOUT_CODE = {"wild-video": 1, "studio": 2}
_IDENTITY, _MOTION, _CAMERA, _LOOK = 0, 1, 2, 3
SOURCE = f"lca synthetic people v{GENERATOR_VERSION}"


def build_toolkit(config: SynthConfig, cache_dir: str | None = None) -> tuple[object, BodyRegions, object]:
    """The config's template (with ``cache_dir`` for its model file), its body regions and its rasterizer,
    built through the registry once per process. The names come from the config, so core names none."""
    return _toolkit(
        config.template, config.rasterizer, config.num_anchors, config.num_head_anchors, cache_dir
    )


@functools.lru_cache(maxsize=2)
def _toolkit(
    template_name: str, rasterizer_name: str, num_anchors: int, num_head_anchors: int, cache_dir: str | None
) -> tuple[object, BodyRegions, object]:
    from lca.registry import default_registry

    registry = default_registry()
    template = registry.build(
        "template",
        template_name,
        {"num_anchors": num_anchors, "num_head_anchors": num_head_anchors, "cache_dir": cache_dir},
    )
    return template, body_regions(template), registry.build("rasterizer", rasterizer_name, {})


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[..., 3, H, W]`` float in [0, 1] -> ``[..., H, W, 3]`` uint8."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).movedim(-3, -1).numpy()


def synthesize(
    layout: Layout,
    out: Path | str,
    *,
    identities: int | None = None,
    first_identity: int = 0,
    frames: int | None = None,
    cameras: int | None = None,
    resolution: int | None = None,
    seed: int = 0,
    codec: str = "zstd",
    progress: bool = True,
    overwrite: bool = False,
    cache_dir: Path | str | None = None,
) -> Path:
    """Render synthetic people into a new ``layout`` store at ``out`` and return its path.

    ``None`` sizes take the layout defaults (:data:`~lca.data.synth.config.LAYOUT_DEFAULTS`);
    ``cache_dir`` is where the template's model file lives (default ``$LCA_CACHE_DIR``).
    """
    config = SynthConfig(
        layout=layout, identities=identities, first_identity=first_identity, frames=frames, cameras=cameras,
        resolution=resolution, seed=seed, codec=codec,
    ).resolved()  # fmt: skip
    return synthesize_config(config, out, progress=progress, overwrite=overwrite, cache_dir=cache_dir)


def synthesize_config(
    config: SynthConfig,
    out: Path | str,
    *,
    progress: bool = True,
    overwrite: bool = False,
    cache_dir: Path | str | None = None,
) -> Path:
    """:func:`synthesize` from a :class:`SynthConfig`."""
    config = config.resolved()
    out = Path(out)
    template, regions, rasterizer = build_toolkit(config, None if cache_dir is None else str(cache_dir))
    count = int(config.identities or 0)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        torch_threads(1),  # many small rasterization ops: one thread is faster on shared cores
        StoreWriter(str(out), config.layout, codec=config.codec, overwrite=overwrite) as writer,
        Progress(*columns, disable=not progress, transient=False) as bar,
    ):
        task = bar.add_task(f"synthesizing {config.layout}", total=count)
        for index in range(config.first_identity, config.first_identity + count):
            _write_person(writer, config, index, template, regions, rasterizer)
            bar.advance(task)
    return out


def _rng(config: SynthConfig, index: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, _LAYOUT_CODE[config.layout], index, purpose])


def _write_person(
    writer: StoreWriter,
    config: SynthConfig,
    index: int,
    template,
    regions: BodyRegions,
    rasterizer,
) -> None:
    studio = config.layout == "studio"
    frames, size = int(config.frames or 0), int(config.resolution or 0)
    prefix = "studio" if studio else "wild"
    identity = make_identity(
        template,
        regions,
        [config.seed, _LAYOUT_CODE[config.layout], index, _IDENTITY],
        f"{prefix}-s{config.seed}-{index:04d}",  # a person is (seed, layout, index): unique across stores
    )
    motion_rng = _rng(config, index, _MOTION)
    motion = make_motion(
        motion_rng, frames, config.fps, identity.betas.numpy(), template.num_expression,
        yaw=float(motion_rng.uniform(-0.5, 0.5)), expressive=1.0 if studio else 0.6,
    )  # fmt: skip
    look = _rng(config, index, _LOOK)
    if studio:
        cams, Ks = studio_cameras(int(config.cameras or 0), size)
        viewmats, Ks = cams.expand(frames, -1, -1, -1), Ks.expand(frames, -1, -1, -1)
    else:
        cams, Ks, azimuth = wild_cameras(_rng(config, index, _CAMERA), frames, config.fps, size)
        viewmats, Ks = cams[:, None], Ks[:, None]
    rendered = render_clip(template, regions, rasterizer, identity, motion, viewmats, Ks, size)
    common = {
        "identity": identity.name, "split": synthetic_split(index), "num_frames": frames, "height": size,
        "width": size, "fps": config.fps, "source": SOURCE, "betas": identity.betas.numpy(),
        "with_gaze": True, "with_blendshapes": True, "num_expression": template.num_expression,
    }  # fmt: skip
    if studio:
        group = writer.add_capture(f"capture-{index:04d}", viewmats=cams.numpy(), Ks=Ks[0].numpy(), **common)
        images = _studio_images(rendered, look)
    else:
        group = writer.add_clip(f"clip-{index:04d}", **common)
        images = _wild_images(rendered, look, azimuth, frames)
    blendshapes = arkit_blendshapes(motion)
    masks = rendered.masks().numpy()
    boxes = rendered.face_box.numpy()
    gaze = rendered.gaze.numpy()
    for t in range(frames):
        frame = _frame_params(motion, t)
        if studio:
            group.append(
                image=images[t], mask=masks[t], smplx=frame, face_box=boxes[t], gaze=gaze[t],
                blendshapes=blendshapes[t],
            )  # fmt: skip
        else:
            group.append(
                image=images[t, 0], mask=masks[t, 0], smplx=frame, face_box=boxes[t, 0], gaze=gaze[t],
                blendshapes=blendshapes[t], viewmat=viewmats[t, 0].numpy(), K=Ks[t, 0].numpy(),
            )  # fmt: skip


def _frame_params(motion: Motion, t: int) -> dict[str, np.ndarray]:
    return {k: v[t] for k, v in motion.params.items() if k != "betas"}


def _studio_images(rendered: Rendered, rng: np.random.Generator) -> np.ndarray:
    """Person over a plain, slightly tinted grey backdrop: ``[T, C, H, W, 3]`` uint8."""
    backdrop = torch.from_numpy(rng.uniform(0.45, 0.75) * (1 + rng.uniform(-0.05, 0.05, 3))).float()
    return _to_uint8(rendered.color + (1 - rendered.alpha) * backdrop[:, None, None])


def _wild_images(
    rendered: Rendered, rng: np.random.Generator, azimuth: np.ndarray, frames: int
) -> np.ndarray:
    """Person over a panning cluttered scene, with the clip's blur, noise, colour cast and exposure drift."""
    size = rendered.color.shape[-1]
    scene = clutter(rng, size)
    blur, noise = rng.uniform(0.0, 1.0), rng.uniform(0.004, 0.03)
    cast = torch.from_numpy(1 + rng.uniform(-0.06, 0.06, 3)).float()
    times = np.arange(frames)
    gain = rng.uniform(0.8, 1.15) * (1 + 0.12 * np.sin(rng.uniform(0.2, 0.8) * times + rng.uniform(0, 6.3)))
    drift = rng.uniform(-0.4, 0.4)
    out = []
    for t in range(frames):
        background = pan(scene, size, (2.0 * (azimuth[t] - azimuth[0]) + drift, 0.2 * np.sin(0.7 * t)))
        image = rendered.color[t, 0] + (1 - rendered.alpha[t, 0]) * background
        out.append(degrade(image, rng, blur, noise, float(gain[t]), cast))
    return _to_uint8(torch.stack(out))[:, None]


def synthetic_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """``<cache_dir>/synthetic`` with ``cache_dir`` defaulting to ``$LCA_CACHE_DIR`` or ``~/.cache/lca``."""
    return (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / "synthetic"


def ensure_synthetic_data(
    cache_dir: Path | str | None = None,
    *,
    progress: bool = True,
    layouts: Sequence[str] = ("wild-video", "studio"),
) -> dict[str, Path]:
    """Paths of the default stores of ``layouts`` (both by default), generating any that is missing.

    A store is rendered into a temporary folder next to its final place and renamed when complete, so
    an interrupted run leaves no half store under the final name (and concurrent runs keep one copy).
    """
    folder = synthetic_cache_dir(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    template_cache = str(folder.parent)
    paths: dict[str, Path] = {}
    for layout in layouts:
        final = folder / f"{layout}-v{GENERATOR_VERSION}.zarr"
        if not final.is_dir():
            scratch = Path(tempfile.mkdtemp(prefix=f".{layout}-", dir=folder))
            try:
                synthesize(layout, scratch / "store.zarr", progress=progress, cache_dir=template_cache)  # type: ignore[arg-type]
                try:
                    os.rename(scratch / "store.zarr", final)
                except OSError:
                    if not final.is_dir():  # not a concurrent run that finished first
                        raise
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        paths[layout] = final
    return paths
