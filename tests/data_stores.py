"""Small random stores for the data tests, written through the toolkit's writer."""

from __future__ import annotations

import numpy as np

from lca.data.schema import SMPLX_POSE_DIMS
from lca.data.writer import StoreWriter

SIZE = 32


def random_params(rng: np.random.Generator, num_expression: int = 10) -> dict[str, np.ndarray]:
    params = {key: rng.normal(size=width).astype(np.float32) for key, width in SMPLX_POSE_DIMS.items()}
    params["expression"] = rng.normal(size=num_expression).astype(np.float32)
    return params


def random_camera(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    viewmat = np.eye(4, dtype=np.float32)
    viewmat[:3, 3] = rng.normal(size=3)
    K = np.array([[40.0, 0, SIZE / 2], [0, 40.0, SIZE / 2], [0, 0, 1]], dtype=np.float32)
    return viewmat, K


def make_store(
    url: str,
    layout: str,
    codec: str = "zstd",
    identities: tuple[str, ...] = ("id-a", "id-b", "id-c"),
    splits: tuple[str, ...] = ("train", "val", "test"),
    frames: int = 4,
    cameras: int = 3,
    seed: int = 0,
    camera_ids: list[str] | None = None,
    storage_options: dict | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Write one group per identity with random content; return what was written, per group."""
    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, np.ndarray]] = {}
    with StoreWriter(url, layout, codec=codec, storage_options=storage_options) as store:
        for i, (identity, split) in enumerate(zip(identities, splits, strict=True)):
            name = f"g{i:03d}"
            lead = (cameras,) if layout == "studio" else ()
            images = rng.integers(0, 256, size=(frames, *lead, SIZE, SIZE, 3), dtype=np.uint8)
            masks = rng.integers(0, 256, size=(frames, *lead, SIZE, SIZE), dtype=np.uint8)
            boxes = np.tile(np.array([8, 6, 20, 22], dtype=np.float32), (frames, *lead, 1))
            if layout == "studio":
                cams = [random_camera(rng) for _ in range(cameras)]
                group = store.add_capture(
                    name,
                    identity=identity,
                    split=split,
                    num_frames=frames,
                    height=SIZE,
                    width=SIZE,
                    viewmats=np.stack([v for v, _ in cams]),
                    Ks=np.stack([k for _, k in cams]),
                    betas=rng.normal(size=10),
                    with_gaze=True,
                    with_blendshapes=True,
                    camera_ids=camera_ids,
                )
            else:
                group = store.add_clip(
                    name,
                    identity=identity,
                    split=split,
                    num_frames=frames,
                    height=SIZE,
                    width=SIZE,
                    num_betas=10,
                    with_gaze=True,
                )
            params, gaze = [], rng.normal(size=(frames, 2, 3)).astype(np.float32)
            for t in range(frames):
                p = random_params(rng)
                extra = {}
                if layout == "studio":
                    extra["blendshapes"] = rng.random(52)
                else:
                    p["betas"] = rng.normal(size=10).astype(np.float32)
                    extra["viewmat"], extra["K"] = random_camera(rng)
                params.append(p)
                group.append(
                    image=images[t], mask=masks[t], smplx=p, face_box=boxes[t], gaze=gaze[t], **extra
                )
            written[name] = {
                "frames": images,
                "masks": masks,
                "gaze": gaze,
                "body_pose": np.stack([p["body_pose"] for p in params]),
            }
    return written
