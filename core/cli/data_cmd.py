"""``lca data``: generate synthetic stores, check stores, import captures."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape

from lca.cli.console import console, err_console

app = typer.Typer(help="Zarr data stores: synthesize, check, import.", no_args_is_help=True)


class SynthLayout(StrEnum):
    wild_video = "wild-video"
    studio = "studio"
    both = "both"


class Codec(StrEnum):
    zstd = "zstd"
    jpeg = "jpeg"
    webp = "webp"


class Layout(StrEnum):
    wild_video = "wild-video"
    studio = "studio"


@app.command("synth")
def synth(
    layout: SynthLayout = typer.Option(SynthLayout.both, "--layout", help="Which layout(s) to generate."),
    out: Path = typer.Option(
        Path("synthetic"), "--out", help="Folder for the stores (<layout>.zarr inside)."
    ),
    identities: int = typer.Option(None, "--identities", min=1, help="People (one clip/capture each)."),
    frames: int = typer.Option(None, "--frames", min=1, help="Frames per clip/capture."),
    cameras: int = typer.Option(None, "--cameras", min=1, help="Cameras of the studio ring."),
    resolution: int = typer.Option(None, "--resolution", min=16, help="Square image side in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed of everything generated."),
    codec: Codec = typer.Option(Codec.zstd, "--codec", help="Image codec of the stores."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing stores."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Render procedural people into wild-video and/or studio stores (defaults: see docs/data.md)."""
    from lca.data.synth import synthesize

    layouts = ["wild-video", "studio"] if layout is SynthLayout.both else [layout.value]
    out.mkdir(parents=True, exist_ok=True)
    for name in layouts:
        path = synthesize(
            name,  # type: ignore[arg-type]
            out / f"{name}.zarr",
            identities=identities, frames=frames, cameras=cameras if name == "studio" else None,
            resolution=resolution, seed=seed, codec=codec.value, progress=progress, overwrite=overwrite,
        )  # fmt: skip
        console.print(f"wrote {escape(str(path))}")


@app.command("check")
def check(
    store: str = typer.Argument(..., help="Store path or fsspec URL."),
    sample: int = typer.Option(
        None, "--sample", min=1, help="Read only this many random image chunks per array."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the --sample choice."),
) -> None:
    """Validate the schema and decode every image chunk (or a sample); exit 1 when anything is wrong."""
    from lca.data.check import check_store

    problems = check_store(store, sample=sample, seed=seed)
    for problem in problems:
        err_console.print(f"[red]problem:[/] {escape(str(problem))}", soft_wrap=True)
    if problems:
        err_console.print(f"{len(problems)} problem(s) in {escape(store)}")
        raise typer.Exit(1)
    console.print(f"{escape(store)}: OK")


@app.command("list")
def list_groups(
    store: str = typer.Argument(..., help="Store path, fsspec URL or synthetic://LAYOUT."),
    split: str = typer.Option(None, "--split", help="Only groups of this split (train, val, test)."),
) -> None:
    """The store's clips or captures: group, identity, split, frames, cameras, image size."""
    from rich.table import Table

    from lca.data.reader import StoreReader

    reader = StoreReader(store)
    table = Table("group", "identity", "split", "frames", "cameras", "size", box=None, header_style="bold")
    for group in reader.group_names(split):
        attrs, meta = reader.attrs(group), reader.meta(group)
        cameras = len(attrs.get("camera_ids", [])) or 1
        table.add_row(
            group,
            str(attrs.get("identity")),
            str(attrs.get("split")),
            str(meta.num_frames),
            str(cameras),
            f"{meta.height}x{meta.width}",
        )
    console.print(f"{escape(reader.url)} ({reader.layout}, codec {reader.codec})")
    console.print(table)


@app.command("import")
def import_(
    source: Path = typer.Argument(..., help="Folder with transforms.json and images, or a video file."),
    store: str = typer.Argument(..., help="Store to create (path or fsspec URL)."),
    layout: Layout = typer.Option(Layout.wild_video, "--layout", help="Layout of the new store."),
    transforms: Path = typer.Option(
        None, "--transforms", help="transforms.json (default: next to the images)."
    ),
    smplx_dir: Path = typer.Option(
        None, "--smplx-dir", help="Per-frame SMPL-X files (default: <transforms dir>/smplx)."
    ),
    identity: str = typer.Option(None, "--identity", help="Identity id (default: the source's name)."),
    split: str = typer.Option("train", "--split", help="train, val or test."),
    group: str = typer.Option(None, "--group", help="Group name (default: the source's name)."),
    fps: float = typer.Option(30.0, "--fps", help="Frame rate."),
    codec: Codec = typer.Option(Codec.zstd, "--codec", help="Image codec."),
    quality: int = typer.Option(95, "--quality", help="JPEG/WebP quality."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing store."),
) -> None:
    """Import one clip (wild-video) or capture (studio) with transforms.json cameras and SMPL-X files."""
    from lca.data.importer import import_transforms

    name = import_transforms(
        source, store, layout.value, transforms=transforms, smplx_dir=smplx_dir, identity=identity,
        split=split, group=group, fps=fps, codec=codec.value, quality=quality, overwrite=overwrite,
    )  # fmt: skip
    console.print(f"imported group '{escape(name)}' into {escape(store)}")
