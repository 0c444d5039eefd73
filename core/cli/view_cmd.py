"""``lca view``: the interactive web viewer (viser) for an avatar file, or for a checkpoint's avatar of a
store person (created first)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape

from lca.cli.console import console
from lca.errors import LcaError


def view(
    avatar: Path = typer.Argument(None, help="Avatar file from `lca avatar create` (.safetensors)."),
    compare: Path = typer.Option(None, "--compare", help="A second avatar file, drawn beside the first."),
    checkpoint: Path = typer.Option(
        None, "--checkpoint", help="Instead of AVATAR: a run or checkpoint folder."
    ),
    store: str = typer.Option(None, "--store", help="With --checkpoint: the store of the person."),
    group: str = typer.Option(None, "--group", help="With --checkpoint: the store group of the person."),
    motion: str = typer.Option(None, "--motion", help="motion.npz or STORE[:GROUP] to play (optional)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on."),
    port: int = typer.Option(8080, "--port", help="Port to serve on."),
    size: int = typer.Option(256, "--size", help="Rendered image height in pixels."),
    out: Path = typer.Option(Path("viewer-output"), "--out", help="Folder for screenshots and recordings."),
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cuda."),
) -> None:
    """Serve an interactive viewer on http://HOST:PORT: orbit, pose, expression, gaze, motion, screenshots."""
    from lca.avatars import load_avatar
    from lca.avatars.animate import face_input_size
    from lca.avatars.motion import open_motion
    from lca.avatars.player import load_player
    from lca.viewer.server import AvatarViewer

    if (avatar is None) == (checkpoint is None):
        raise LcaError("Give an avatar file, or --checkpoint RUN --store STORE --group G.")
    if checkpoint is not None and (store is None or group is None):
        raise LcaError("--checkpoint needs --store STORE and --group G: the person to create the avatar of.")
    avatars = (
        [(str(avatar), load_avatar(avatar))]
        if avatar is not None
        else [_create(checkpoint, store, group, device)]
    )
    if compare is not None:
        avatars.append((str(compare), load_avatar(compare)))
    clip = None
    if motion is not None:
        first = avatars[0][1]
        player = load_player(first, device)
        clip = open_motion(motion, player.template.num_expression, face_input_size(player) or 64)
    viewer = AvatarViewer(
        avatars, host=host, port=port, size=size, motion=clip, output_dir=out, device=device
    )
    console.print(f"Viewer on {escape(viewer.url)} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        viewer.close()


def _create(checkpoint: Path, store: str, group: str, device: str):
    from lca.avatars.create import create_avatar_file, load_model, store_references
    from lca.model.avatar import reference_poses

    model, found = load_model(checkpoint, device=device)
    views, source = store_references(model.config, store, group)
    file = create_avatar_file(
        model, views.images, views.params["betas"][0], view_mask=views.valid, poses=reference_poses(views),
        source_checkpoint=str(found.path), source=source,
    )  # fmt: skip
    return f"{group} of {store}", file
