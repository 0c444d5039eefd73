"""Gaussians <-> the standard 3D Gaussian Splatting PLY layout (Inria 3DGS, gsplat's exporter, most viewers).

One ``vertex`` element, float32 properties in this order: ``x y z nx ny nz f_dc_0..2 f_rest_0..(3(K-1)-1)
opacity scale_0..2 rot_0..3``, where ``opacity`` is the *logit* of the opacity, ``scale_i`` the *log* of the
scale, ``rot`` the quaternion in wxyz order, normals are zeros, and ``f_rest`` is channel-major (all red
coefficients, then green, then blue), as 3DGS writes ``features_rest.transpose(1, 2)``.

RGB colours are stored as SH degree 0: ``f_dc = (rgb - 0.5) / C0`` (``C0 = 0.28209479177387814``); a file
without ``f_rest`` loads back as RGB, one with ``f_rest`` as SH coefficients ``[N, K, 3]``.

Exactness: the stored values are float32. Reading a file into float64 Gaussians and writing it again gives
the same bytes for every property (the float64 activations invert to the stored float32 exactly). Float32
Gaussians -> file -> Gaussians agrees to float32 rounding of the log/logit/SH-DC transforms (~1e-6 relative).

No file holds a non-finite value: a saturated opacity (exactly 0 or 1 in float32) or a zero scale would
have an infinite logit or log, so both are clamped to ``+-LIMIT`` (88: ``exp(88)`` is still a finite float32,
and ``sigmoid(88)`` is 1 in float32), which leaves every finite stored value as it was; Gaussians with a
NaN or an infinity in any field are refused, before anything is written, with an error naming how many and
which fields.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement

from lca.errors import LcaError
from lca.gaussians import Gaussians

SH_C0 = 0.28209479177387814
LIMIT = 88.0
"""Bound of the stored logits and log-scales (see the module docstring)."""


def ply_property_names(num_rest: int) -> list[str]:
    """The property names in file order for ``num_rest = 3 (K - 1)`` higher-order SH values."""
    return [
        *("x", "y", "z", "nx", "ny", "nz"),
        *(f"f_dc_{i}" for i in range(3)),
        *(f"f_rest_{i}" for i in range(num_rest)),
        "opacity",
        *(f"scale_{i}" for i in range(3)),
        *(f"rot_{i}" for i in range(4)),
    ]


def save_ply(path: str | Path, gaussians: Gaussians) -> Path:
    """Write unbatched ``gaussians`` (``means [N, 3]``) to ``path``; returns the path."""
    if gaussians.batch_shape != torch.Size([]):
        raise ValueError(
            "save_ply: expected unbatched Gaussians (means [N, 3]), got batch shape "
            f"{list(gaussians.batch_shape)}; export one batch element, e.g. g.map(lambda t: t[0])"
        )
    g = gaussians.detach().to("cpu", torch.float64)  # activations inverted in float64, then stored as float32
    n = g.num_gaussians
    fields = {
        "means": g.means,
        "quats": g.quats,
        "scales": g.scales,
        "opacities": g.opacities,
        "colors": g.colors,
    }
    bad = {name: (~torch.isfinite(t)).reshape(n, -1).any(1) for name, t in fields.items()}
    if any(flags.any() for flags in bad.values()):
        count = int(torch.stack(list(bad.values())).any(0).sum())
        raise LcaError(
            f"save_ply: {count} of {n} Gaussians hold non-finite values (in "
            f"{', '.join(name for name, flags in bad.items() if flags.any())}); refusing to write {path}. "
            "They come from the model or its inputs: check the avatar's source (a NaN in the references' "
            "parameters?)."
        )
    if g.sh_degree is None:
        dc, rest = (g.colors - 0.5) / SH_C0, g.colors.new_zeros(n, 0)
    else:
        dc, rest = g.colors[:, 0], g.colors[:, 1:].transpose(1, 2).reshape(n, -1)
    columns = [
        g.means,
        g.means.new_zeros(n, 3),
        dc,
        rest,
        torch.logit(g.opacities).clamp(-LIMIT, LIMIT)[:, None],
        torch.log(g.scales).clamp(-LIMIT, LIMIT),
        g.quats,
    ]
    data = torch.cat(columns, dim=1).numpy().astype(np.float32)
    names = ply_property_names(rest.shape[1])
    vertex = np.empty(n, dtype=[(name, "f4") for name in names])
    for i, name in enumerate(names):
        vertex[name] = data[:, i]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(path))
    return path


def load_ply(path: str | Path, dtype: torch.dtype = torch.float32) -> Gaussians:
    """Read a 3DGS PLY (any property order, extra properties ignored) into unbatched Gaussians."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_ply: no such file: {path}")
    ply = PlyData.read(str(path))
    if "vertex" not in ply:
        raise ValueError(
            f"load_ply: {path} has no 'vertex' element (elements: {[e.name for e in ply.elements]})"
        )
    vertex = ply["vertex"]
    present = {p.name for p in vertex.properties}
    num_rest = sum(1 for name in present if name.startswith("f_rest_"))
    missing = [name for name in ply_property_names(num_rest) if name not in present and name[0] != "n"]
    if missing:
        raise ValueError(f"load_ply: {path} lacks the 3DGS properties {missing}")
    if num_rest % 3 or math.isqrt(num_rest // 3 + 1) ** 2 != num_rest // 3 + 1:
        raise ValueError(f"load_ply: {path} has {num_rest} f_rest values; expected 3 * ((d+1)^2 - 1)")

    def cols(*names: str) -> torch.Tensor:
        return torch.from_numpy(
            np.stack([np.asarray(vertex[name], dtype=np.float64) for name in names], axis=1)
        )

    n = vertex.count
    dc = cols("f_dc_0", "f_dc_1", "f_dc_2")
    if num_rest:
        rest = cols(*(f"f_rest_{i}" for i in range(num_rest))).reshape(n, 3, -1).transpose(1, 2)
        colors = torch.cat([dc[:, None], rest], dim=1)
    else:
        colors = dc * SH_C0 + 0.5
    return Gaussians(
        means=cols("x", "y", "z"),
        quats=cols("rot_0", "rot_1", "rot_2", "rot_3"),
        scales=torch.exp(cols("scale_0", "scale_1", "scale_2")),
        opacities=torch.sigmoid(cols("opacity")[:, 0]),
        colors=colors,
    ).to(dtype)
