"""Random-access read speed of image storage for training data, printed as one table.

Compares the Zarr reader (lossless zstd and JPEG-in-Zarr) with the same frames stored as PNG files and
as JPEG files decoded by Pillow: frames per second in one process and through a DataLoader with 2
workers, bytes on disk per frame, and each ratio against the PNG folder measured in the same run.
Frames are 512x512 natural images (scikit-image samples) with a slow pan and sensor noise, like video.

    python bench/data.py [--frames 64] [--quality 95]

``loader_throughput`` is the hook to compare a dataset's sample rate with a training step rate.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata
from torch.utils.data import DataLoader, Dataset

from lca.data.reader import StoreReader
from lca.data.schema import SMPLX_POSE_DIMS
from lca.data.writer import StoreWriter

SIZE = 512


def make_frames(count: int, seed: int = 0) -> np.ndarray:
    """``[count,512,512,3]`` uint8: a pan across natural images with sigma=1.5 noise."""
    rng = np.random.default_rng(seed)
    sources = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    frames = []
    for i in range(count):
        source = np.asarray(Image.fromarray(sources[i % len(sources)]).resize((640, 640)))
        x = (i * 3) % 128
        crop = source[x // 2 : x // 2 + SIZE, x : x + SIZE].astype(np.float32)
        frames.append(np.clip(crop + rng.normal(0, 1.5, crop.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


def write_zarr(path: Path, frames: np.ndarray, codec: str, quality: int) -> None:
    params = {k: np.zeros(d) for k, d in SMPLX_POSE_DIMS.items()} | {"expression": np.zeros(10)}
    with StoreWriter(str(path), "wild-video", codec=codec, quality=quality) as store:
        clip = store.add_clip(
            "clip",
            identity="a",
            split="train",
            num_frames=len(frames),
            height=SIZE,
            width=SIZE,
            betas=np.zeros(10),
        )
        for frame in frames:
            clip.append(
                image=frame,
                mask=np.full((SIZE, SIZE), 255, np.uint8),
                smplx=params,
                face_box=np.zeros(4),
                viewmat=np.eye(4),
                K=np.eye(3),
            )


def frame_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


class FrameSource(Dataset):
    """Reads frame ``i`` as a uint8 tensor ``[H,W,3]`` with a given function (picklable for workers)."""

    def __init__(self, read: Callable[[int], np.ndarray], count: int) -> None:
        self.read, self.count = read, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.array(self.read(index)))


class ZarrFrames:
    def __init__(self, url: str) -> None:
        self.reader = StoreReader(url)

    def __call__(self, index: int) -> np.ndarray:
        return self.reader.read_frame("clip", index)


class FileFrames:
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __call__(self, index: int) -> np.ndarray:
        with Image.open(self.paths[index]) as image:
            return np.asarray(image.convert("RGB"))


def loader_throughput(
    dataset: Dataset, num_workers: int, batch_size: int = 8, epochs: int = 2, **loader_kwargs
) -> float:
    """Samples per second of a shuffled DataLoader pass (best of ``epochs``; the first warms caches).

    The hook for comparing the data pipeline with training: compare with steps/s x batch size.
    """
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(0),
        **loader_kwargs,
    )
    best = 0.0
    for _ in range(epochs):
        start, count = time.perf_counter(), 0
        for batch in loader:
            count += len(batch) if not isinstance(batch, torch.Tensor) else batch.shape[0]
        best = max(best, count / (time.perf_counter() - start))
    return best


def random_access(read: Callable[[int], np.ndarray], count: int, passes: int = 2) -> float:
    """Frames per second of single random reads in this process (best of ``passes``)."""
    order = np.random.default_rng(1).permutation(count)
    best = 0.0
    for _ in range(passes):
        start = time.perf_counter()
        for index in order:
            read(int(index))
        best = max(best, count / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--quality", type=int, default=95)
    args = parser.parse_args()
    frames = make_frames(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sources: dict[str, tuple[Callable[[int], np.ndarray], int]] = {}
        png, jpg = root / "png", root / "jpg"
        png.mkdir()
        jpg.mkdir()
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(png / f"{i:06d}.png")
            Image.fromarray(frame).save(jpg / f"{i:06d}.jpg", quality=args.quality)
        pngs, jpgs = sorted(png.iterdir()), sorted(jpg.iterdir())
        sources["PNG files (Pillow)"] = (FileFrames(pngs), frame_bytes(pngs))
        sources[f"JPEG files q{args.quality} (Pillow)"] = (FileFrames(jpgs), frame_bytes(jpgs))
        for codec, label in (("zstd", "Zarr zstd (lossless)"), ("jpeg", f"Zarr JPEG q{args.quality}")):
            path = root / f"{codec}.zarr"
            write_zarr(path, frames, codec, args.quality)
            chunks = [
                p
                for p in (path / "clip" / "frames").rglob("*")
                if p.is_file() and "zarr" not in p.name and not p.name.startswith(".")
            ]
            sources[label] = (ZarrFrames(str(path)), frame_bytes(chunks))
        rows = []
        for label, (read, size) in sources.items():
            single = random_access(read, len(frames))
            workers = loader_throughput(
                FrameSource(read, len(frames)), num_workers=2, epochs=3, persistent_workers=True
            )
            rows.append((label, single, workers, size / len(frames)))
    base_single, base_workers = rows[0][1], rows[0][2]
    print(f"{args.frames} frames of {SIZE}x{SIZE}x3, random access, {torch.get_num_threads()} torch threads")
    print("| storage | frames/s (1 process) | vs PNG | frames/s (2 workers) | vs PNG | KiB/frame |")
    print("|---|---|---|---|---|---|")
    for label, single, workers, size in rows:
        print(
            f"| {label} | {single:.0f} | {single / base_single:.1f}x | {workers:.0f} | "
            f"{workers / base_workers:.1f}x | {size / 1024:.0f} |"
        )


if __name__ == "__main__":
    main()
