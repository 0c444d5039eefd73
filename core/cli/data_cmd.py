"""``lca data``: generate synthetic stores, check stores, import captures."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from lca.cli.console import console, err_console
from lca.config.defaults import DEFAULT_IMPORTER
from lca.errors import LcaError

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
    shard_size: int = typer.Option(
        None,
        "--shard-size",
        min=1,
        help="People per shard: write <layout>-NNNNN.zarr shards + <layout>.parquet.",
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="With --shard-size: shards written at once."),
) -> None:
    """Render procedural people into wild-video and/or studio stores (defaults: see docs/data.md); with
    --shard-size, into shards joined by a manifest."""
    from lca.data.synth import synthesize
    from lca.data.synth_shards import synthesize_shards

    layouts = ["wild-video", "studio"] if layout is SynthLayout.both else [layout.value]
    out.mkdir(parents=True, exist_ok=True)
    if shard_size is not None:
        for name in layouts:
            settings = {"identities": identities, "frames": frames, "resolution": resolution, "seed": seed,
                        "codec": codec.value, "cameras": cameras if name == "studio" else None}  # fmt: skip
            path = synthesize_shards(name, out, shard_size, workers=workers, overwrite=overwrite, **settings)  # type: ignore[arg-type]
            console.print(f"wrote the shards of {escape(str(path))}")
        return
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
    store: str = typer.Argument(..., help="Store path, fsspec URL or synthetic://LAYOUT."),
    sample: int = typer.Option(
        None, "--sample", min=1, help="Read only this many random image chunks per array."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the --sample choice."),
) -> None:
    """Validate the schema and decode every image chunk (or a sample); exit 1 when anything is wrong."""
    from lca.data.check import check_store
    from lca.data.locations import resolve_store_url
    from lca.data.manifest import ManifestReader, is_manifest

    if is_manifest(store):  # every shard it indexes (the table was checked when it was read)
        shards = ManifestReader(store).stores()
        problems = [p for shard in shards for p in check_store(shard, sample=sample, seed=seed)]
    else:
        problems = check_store(resolve_store_url(store), sample=sample, seed=seed)
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

    from lca.data.locations import resolve_store_url
    from lca.data.manifest import ManifestReader, is_manifest
    from lca.data.reader import StoreReader

    if is_manifest(store):  # the table alone: no shard is opened
        import pyarrow.parquet as pq

        rows = pq.read_table(store).to_pylist()
        table = Table(
            "group", "identity", "split", "frames", "cameras", "size", box=None, header_style="bold"
        )
        for row in rows:
            if split is None or row["split"] == split:
                sizes = (row["num_frames"], row["num_cameras"], f"{row['height']}x{row['width']}")
                table.add_row(row["key"], row["identity"], row["split"], *(str(v) for v in sizes))
        console.print(
            f"{escape(store)} (manifest of {len(ManifestReader(store).stores())} stores, {len(rows)} groups)"
        )
        console.print(table)
        return
    reader = StoreReader(resolve_store_url(store))
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


@app.command("index")
def index(
    stores: list[str] = typer.Argument(..., help="Stores (paths or fsspec URLs) to index."),
    out: Path = typer.Option(..., "--out", help="Manifest to write (.parquet)."),
    workers: int = typer.Option(8, "--workers", min=1, help="Stores opened at once."),
) -> None:
    """Index the groups of many stores (shards) into one Parquet manifest (schema in docs/data.md); the
    datasets, `lca data check` and `lca data list` take it wherever they take a store."""
    from lca.data.manifest import MANIFEST_SUFFIX, index_stores

    if not str(out).endswith(MANIFEST_SUFFIX):
        raise LcaError(f"--out {out}: a manifest's name ends in {MANIFEST_SUFFIX}.")
    path = index_stores(stores, out, workers=workers)
    console.print(f"indexed {len(stores)} store(s) into {escape(str(path))}")


@app.command("import")
def import_(
    sources: list[Path] = typer.Argument(
        None,
        metavar="SOURCE",
        help="What to import, in the importer's format (transforms-json: a folder or a video); several with "
        "--shard-size.",
    ),
    store: str = typer.Argument(
        None,
        metavar="STORE",
        help="Store to create (path or fsspec URL); with --shard-size, the folder of the shards.",
    ),
    format_: str = typer.Option(
        DEFAULT_IMPORTER, "--format", "-f", help="Registered importer (see --list-formats)."
    ),
    settings: list[str] = typer.Option(
        None, "--set", help="Importer config field=value (repeatable; value parsed as YAML)."
    ),
    list_formats: bool = typer.Option(False, "--list-formats", help="List the importers and exit."),
    layout: Layout = typer.Option(None, "--layout", help="Layout of the new store (default wild-video)."),
    transforms: Path = typer.Option(
        None, "--transforms", help="transforms-json: transforms.json (default: next to the images)."
    ),
    smplx_dir: Path = typer.Option(
        None, "--smplx-dir", help="transforms-json: per-frame SMPL-X files (default: <transforms dir>/smplx)."
    ),
    identity: str = typer.Option(None, "--identity", help="Identity id (default: the group name)."),
    split: str = typer.Option(
        None, "--split", help="train, val or test (default: auto, a stable rule of the identity; see docs)."
    ),
    group: str = typer.Option(None, "--group", help="Group name (default: the source's name)."),
    fps: float = typer.Option(None, "--fps", help="transforms-json: frame rate (default 30)."),
    codec: Codec = typer.Option(None, "--codec", help="Image codec (default zstd)."),
    quality: int = typer.Option(None, "--quality", help="JPEG/WebP quality (default 95)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing store."),
    shard_size: int = typer.Option(
        None,
        "--shard-size",
        min=1,
        help="Write shards of at most this many units (subjects, sequences) into the folder STORE, joined "
        "by STORE/<format>.parquet (a manifest).",
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="With --shard-size: shards written at once."),
) -> None:
    """Import SOURCE into a new STORE with a registered importer (`--format`, default transforms-json).

    Built-in formats: transforms-json (a nerfstudio folder or a video, with SMPL-X files), dna-rendering
    (a DNA-Rendering main .smc beside its annotations), mvhumannet (an outfit folder), huge100k (a
    param/<subject>.npy or a folder of them), tracked-video (a video or frame folder, with LHM-tracker or
    SMPLer-X output and masks), zju-mocap and actorshq (a sequence folder of either, with SMPL-X files);
    plugins add more (--list-formats lists them all).

    --layout ... --overwrite are shorthands for `--set FIELD=VALUE` of the importer's config (a format
    without that field rejects it); `lca registry show importer NAME` lists a format's fields and
    `lca registry list importer` (or --list-formats) the formats. A plugin adds a format with one
    registry.yaml line (docs/data.md).

    With --shard-size N, `lca data import --format F SOURCE... FOLDER` imports many sources (or one source of
    many subjects, e.g. a HuGe100K folder) into shards FOLDER/F-00000.zarr, ... of at most N units each
    (one unit each for formats that write one sequence per store), --workers at once, and indexes them into
    FOLDER/F.parquet, which training, `lca data check` and `lca data list` take like a store.
    """
    from lca.registry import default_registry

    if list_formats:
        from lca.cli.registry_cmd import list_components

        list_components("importer", None)
        return
    if not sources or store is None:
        raise LcaError("Give SOURCE and STORE: lca data import [--format NAME] SOURCE STORE.")
    if len(sources) > 1 and shard_size is None:
        raise LcaError(
            f"{len(sources)} sources given: a store takes one; add --shard-size N to import them all into "
            f"shards under the folder {store} (joined by a manifest)."
        )
    shorthands = {
        "layout": layout.value if layout else None,
        "transforms": str(transforms) if transforms else None,
        "smplx_dir": str(smplx_dir) if smplx_dir else None,
        "identity": identity,
        "split": split,
        "group": group,
        "fps": fps,
        "codec": codec.value if codec else None,
        "quality": quality,
        "overwrite": overwrite or None,
    }
    params = _importer_params(settings or [], shorthands)
    registry = default_registry()
    registry.load("importer", format_, where="lca data import --format")
    importer = registry.build("importer", format_, params)
    shown_sources = " ".join(str(source) for source in sources)
    try:
        if shard_size is None:
            names = importer.import_into(sources[0], store)
        else:
            from lca.data.import_shards import import_shards

            manifest, names = import_shards(
                importer, format_, sources, Path(store), shard_size=shard_size, workers=workers
            )
    except LcaError:
        raise
    except (FileNotFoundError, ValueError) as error:  # the importer contract: these name the file at fault
        raise LcaError(f"lca data import --format {format_} {shown_sources}: {error}") from error
    shown = escape(", ".join(f"'{name}'" for name in names))
    where = store if shard_size is None else f"shards indexed by {manifest}"
    console.print(f"imported group(s) {shown} into {escape(str(where))} (format {escape(format_)})")


def _importer_params(settings: list[str], shorthands: dict[str, Any]) -> dict[str, Any]:
    """The importer's config params: ``--set FIELD=VALUE`` items plus the shorthand options given (not
    None); the importer's config validates them (an unknown field names the closest one)."""
    from lca.config.overrides import parse_value

    params: dict[str, Any] = {}
    for text in settings:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise LcaError(f"--set {text!r}: expected FIELD=VALUE, e.g. --set split=val")
        params[key.strip()] = parse_value(value)
    for key, value in shorthands.items():
        if value is None:
            continue
        if key in params and params[key] != value:
            raise LcaError(f"--{key.replace('_', '-')} and --set {key}=... disagree: give one of them.")
        params[key] = value
    return params
