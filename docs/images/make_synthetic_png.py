"""Draw one dataset sample of each synthetic layout to ``docs/images/synthetic_sample.png``.

Run: ``python docs/images/make_synthetic_png.py [--wild STORE] [--studio STORE] [--out PATH]``. Without
stores it uses (and on first use generates) the default synthetic stores of ``ensure_synthetic_data``.
The stores are read through the ``wild-video`` and ``studio`` dataset plugins, exactly as training
reads them: per layout, one row of reference views (the last one is the face close-up), one of target
views, one of target masks and one of the targets' face crops (the expression encoder's input).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from lca.data.synth import ensure_synthetic_data
from lca.registry import default_registry

TILE = 128
PAD = 4
LABEL_WIDTH = 150


def _row(images: torch.Tensor) -> Image.Image:
    """``[V, C, H, W]`` in [0, 1] -> one padded RGB strip of TILE-sized tiles."""
    images = torch.nn.functional.interpolate(images.expand(-1, 3, -1, -1), size=(TILE, TILE), mode="bilinear")
    grid = make_grid(images, nrow=len(images), padding=PAD, pad_value=1.0)
    return Image.fromarray((grid.clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy())


def _layout_rows(layout: str, store: Path, num_references: int) -> list[tuple[str, Image.Image]]:
    config = {
        "path": str(store),
        "num_references": num_references,
        "num_targets": 4,
        "image_size": 128,
        "seed": 1,
    }
    dataset = default_registry().build("dataset", layout, config)
    # The first sample whose face close-up exists (a reference camera sees the face).
    sample = next(
        s for s in (dataset[i] for i in range(min(len(dataset), 50))) if bool(s.references.valid.all())
    )
    refs, targets = sample.references, sample.targets
    return [
        (f"{layout}\nreferences\n(+ face crop)", _row(refs.images[refs.valid])),
        (f"{layout}\ntargets", _row(targets.images)),
        (f"{layout}\ntarget masks", _row(targets.masks)),
        (f"{layout}\ntarget face crops", _row(sample.driving.face)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wild", type=Path)
    parser.add_argument("--studio", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("synthetic_sample.png"))
    args = parser.parse_args()
    stores = {"wild-video": args.wild, "studio": args.studio}
    if None in stores.values():
        defaults = ensure_synthetic_data()
        stores = {k: v or defaults[k] for k, v in stores.items()}
    rows = _layout_rows("wild-video", stores["wild-video"], 3) + _layout_rows("studio", stores["studio"], 3)
    width = LABEL_WIDTH + max(image.width for _, image in rows)
    canvas = Image.new("RGB", (width, sum(image.height for _, image in rows)), "white")
    draw = ImageDraw.Draw(canvas)
    y = 0
    for label, image in rows:
        canvas.paste(image, (LABEL_WIDTH, y))
        draw.multiline_text((6, y + image.height // 2 - 20), label, fill="black")
        y += image.height
    canvas.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
