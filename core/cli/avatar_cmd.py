"""``lca avatar``: create an avatar from photos or a store, animate it to MP4/GIF, export it to PLY."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from lca.cli.console import console, err_console
from lca.errors import LcaError

app = typer.Typer(help="Create, animate and export avatars (see docs/avatars.md).", no_args_is_help=True)


@app.command("create")
def create(
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="Run folder or checkpoint folder from `lca train`."
    ),
    out: Path = typer.Option(..., "--out", help="Avatar file to write (.safetensors)."),
    store: str = typer.Option(
        None, "--store", help="Store with the person (path, URL or synthetic://LAYOUT)."
    ),
    group: str = typer.Option(None, "--group", help="The store group (clip or capture) of the person."),
    frame: int = typer.Option(0, "--frame", help="Store frame of the references (and of the betas)."),
    images: list[Path] = typer.Option(
        None, "--images", help="Reference images (repeatable); an RGBA cut-out's alpha is its mask."
    ),
    params: Path = typer.Option(None, "--params", help="With --images: .npz holding the person's 'betas'."),
    smplx: list[Path] = typer.Option(
        None,
        "--smplx",
        help="With --images, one per image: LHM-tracker .json or SMPLer-X .npz (pose, camera).",
    ),
    masks: list[Path] = typer.Option(
        None,
        "--masks",
        help="With --smplx, one per image: mask (white = person), instead of an alpha channel.",
    ),
    smplx_model: Path = typer.Option(
        None,
        "--smplx-model",
        help="SMPL-X model file (.npz) whose mean hand SMPLer-X's hands are relative to.",
    ),
    ema: bool = typer.Option(False, "--ema", help="Use the checkpoint's EMA weights."),
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cuda."),
) -> None:
    """Run the encoder and backbone once on reference images and write the avatar file."""
    from lca.avatars import save_avatar
    from lca.avatars.create import (
        create_avatar_file,
        data_slot,
        load_betas,
        load_images,
        load_model,
        load_tracked_references,
        store_person_avatar,
    )

    if (store is None) == (not images):
        raise LcaError(
            "Give either --store STORE --group G [--frame T] or --images IMG... with --params PARAMS.npz "
            "or --smplx FILE per image."
        )
    if store is not None and group is None:
        raise LcaError("--store needs --group: the store group (clip or capture) of the person.")
    if images and (params is None) == (not smplx):
        raise LcaError(
            "--images needs either --params PARAMS.npz holding the person's 'betas', or one --smplx tracker "
            "file per image (LHM's .json or SMPLer-X's .npz), which carries betas, pose and camera."
        )
    if masks and not smplx:
        raise LcaError("--masks goes with --smplx (without it, give RGBA cut-outs: their alpha is the mask).")
    model, found = load_model(checkpoint, ema=ema, device=device)
    if store is not None:
        file = store_person_avatar(model, store, group, frame, checkpoint=str(found.path))
    elif smplx:
        data = data_slot(model.config, "").config
        pixels, betas, poses = load_tracked_references(
            images, smplx, size=data.image_size, background=data.reference_background, masks=masks,
            smplx_model=smplx_model,
        )  # fmt: skip
        source = f"images {[str(p) for p in images]} smplx {[str(p) for p in smplx]}"
        file = create_avatar_file(
            model, pixels, betas, poses=poses, source_checkpoint=str(found.path), source=source
        )
    else:
        data = data_slot(model.config, "").config
        pixels = load_images(images, data.image_size, data.reference_background)
        betas = load_betas(params, model.template.num_betas)
        source = f"images {[str(p) for p in images]} params {params}"
        file = create_avatar_file(model, pixels, betas, source_checkpoint=str(found.path), source=source)
    path = save_avatar(out, file)
    console.print(
        f"Avatar written: {escape(str(path))} ({file.num_gaussians} Gaussians, pipeline "
        f"'{escape(model.config.name)}', checkpoint {escape(str(found.path))})"
    )


@app.command("animate")
def animate(
    avatar: Path = typer.Argument(..., help="Avatar file from `lca avatar create`."),
    motion: str = typer.Option(
        ..., "--motion", help="motion.npz, or STORE[:GROUP] (default: first test group)."
    ),
    out: Path = typer.Option(..., "--out", help="Video to write (.mp4 or .gif)."),
    gif: Path = typer.Option(None, "--gif", help="Also write a GIF here."),
    camera: str = typer.Option("turntable", "--camera", help="turntable | fixed | store."),
    store_camera: int = typer.Option(
        0, "--store-camera", help="With --camera store on a studio store: camera."
    ),
    fps: float = typer.Option(None, "--fps", help="Frames per second (default: the motion's)."),
    size: int = typer.Option(256, "--size", help="Square frame side in pixels (even)."),
    background: str = typer.Option("black", "--background", help="black | white | grey."),
    frames: int = typer.Option(None, "--frames", help="Only the first N frames of the motion."),
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cuda."),
) -> None:
    """Drive the avatar with a motion and render every frame (through `drive` only) to a video."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from lca.avatars import load_avatar
    from lca.avatars.animate import face_input_size, render_motion, write_video
    from lca.avatars.motion import open_motion
    from lca.avatars.player import load_player

    if camera not in ("turntable", "fixed", "store"):
        raise LcaError(f"Unknown --camera '{camera}': choose turntable, fixed or store.")
    if size < 16 or size % 2:
        raise LcaError(f"--size must be an even number of pixels >= 16 (H.264 needs even sides); got {size}.")
    file = load_avatar(avatar)
    player = load_player(file, device)
    face_size = face_input_size(player) or 64
    clip = open_motion(motion, player.template.num_expression, face_size)
    if frames is not None:
        clip = clip.select(list(range(min(frames, clip.num_frames))))
    if face_input_size(player) is not None and "face_crop" not in clip.signals:
        err_console.print(
            "Note: the motion has no face crops; the expression code stays neutral (prior mean)."
        )
    columns = (TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("render", total=clip.num_frames)
        video = render_motion(
            file, clip, camera=camera, size=size, background=background, store_camera=store_camera,  # type: ignore[arg-type]
            device=device, player=player, progress=lambda n: bar.advance(task, n),
        )  # fmt: skip
    rate = fps or clip.fps
    written = [write_video(out, video, rate)]
    if gif is not None:
        written.append(write_video(gif, video, rate))
    for path in written:
        console.print(f"Wrote {escape(str(path))} ({len(video)} frames, {size}x{size}, {rate:g} fps)")


@app.command("export")
def export(
    avatar: Path = typer.Argument(..., help="Avatar file from `lca avatar create`."),
    out: Path = typer.Option(..., "--out", help="PLY file to write (3DGS layout)."),
    posed: bool = typer.Option(False, "--posed", help="Export the Gaussians posed by --motion at --frame."),
    motion: str = typer.Option(None, "--motion", help="With --posed: motion.npz or STORE[:GROUP]."),
    frame: int = typer.Option(0, "--frame", help="With --posed: the motion frame."),
) -> None:
    """Write the canonical (Da-pose, neutral) or posed Gaussians as a standard 3DGS PLY."""
    from lca.avatars import load_avatar
    from lca.avatars.animate import face_input_size
    from lca.avatars.export import export_ply
    from lca.avatars.motion import open_motion
    from lca.avatars.player import load_player

    if posed and motion is None:
        raise LcaError("--posed needs --motion (a motion.npz or STORE[:GROUP]).")
    file = load_avatar(avatar)
    clip = None
    if posed:
        player = load_player(file)
        clip = open_motion(motion, player.template.num_expression, face_input_size(player) or 64)
    path = export_ply(out, file, clip, frame)
    what = f"posed (frame {frame})" if posed else "canonical"
    console.print(f"Wrote {escape(str(path))}: {file.num_gaussians} {what} Gaussians in the 3DGS PLY layout")


@app.command("demo-motion")
def demo_motion_cmd(
    out: Path = typer.Option(..., "--out", help="Motion .npz to write."),
    frames: int = typer.Option(48, "--frames", help="Number of frames."),
    fps: float = typer.Option(12.0, "--fps", help="Frames per second."),
    face_size: int = typer.Option(64, "--face-size", help="Side of the rendered face crops."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the dance and the performer."),
) -> None:
    """Write a demo motion: a synthetic performer dancing with changing expressions (see docs/avatars.md)."""
    from lca.avatars.demo import demo_motion
    from lca.avatars.motion import save_motion

    if frames < 1:
        raise LcaError(f"--frames must be >= 1; got {frames}.")
    path = save_motion(out, demo_motion(frames, fps, face_size, seed))
    console.print(f"Wrote {escape(str(path))} ({frames} frames at {fps:g} fps, face crops {face_size} px)")
