"""Benchmark: frames per second of ``lca view``'s server-side render (one orbit of the camera, a new pose
every frame) against the rasterizer alone drawing the same avatar's posed Gaussians, measured in the same
run, on the CPU.

    python bench/viewer.py [--pipeline lca-tiny] [--size 256] [--frames 40] [--threads 2]

The avatar is the pipeline's, untrained (created from a synthetic studio person: the Gaussian count and
the per-frame work are those of a trained one). Rows: the viewer's full path (``AvatarViewer.render``:
controls -> one-frame motion -> ``drive`` with driving corrections -> rasterizer) with corrections on and
off, and the rasterizer alone on pre-posed Gaussians (the floor every viewer of these Gaussians pays).
The goal (issue: lca-tiny at 256x256, 10 frames/s or better on 2 cores) is the first row.
"""

from __future__ import annotations

import argparse
import math
import socket
import time

import numpy as np
import torch


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _orbit(viewer, frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Camera positions and rotations (viser's convention) on a ring around the initial look-at point."""
    from scipy.spatial.transform import Rotation

    from lca.cameras import look_at

    centre = np.asarray(viewer.server.initial_camera.look_at)
    radius = float(np.linalg.norm(np.asarray(viewer.server.initial_camera.position) - centre))
    out = []
    for i in range(frames):
        angle = 2 * math.pi * i / frames
        eye = centre + radius * np.array([math.sin(angle), 0.0, math.cos(angle)])
        viewmat = look_at(torch.tensor(eye).float(), torch.tensor(centre).float()).numpy()
        rotation = Rotation.from_matrix(viewmat[:3, :3].T).as_quat()  # camera-to-world, x y z w
        out.append((eye, np.array([rotation[3], *rotation[:3]])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="lca-tiny")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from lca.avatars.animate import BACKGROUNDS, face_input_size
    from lca.avatars.create import create_avatar_file, store_references
    from lca.config import resolve_pipeline
    from lca.model.avatar import AvatarModel, reference_poses
    from lca.viewer.server import AvatarViewer, camera_matrices

    config = resolve_pipeline(args.pipeline)
    model = AvatarModel(config).eval()
    views, _ = store_references(config, "synthetic://studio", "capture-0011")
    avatar = create_avatar_file(
        model, views.images, views.params["betas"][0], view_mask=views.valid, poses=reference_poses(views)
    )
    viewer = AvatarViewer([("bench", avatar)], port=_free_port(), size=args.size)
    cameras = _orbit(viewer, args.frames)
    presets = list(viewer.preset.options)
    rows = []
    for label, corrections in (("viewer: drive + rasterizer", True), ("viewer: corrections off", False)):
        viewer.corrections.value = corrections
        viewer.render(*cameras[0], 0.7, 1.0)  # warm-up
        start = time.perf_counter()
        for i, (position, wxyz) in enumerate(cameras):
            viewer.preset.value = presets[i % len(presets)]
            viewer.render(position, wxyz, 0.7, 1.0)
        rows.append((label, (time.perf_counter() - start) / len(cameras)))
    shown = viewer.shown[0]
    clip = viewer.current_clip()
    params = clip.template_params(shown.avatar.betas, viewer.num_expression)
    with torch.no_grad():
        signals = clip.driving_signals(params, face_input_size(shown.player))
        viewmat, K = camera_matrices(*cameras[0], 0.7, args.size, args.size)
        drive = shown.player.drive(
            shown.batch, params, signals, viewmat[None, None], K[None, None], args.size, args.size
        )
        gaussians = drive.driven_gaussians
        rasterizer = shown.player.rasterizer
        background = torch.tensor(BACKGROUNDS["grey"])
        start = time.perf_counter()
        for position, wxyz in cameras:
            viewmat, K = camera_matrices(position, wxyz, 0.7, args.size, args.size)
            rasterizer(gaussians, viewmat[None, None], K[None, None], args.size, args.size, background)
        rows.append(("rasterizer alone (posed Gaussians)", (time.perf_counter() - start) / len(cameras)))
    viewer.close()
    floor = rows[-1][1]
    print(f"\n{args.pipeline}, {shown.avatar.num_gaussians} Gaussians, {args.size}x{args.size}, "
          f"{args.frames} frames, {args.threads} threads\n")  # fmt: skip
    print("| path | ms per frame | frames/s | x rasterizer alone |")
    print("|---|---:|---:|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds * 1000:.1f} | {1 / seconds:.1f} | {seconds / floor:.2f} |")


if __name__ == "__main__":
    main()
