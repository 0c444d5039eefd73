"""Procedural people: a ground-truth Gaussian cloud attached to the template, deterministic for a seed.

Each Gaussian rides one template anchor: its canonical position is that anchor's position for the
person's shape and current expression plus a fixed offset, and it is skinned with its own weights
(the anchor's for surface Gaussians; blends chosen here for hair, skirt, hat and bag). So expression
blend shapes move the face Gaussians, eye poses turn the irises, and the jaw opens the mouth.

What varies per person: shape (betas), skin tone, top (sleeve length, looseness, plain / stripes /
two-tone / checks), bottom (shorts to long trousers, or a skirt), shoes, hair (short, long, bun or
shaved; colour), a cap and a backpack sometimes, iris and lip colours. Two face cues are driven per
frame so expressions read at low resolution: the dark mouth opening grows with the jaw and the
mouth-open coefficient, and the cheeks blush with the smile (see :func:`dynamic_attributes`).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lca.contracts.template import Template
from lca.data.synth.regions import (
    FOOT_JOINTS,
    FOREARM_JOINTS,
    HAND_JOINTS,
    HEAD,
    JAW,
    LEFT_EYE,
    PELVIS,
    RIGHT_EYE,
    SHIN_JOINTS,
    SPINE3,
    THIGH_JOINTS,
    TORSO_JOINTS,
    UPPER_ARM_JOINTS,
    BodyRegions,
    frames_from_normals,
    nearest_anchor,
)
from lca.rotations import matrix_to_quat

STATIC, MOUTH, CHEEK = 0, 1, 2
"""Kinds of Gaussians: fixed appearance, mouth opening (height follows the jaw), cheek (blushes)."""
MOUTH_OPEN_GAIN = 3.0
"""How much taller the mouth slit gets at a fully open mouth (``opening`` 1)."""

SKIN_TONES = np.array(
    [[0.96, 0.80, 0.69], [0.90, 0.70, 0.56], [0.78, 0.57, 0.42], [0.55, 0.38, 0.26], [0.36, 0.24, 0.17]]
)
HAIR_COLOURS = np.array(
    [[0.08, 0.06, 0.05], [0.25, 0.15, 0.08], [0.55, 0.38, 0.20], [0.85, 0.70, 0.45], [0.6, 0.6, 0.6]]
)
IRIS_COLOURS = np.array([[0.30, 0.18, 0.08], [0.20, 0.35, 0.60], [0.25, 0.45, 0.25], [0.12, 0.08, 0.05]])


@dataclass
class Identity:
    """One synthetic person: shape and a Gaussian cloud (``G`` Gaussians) attached to the template."""

    name: str
    betas: Tensor
    """``[S]`` shape coefficients."""
    anchor: Tensor
    """``[G]`` long: the template anchor each Gaussian rides."""
    offset: Tensor
    """``[G, 3]`` canonical offset from that anchor (for this person's shape, neutral expression)."""
    weights: Tensor
    """``[G, J]`` skinning weights (rows sum to 1)."""
    quats: Tensor
    """``[G, 4]`` canonical rotations, wxyz."""
    scales: Tensor
    """``[G, 3]`` standard deviations in metres."""
    opacities: Tensor
    """``[G]``."""
    colors: Tensor
    """``[G, 3]`` RGB in [0, 1]."""
    kind: Tensor
    """``[G]`` long: :data:`STATIC`, :data:`MOUTH` or :data:`CHEEK`."""
    normals: Tensor
    """``[G, 3]`` canonical outward normal of the surface under each Gaussian, zero where it has none;
    used to skip Gaussians on the far side of the body when drawing (see :mod:`.render`)."""
    blush: Tensor
    """``[3]`` cheek colour at a full smile."""

    @property
    def num_gaussians(self) -> int:
        return int(self.anchor.shape[0])


class _Cloud:
    """Collects groups of Gaussians (positions in the person's canonical space) before attaching them."""

    def __init__(self, num_joints: int) -> None:
        self.num_joints = num_joints
        self.parts: list[dict[str, Tensor]] = []

    def add(
        self,
        positions: Tensor,
        colors: Tensor,
        scales: Tensor,
        weights: Tensor,
        rotations: Tensor | None = None,
        opacity: float = 0.95,
        kind: int = STATIC,
        anchor: Tensor | None = None,
        normals: Tensor | None = None,
    ) -> None:
        n = positions.shape[0]
        self.parts.append(
            {
                "positions": positions.float(),
                "colors": colors.float().expand(n, 3).clamp(0, 1),
                "scales": scales.float().expand(n, 3),
                "weights": weights.float().expand(n, self.num_joints),
                "rotations": torch.eye(3).expand(n, 3, 3) if rotations is None else rotations.float(),
                "opacities": torch.full((n,), opacity),
                "kind": torch.full((n,), kind, dtype=torch.long),
                "anchor": torch.full((n,), -1, dtype=torch.long) if anchor is None else anchor,
                "normals": torch.zeros(n, 3) if normals is None else normals.float(),
            }
        )

    def one_hot(self, joints: dict[int, float]) -> Tensor:
        w = torch.zeros(self.num_joints)
        for j, v in joints.items():
            w[j] = v
        return w / w.sum()

    def cat(self) -> dict[str, Tensor]:
        return {k: torch.cat([p[k] for p in self.parts]) for k in self.parts[0]}


def _hsv(h: float, s: float, v: float) -> Tensor:
    return torch.tensor(colorsys.hsv_to_rgb(h % 1.0, s, v))


def _garment_colour(rng: np.random.Generator) -> Tensor:
    return _hsv(rng.random(), rng.uniform(0.25, 0.85), rng.uniform(0.25, 0.95))


def _pattern(rng: np.random.Generator, pos: Tensor, first: Tensor, second: Tensor) -> Tensor:
    """Per-anchor garment colours ``[n, 3]``: plain, stripes, two-tone (split at a height) or checks."""
    choice = rng.integers(4)
    y, angle = pos[:, 1], torch.atan2(pos[:, 0], pos[:, 2])
    if choice == 0:
        use_second = torch.zeros_like(y, dtype=torch.bool)
    elif choice == 1:
        period = rng.uniform(0.05, 0.12)
        use_second = torch.sin(2 * np.pi * y / period) > 0
    elif choice == 2:
        use_second = y < float(torch.quantile(y, rng.uniform(0.3, 0.6)))
    else:
        use_second = (torch.sin(2 * np.pi * y / 0.08) > 0) ^ (torch.sin(4 * angle) > 0)
    return torch.where(use_second[:, None], second, first)


def make_identity(template: Template, regions: BodyRegions, seed: int | list[int], name: str) -> Identity:
    """The person of ``seed`` on ``template``; ``regions`` are its :func:`~.regions.body_regions`."""
    rng = np.random.default_rng(seed)
    betas = torch.from_numpy(np.clip(rng.normal(0.0, 0.8, template.num_betas), -2.0, 2.0)).float()
    with torch.no_grad():
        own = template.shaped_anchors(betas[None], torch.zeros(1, template.num_expression))[0]
    shift = own - regions.positions  # this person's shape, per anchor
    cloud = _Cloud(template.num_joints)
    r = regions
    pos0, normal, spacing = r.positions, r.normals, r.spacing
    y, x = pos0[:, 1], pos0[:, 0]
    eye_y = float(r.eye_centres[:, 1].mean())
    iod = float(r.eye_centres[0, 0] - r.eye_centres[1, 0])

    # --- colours of the surface: skin, garments, shoes, face details -------------------------------
    tone = rng.uniform(0, len(SKIN_TONES) - 1)
    lo = int(tone)
    skin = torch.from_numpy(
        SKIN_TONES[lo] + (tone - lo) * (SKIN_TONES[min(lo + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[lo])
    ).float()
    hair_colour = torch.from_numpy(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]).float() * rng.uniform(
        0.8, 1.1
    )
    colors = skin.expand(len(pos0), 3).clone()
    waist_y = float(r.positions[r.is_in((PELVIS,)), 1].max()) + 0.02
    sleeve = rng.choice([0.25, 0.38, 0.7])  # |x| reach of the sleeves: sleeveless, short, long
    torso = r.is_in(TORSO_JOINTS) | r.is_in((13, 14))
    arms = r.is_in(UPPER_ARM_JOINTS + FOREARM_JOINTS)
    top = (torso & (y > waist_y)) | (arms & (x.abs() < sleeve))
    neckline = float(r.positions[r.is_in((12,)), 1].min()) - rng.uniform(0.0, 0.08)
    top &= y < neckline
    first, second = _garment_colour(rng), _garment_colour(rng)
    colors[top] = _pattern(rng, pos0[top], first, second)
    skirt = bool(rng.random() < 0.3)
    legs = r.is_in(THIGH_JOINTS + SHIN_JOINTS + (PELVIS,))
    hem_y = -1.08 if skirt else float(rng.choice([-0.55, -0.85, -1.08]))
    bottom = ((torso | legs) & (y <= waist_y) & (y > hem_y)) | (legs & (y > hem_y))
    bottom &= ~top
    bottom_first, bottom_second = _garment_colour(rng) * 0.8, _garment_colour(rng) * 0.8
    if skirt:  # tights or bare legs under the skirt
        colors[bottom] = skin * 0.9 if rng.random() < 0.5 else bottom_first * 0.6
    else:
        colors[bottom] = _pattern(rng, pos0[bottom], bottom_first, bottom_second)
    shoes = r.is_in(FOOT_JOINTS) | (r.is_in(SHIN_JOINTS) & (y < -1.08))
    colors[shoes] = _garment_colour(rng) * 0.7
    hands = r.is_in(HAND_JOINTS)
    colors[hands] = skin

    face_front = (pos0[:, 2] > float(r.head_centre[2])) & r.is_in((HEAD, JAW))
    brows = face_front & ((y - (eye_y + 0.45 * iod)).abs() < 0.13 * iod)
    brows &= (x.abs() - 0.55 * iod).abs() < 0.4 * iod
    colors[brows] = hair_colour * 0.8
    lips_colour = skin * torch.tensor([0.85, 0.45, 0.45]) * rng.uniform(0.8, 1.0)
    mouth = r.mouth
    lips = face_front & ((x / (0.42 * iod)) ** 2 + ((y - mouth[1]) / (0.14 * iod)) ** 2 < 1.0)
    colors[lips] = lips_colour
    eyes = r.is_in((LEFT_EYE, RIGHT_EYE))
    colors[eyes] = torch.tensor([0.95, 0.95, 0.93])
    cheeks = face_front & (((x.abs() - 0.8 * iod) ** 2 + (y - (eye_y - 0.7 * iod)) ** 2).sqrt() < 0.35 * iod)

    # Baked soft light from the front-top so shapes read without a lighting model.
    light = torch.nn.functional.normalize(torch.tensor([0.3, 0.6, 0.75]), dim=0)
    shade = 0.72 + 0.28 * (normal @ light).clamp(min=0)

    # --- hair: which scalp anchors, and the style ---------------------------------------------------
    head = r.is_in((HEAD,))
    depth = pos0[:, 2] - float(r.head_centre[2])  # > 0 towards the face
    hairline = (
        eye_y + 0.6 * iod + 0.9 * iod * (depth / 0.1).clamp(-1, 1)
    )  # low at the back, high at the front
    scalp = head & (y > hairline - iod * 0.6 * (depth < 0))
    style = rng.choice(["short", "long", "bun", "shaved"], p=[0.35, 0.35, 0.15, 0.15])
    colors[scalp] = hair_colour * (0.6 if style == "shaved" else 1.0) + skin * (
        0.4 if style == "shaved" else 0.0
    )

    # --- surface Gaussians: one flat disc per anchor --------------------------------------------------
    loose = rng.uniform(0.0, 0.03) * (top & torso).float() * ((waist_y + 0.35 - y) / 0.35).clamp(0, 1)
    offsets = normal * (loose + 0.004 * shoes.float())[:, None]
    radius = (0.7 * spacing).clamp(max=0.03)
    noise = torch.from_numpy(rng.normal(0, 0.03, (len(pos0), 3))).float()
    surface_colors = (colors * shade[:, None] * (1.0 + noise)).clamp(0, 1)
    kind = torch.where(cheeks, CHEEK, STATIC)
    anchors = torch.arange(len(pos0))
    cloud.add(
        own + offsets,
        surface_colors,
        torch.stack([radius, radius, 0.25 * radius], -1),
        template.anchor_weights,
        frames_from_normals(normal),
        opacity=0.98,
        anchor=anchors,
        normals=normal,
    )
    cloud.parts[-1]["kind"] = kind

    # --- eyes: iris and pupil discs on each eyeball, skinned to the eye joint (they follow gaze) --------
    iris_colour = torch.from_numpy(IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))]).float()
    for side, joint in ((0, LEFT_EYE), (1, RIGHT_EYE)):
        centre = r.eye_centres[side] + shift[r.joint == joint].mean(0)
        front = torch.tensor([0.0, 0.0, r.eye_radius])
        w = cloud.one_hot({joint: 1.0})
        cloud.add(
            (centre + 1.02 * front)[None],
            iris_colour,
            torch.tensor([0.42, 0.42, 0.06]) * r.eye_radius,
            w,
            opacity=1.0,
        )
        cloud.add(
            (centre + 1.06 * front)[None],
            torch.tensor([0.02, 0.02, 0.02]),
            torch.tensor([0.2, 0.2, 0.05]) * r.eye_radius,
            w,
            opacity=1.0,
        )

    # --- mouth opening: a dark slit along the lips, taller with the jaw (kind MOUTH) ------------------
    mx = torch.linspace(-0.3 * iod, 0.3 * iod, 7)
    mouth_pts = torch.stack(
        [mx, torch.full_like(mx, float(mouth[1])), torch.full_like(mx, float(mouth[2]))], -1
    )
    idx = torch.from_numpy(nearest_anchor(mouth_pts.numpy(), pos0))
    mouth_pos = own[idx] + normal[idx] * 0.0025
    cloud.add(
        mouth_pos,
        torch.tensor([0.22, 0.04, 0.05]),
        torch.tensor([0.07, 0.02, 0.01]) * iod,
        template.anchor_weights[idx],
        kind=MOUTH,
        anchor=idx,
        opacity=0.9,
    )

    # --- hair volume ---------------------------------------------------------------------------------
    if style != "shaved":
        layers = 2
        thickness = rng.uniform(0.012, 0.03)
        scalp_idx = torch.nonzero(scalp).squeeze(1)
        hw = cloud.one_hot({HEAD: 1.0})
        for k in range(1, layers + 1):
            jitter = torch.from_numpy(rng.normal(0, 0.004, (len(scalp_idx), 3))).float()
            cloud.add(
                own[scalp_idx] + normal[scalp_idx] * thickness * k / layers + jitter,
                hair_colour * shade[scalp_idx, None] * rng.uniform(0.85, 1.1),
                (spacing[scalp_idx, None] * 0.9).expand(-1, 3),
                hw,
                anchor=scalp_idx,
                normals=normal[scalp_idx],
            )
        if style == "long":
            _long_hair(cloud, rng, r, own, hair_colour, eye_y, iod, thickness)
        if style == "bun":
            centre = r.head_centre + shift[head].mean(0) + torch.tensor([0.0, 0.07, -0.09])
            pts = centre + torch.from_numpy(rng.normal(0, 0.022, (150, 3))).float()
            cloud.add(pts, hair_colour * 0.9, torch.full((3,), 0.012), hw)

    # --- skirt, cap, backpack ----------------------------------------------------------------------------
    if skirt:
        _skirt(cloud, rng, r, own, waist_y, _pattern, bottom_first, bottom_second)
    if rng.random() < 0.3:
        _cap(cloud, rng, r, own, eye_y, iod, thickness=0.035)
    if rng.random() < 0.35:
        _backpack(cloud, rng, r, own)

    parts = cloud.cat()
    missing = parts["anchor"] < 0
    parts["anchor"][missing] = torch.from_numpy(nearest_anchor(parts["positions"][missing].numpy(), own))
    return Identity(
        name=name,
        betas=betas,
        anchor=parts["anchor"],
        offset=parts["positions"] - own[parts["anchor"]],
        weights=parts["weights"],
        quats=matrix_to_quat(parts["rotations"]),
        scales=parts["scales"],
        opacities=parts["opacities"],
        colors=parts["colors"],
        kind=parts["kind"],
        normals=parts["normals"],
        blush=(skin * torch.tensor([1.0, 0.55, 0.55])).clamp(0, 1),
    )


def _long_hair(
    cloud: _Cloud,
    rng: np.random.Generator,
    r: BodyRegions,
    own: Tensor,
    colour: Tensor,
    eye_y: float,
    iod: float,
    thickness: float,
) -> None:
    """A curtain of hair behind the head and neck down to the shoulders, blending from head to spine."""
    length = rng.uniform(0.15, 0.3)
    head = r.is_in((HEAD,))
    centre = r.head_centre + (own - r.positions)[head].mean(0)
    phi = torch.linspace(-0.55 * np.pi, 0.55 * np.pi, 26)
    drop = torch.linspace(0.0, 1.0, max(int(length / 0.012), 2))
    p, d = torch.meshgrid(phi, drop, indexing="ij")
    radius_x = 0.095 + thickness + 0.03 * d
    radius_z = 0.10 + thickness + 0.02 * d
    pts = torch.stack(
        [radius_x * torch.sin(p), centre[1] + 0.02 - d * (float(centre[1]) + 0.02 - (eye_y - length)) + 0 * p,
         centre[2] - radius_z * torch.cos(p)], -1,
    ).reshape(-1, 3)  # fmt: skip
    t = d.reshape(-1, 1)
    weights = (1 - 0.8 * t) * cloud.one_hot({HEAD: 1.0}) + 0.8 * t * cloud.one_hot({SPINE3: 1.0})
    cloud.add(
        pts + torch.from_numpy(rng.normal(0, 0.003, pts.shape)).float(),
        colour,
        torch.full((3,), 0.011),
        weights,
    )


def _skirt(
    cloud: _Cloud,
    rng: np.random.Generator,
    r: BodyRegions,
    own: Tensor,
    waist_y: float,
    pattern,
    first: Tensor,
    second: Tensor,
) -> None:
    """A flared cone from the waist; its lower rows follow the thighs more than the pelvis."""
    hem = waist_y - rng.uniform(0.3, 0.6)
    flare = rng.uniform(0.1, 0.35)
    pelvis = r.is_in((PELVIS,))
    centre = r.positions[pelvis].mean(0) + (own - r.positions)[pelvis].mean(0)
    half_x = float((r.positions[pelvis, 0]).abs().max()) + 0.02
    half_z = float((r.positions[pelvis, 2] - centre[2]).abs().max()) + 0.02
    rows = torch.linspace(0.0, 1.0, max(int((waist_y - hem) / 0.015), 2))
    phi = torch.linspace(-np.pi, np.pi, 64)[:-1]
    t, p = torch.meshgrid(rows, phi, indexing="ij")
    grow = 1.0 + flare * t * (waist_y - hem) / 0.2
    pts = torch.stack(
        [
            half_x * grow * torch.sin(p),
            waist_y - t * (waist_y - hem),
            centre[2] + half_z * grow * torch.cos(p),
        ],
        -1,
    ).reshape(-1, 3)
    t, side = t.reshape(-1, 1), torch.sigmoid(pts[:, :1] / 0.04)
    weights = (1 - 0.7 * t) * cloud.one_hot({PELVIS: 1.0}) + 0.7 * t * (
        side * cloud.one_hot({1: 1.0}) + (1 - side) * cloud.one_hot({2: 1.0})
    )
    colours = pattern(rng, pts, first, second) * (0.8 + 0.2 * torch.cos(p.reshape(-1, 1)).clamp(min=0))
    normals = torch.nn.functional.normalize(
        torch.stack([torch.sin(p), 0 * p, torch.cos(p)], -1).reshape(-1, 3), dim=-1
    )
    cloud.add(
        pts,
        colours,
        torch.tensor([0.012, 0.012, 0.003]),
        weights,
        frames_from_normals(normals),
        normals=normals,
    )


def _cap(
    cloud: _Cloud,
    rng: np.random.Generator,
    r: BodyRegions,
    own: Tensor,
    eye_y: float,
    iod: float,
    thickness: float,
) -> None:
    """A cap: a dome over the top of the head and a visor over the eyes."""
    colour = _garment_colour(rng)
    top = r.is_in((HEAD,)) & (r.positions[:, 1] > eye_y + 0.9 * iod)
    idx = torch.nonzero(top).squeeze(1)
    w = cloud.one_hot({HEAD: 1.0})
    cloud.add(
        own[idx] + r.normals[idx] * thickness,
        colour,
        (r.spacing[idx, None] * 1.1).expand(-1, 3),
        w,
        anchor=idx,
    )
    centre = r.head_centre + (own - r.positions)[r.is_in((HEAD,))].mean(0)
    u, v = torch.meshgrid(torch.linspace(-1, 1, 14), torch.linspace(0, 1, 6), indexing="ij")
    front = float(r.positions[top, 2].max())
    visor = torch.stack(
        [
            0.085 * u * (1 - 0.3 * v),
            torch.full_like(u, eye_y + 1.0 * iod),
            centre[2] + front + 0.005 + 0.06 * v * (1 - u**2).sqrt(),
        ],
        -1,
    ).reshape(-1, 3)
    cloud.add(visor, colour * 0.85, torch.tensor([0.008, 0.002, 0.008]), w)


def _backpack(cloud: _Cloud, rng: np.random.Generator, r: BodyRegions, own: Tensor) -> None:
    """A box on the back, skinned to the upper spine."""
    colour = _garment_colour(rng)
    back = r.is_in((6, SPINE3))
    size = torch.tensor([rng.uniform(0.22, 0.3), rng.uniform(0.28, 0.38), rng.uniform(0.08, 0.14)])
    centre = (own[back].mean(0) * torch.tensor([1.0, 1.0, 0.0])) + torch.tensor(
        [0.0, -0.02, float(own[back, 2].min()) - size[2] / 2 - 0.01]
    )
    g = torch.linspace(-0.5, 0.5, 9)
    a, b = torch.meshgrid(g, g, indexing="ij")
    faces = []
    for axis in range(3):
        for sign in (-0.5, 0.5):
            coords = [a.reshape(-1), b.reshape(-1)]
            coords.insert(axis, torch.full((a.numel(),), sign))
            faces.append(torch.stack(coords, -1))
    pts = centre + torch.cat(faces) * size
    shade = 0.75 + 0.25 * torch.cat(faces)[:, 1:2].clamp(min=0) * 2
    cloud.add(pts, colour * shade, (size.max() / 14).expand(3), cloud.one_hot({SPINE3: 0.7, 6: 0.3}))


def dynamic_attributes(identity: Identity, opening: Tensor, smile: Tensor) -> tuple[Tensor, Tensor]:
    """Per-frame ``scales [T, G, 3]`` and ``colors [T, G, 3]``: the mouth slit grows with ``opening [T]``
    (0 closed .. about 1 wide open) and the cheeks take the blush colour with ``smile [T]`` in [0, 1]."""
    frames = opening.shape[0]
    scales = identity.scales.expand(frames, -1, -1).clone()
    colors = identity.colors.expand(frames, -1, -1).clone()
    mouth, cheek = identity.kind == MOUTH, identity.kind == CHEEK
    scales[:, mouth, 1] *= (1.0 + MOUTH_OPEN_GAIN * opening.clamp(0, 1.5))[:, None]
    mix = (0.6 * smile.clamp(0, 1))[:, None, None]
    colors[:, cheek] = colors[:, cheek] * (1 - mix) + identity.blush * mix
    return scales, colors
