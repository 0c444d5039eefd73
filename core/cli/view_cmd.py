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
    run: Path = typer.Option(
        None, "--run", help="Instead of AVATAR: follow a training run (newest checkpoint, losses)."
    ),
    store: str = typer.Option(
        None, "--store", help="With --checkpoint or --run: the person's store (--run: synthetic://studio)."
    ),
    group: str = typer.Option(
        None, "--group", help="With --checkpoint or --run: the person's group (--run: the first test group)."
    ),
    poll: float = typer.Option(5.0, "--poll", help="With --run: seconds between looks at the run folder."),
    motion: str = typer.Option(None, "--motion", help="motion.npz or STORE[:GROUP] to play (optional)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on."),
    port: int = typer.Option(8080, "--port", help="Port to serve on."),
    size: int = typer.Option(256, "--size", help="Rendered image height in pixels."),
    out: Path = typer.Option(Path("viewer-output"), "--out", help="Folder for screenshots and recordings."),
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cuda."),
) -> None:
    """Serve an interactive viewer on http://HOST:PORT: orbit, pose, expression, gaze, motion, screenshots.

    With --run it follows a training run: the newest checkpoint's avatar of a held-out person, reloaded as
    checkpoints appear, and the logged losses (docs/avatars.md)."""
    from lca.avatars import load_avatar
    from lca.avatars.create import load_model, store_person_avatar
    from lca.viewer.follow import RunFollower
    from lca.viewer.server import AvatarViewer

    if sum(x is not None for x in (avatar, checkpoint, run)) != 1:
        raise LcaError("Give an avatar file, or --checkpoint RUN --store STORE --group G, or --run RUN_DIR.")
    if checkpoint is not None and (store is None or group is None):
        raise LcaError("--checkpoint needs --store STORE and --group G: the person to create the avatar of.")
    follower = None
    if avatar is not None:
        avatars = [(str(avatar), load_avatar(avatar))]
    elif run is not None:
        follower = RunFollower(run, store or "synthetic://studio", group, device)
        console.print(f"Waiting for the first checkpoint of {escape(str(run))} ...")
        while (snapshot := follower.poll()) is None:
            time.sleep(poll)
        avatars = [(snapshot.label, snapshot.avatar)]
    else:
        model, found = load_model(checkpoint, device=device)
        avatars = [
            (f"{group} of {store}", store_person_avatar(model, store, group, checkpoint=str(found.path)))
        ]
    if compare is not None:
        avatars.append((str(compare), load_avatar(compare)))
    viewer = AvatarViewer(
        avatars, host=host, port=port, size=size, motion=motion, output_dir=out, device=device,
        follow=follower, poll_s=poll,
    )  # fmt: skip
    console.print(f"Viewer on {escape(viewer.url)} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        viewer.close()
