"""Render the procedural mannequin in a few poses to ``docs/images/mannequin.png``.

Run: ``python docs/images/make_mannequin_png.py [--out PATH]``. Uses the ``mannequin`` template's own
posing (:meth:`pose_vertices`) and a small painter's-algorithm renderer (matplotlib, flat Lambert
shading, faces coloured by body part), so it needs no GPU.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.collections import PolyCollection

from lca.contracts.template import TemplateParams
from lca_plugins.templates.mannequin import MannequinConfig, MannequinTemplate

PART_COLOURS = np.array([[0.93, 0.76, 0.64], [0.90, 0.72, 0.60], [0.35, 0.50, 0.75], [0.30, 0.30, 0.36]])


def _poses(template: MannequinTemplate) -> list[tuple[str, TemplateParams]]:
    gen = torch.Generator().manual_seed(3)
    out = []

    def new() -> TemplateParams:
        return TemplateParams.zeros(1, num_betas=template.num_betas, num_expression=template.num_expression)

    def body(p: TemplateParams, joint: int, axis: int, angle: float) -> None:
        p.body_pose[0, 3 * (joint - 1) + axis] = angle

    p = new()
    out.append(("rest (T-pose)", p))
    p = new()
    p.body_pose[0] = template.da_pose[1:22].reshape(-1)
    out.append(("canonical Da-pose", p))
    p = new()
    body(p, 16, 2, -1.1), body(p, 17, 2, 1.1), body(p, 1, 0, -0.45), body(p, 4, 0, 0.2)
    body(p, 2, 0, 0.3), body(p, 5, 0, 0.6), body(p, 18, 1, -0.4), body(p, 19, 1, 0.4)
    p.left_hand_pose[0, 2::3] = -0.5
    p.right_hand_pose[0, 2::3] = 0.5
    p.betas[0, 1] = 1.5
    out.append(("walking, girth +1.5", p))
    p = new()
    body(p, 16, 2, -1.2), body(p, 17, 2, -0.9), body(p, 19, 1, 1.6), body(p, 12, 1, 0.3)
    p.jaw_pose[0, 0] = 0.35
    p.expression[0, 1] = 2.0
    p.betas[0, 0] = -1.5
    out.append(("waving, height -1.5", p))
    p = new()
    body(p, 1, 0, -1.5), body(p, 2, 0, -1.5), body(p, 4, 0, 1.6), body(p, 5, 0, 1.6)
    body(p, 16, 2, -1.2), body(p, 17, 2, 1.2), body(p, 3, 0, 0.2)
    p.global_orient[0, 1] = 0.6
    out.append(("sitting, turned", p))
    p = new()
    p.body_pose[0] = 0.35 * torch.randn(63, generator=gen, dtype=torch.float64).float()
    p.left_hand_pose[0] = 0.3 * torch.randn(45, generator=gen, dtype=torch.float64).float()
    p.betas[0] = torch.randn(10, generator=gen, dtype=torch.float64).float()
    out.append(("random pose and shape", p))
    return out


def _draw(ax: plt.Axes, verts: np.ndarray, faces: np.ndarray, colours: np.ndarray, yaw: float) -> None:
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    v = verts @ rot.T
    tri = v[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    visible = normal[:, 2] > 0
    light = np.array([0.35, 0.45, 0.82])
    shade = 0.25 + 0.75 * np.clip(normal @ (light / np.linalg.norm(light)), 0, 1)
    order = np.argsort(tri[:, :, 2].mean(1))
    order = order[visible[order]]
    rgb = np.clip(colours[order] * shade[order, None], 0, 1)
    ax.add_collection(PolyCollection(tri[order][:, :, :2], facecolors=rgb, edgecolors=rgb, linewidths=0.15))
    ax.set_xlim(-0.95, 0.95)
    ax.set_ylim(-1.25, 0.6)
    ax.set_aspect("equal")
    ax.axis("off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("mannequin.png"))
    args = parser.parse_args()
    template = MannequinTemplate(MannequinConfig())
    faces = template.faces.numpy()
    face_part = template.vertex_part_labels[template.faces].mode(dim=1).values.numpy()
    colours = PART_COLOURS[face_part]
    poses = _poses(template)
    fig, axes = plt.subplots(1, len(poses), figsize=(2.4 * len(poses), 3.6), dpi=120)
    for ax, (title, params) in zip(axes, poses, strict=True):
        with torch.no_grad():
            verts = template.pose_vertices(params)[0].numpy()
        _draw(ax, verts, faces, colours, yaw=0.35)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
