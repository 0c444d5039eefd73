"""Benchmark: forward+backward time and peak memory of the ``torch`` rasterizer against a naive dense renderer
and hbb1/torch-splatting's pure-PyTorch renderer (and ``gsplat`` with ``--device cuda``).

    python bench/rasterizer.py --hbb1 /path/to/torch-splatting [--device cpu|cuda]

Every (method, case) runs in a fresh subprocess. CPU memory is the subprocess's peak RSS
(``ru_maxrss``) minus its RSS just before the timed call, so it counts every tensor the call allocates,
autograd's saved ones included; on CUDA it is ``torch.cuda.max_memory_allocated`` above the inputs.
hbb1's renderer hard-codes ``device="cuda"`` and a 256x256 pixel grid: its module source is read from the
given checkout and those two literals are substituted at load time, and two imports it does not use for RGB
(einops, its SH helper) are dropped (nothing is vendored). Scenes: random
Gaussians around a point 3 m in front of the camera (sigma 0.5 m), scales 5-25 mm, RGB colours, 50 deg FOV.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import types
from pathlib import Path

CASES = [
    (128, 2_000),
    (256, 5_000),
    (256, 20_000),
    (256, 100_000),
    (512, 5_000),
    (512, 20_000),
    (512, 100_000),
]
BYTES_PER_DENSE_PAIR = 48  # naive renderer: ~12 float32 [pixels, N] tensors kept for backward
HBB1_BYTES_PER_GAUSS_PIXEL = 9.8e9 / (20_000 * 256 * 256)  # measured: 9.8 GB at 20k, 256x256
MEMORY_BUDGET = 10e9


def _scene(n: int, size: int, device: str):
    import torch

    from lca.cameras import intrinsics_from_fov
    from lca.gaussians import Gaussians

    gen = torch.Generator().manual_seed(0)
    g = Gaussians(
        means=torch.randn(n, 3, generator=gen) * 0.5 + torch.tensor([0.0, 0.0, 3.0]),
        quats=torch.randn(n, 4, generator=gen),
        scales=torch.rand(n, 3, generator=gen) * 0.02 + 0.005,
        opacities=torch.rand(n, generator=gen) * 0.9 + 0.05,
        colors=torch.rand(n, 3, generator=gen),
    ).to(device)
    viewmat = torch.eye(4, device=device)
    K = intrinsics_from_fov(50.0, size, size).to(device)
    return g.map(lambda t: t.requires_grad_(True)), viewmat, K


def _naive(g, viewmat, K, size: int):
    """Dense reference: every pixel against every Gaussian at once, plain autograd (gsplat's projection)."""
    import torch
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

    covars, _ = _quat_scale_to_covar_preci(g.quats, g.scales, compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        g.means, covars, viewmat[None], K[None], size, size
    )
    keep = (radii[0] > 0).all(-1)
    order = torch.argsort(depths[0].masked_fill(~keep, torch.inf))[: int(keep.sum())]
    m, c = means2d[0, order], conics[0, order]
    ar = torch.arange(size, device=m.device, dtype=m.dtype) + 0.5
    pix = torch.stack(torch.meshgrid(ar, ar, indexing="xy"), -1).reshape(-1, 1, 2)
    d = m[None] - pix
    sigma = 0.5 * (c[:, 0] * d[..., 0] ** 2 + c[:, 2] * d[..., 1] ** 2) + c[:, 1] * d[..., 0] * d[..., 1]
    alpha = torch.clamp(g.opacities[order] * torch.exp(-sigma), max=0.999)
    alpha = torch.where((sigma >= 0) & (alpha >= 1 / 255), alpha, 0.0)
    t = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
    w = alpha * t * (t * (1 - alpha) > 1e-4)
    return w @ g.colors[order]


def _load_hbb1(path: Path, device: str, size: int) -> types.ModuleType:
    root = path / "gaussian_splatting"
    src = (root / "gauss_render.py").read_text()
    src = src.replace("'cuda'", repr(device)).replace('"cuda"', repr(device))
    src = src.replace("torch.arange(256), torch.arange(256)", f"torch.arange({size}), torch.arange({size})")
    src = src.replace("from .utils.sh_utils import eval_sh", "eval_sh = None  # RGB colours only")
    src = src.replace("from einops import reduce", "")  # imported but unused; spares an einops install
    module = types.ModuleType("hbb1_gauss_render")
    module.__file__ = str(root / "gauss_render.py")
    exec(compile(src, module.__file__, "exec"), module.__dict__)
    return module


def _hbb1(module, g, viewmat, K, size: int):
    import math

    import torch

    wv = viewmat.T  # hbb1 (like Inria 3DGS) multiplies row vectors: points @ world_view_transform
    fov = 2 * math.atan(size / (2 * float(K[0, 0])))
    cov3d = module.build_covariance_3d(g.scales, g.quats)
    cov2d = module.build_covariance_2d(g.means, cov3d, wv, fov, fov, float(K[0, 0]), float(K[1, 1]))
    cam = g.means @ viewmat[:3, :3].T + viewmat[:3, 3]
    means2d = (cam[:, :2] / cam[:, 2:]) * K[0, 0] + K[:2, 2]
    renderer = module.GaussRenderer(white_bkgd=False)
    camera = types.SimpleNamespace(image_width=size, image_height=size)
    out = renderer.render(camera, means2d, cov2d, g.colors, g.opacities[:, None], cam[:, 2])
    return torch.cat([out["render"], out["alpha"]], -1)


def worker(method: str, size: int, n: int, device: str, hbb1: str | None) -> dict:
    import torch

    torch.manual_seed(0)
    g, viewmat, K = _scene(n, size, device)
    if method in ("torch", "gsplat"):
        from lca_plugins.rasterizers.gsplat_cuda import GsplatRasterizer, GsplatRasterizerConfig
        from lca_plugins.rasterizers.torch_tiles import TorchRasterizer, TorchRasterizerConfig

        r = (
            TorchRasterizer(TorchRasterizerConfig())
            if method == "torch"
            else GsplatRasterizer(GsplatRasterizerConfig())
        )

        def render(g, viewmat, K, size):
            out = r(g, viewmat[None], K[None], size, size)
            return torch.cat([out.color, out.alpha], 1)

    elif method == "naive":
        render = _naive
    else:
        module = _load_hbb1(Path(hbb1), device, size)

        def render(g, viewmat, K, size):
            return _hbb1(module, g, viewmat, K, size)

    if method != "hbb1":  # warm-up off the clock (hbb1's pixel grid is fixed to `size` at load time)
        render(*_scene(200, 32, device), 32).sum().backward()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sync()
    t0 = time.perf_counter()
    image = render(g, viewmat, K, size)
    sync()
    t1 = time.perf_counter()
    image.sum().backward()
    sync()
    t2 = time.perf_counter()
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"fwd": t1 - t0, "bwd": t2 - t1, "peak": peak}


def _skip_reason(method: str, size: int, n: int, hbb1: str | None) -> str | None:
    if method == "hbb1":
        if hbb1 is None or not (Path(hbb1) / "gaussian_splatting" / "gauss_render.py").is_file():
            return "no --hbb1 checkout"
        est = HBB1_BYTES_PER_GAUSS_PIXEL * n * size * size
        if est > MEMORY_BUDGET:
            return f"skipped: ~{est / 1e9:.0f} GB"
    if method == "naive":
        est = BYTES_PER_DENSE_PAIR * n * size * size
        if est > MEMORY_BUDGET:
            return f"skipped: ~{est / 1e9:.0f} GB"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hbb1", help="path of a local checkout of github.com/hbb1/torch-splatting")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per (method, case) subprocess")
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "SIZE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, size, n = args.worker
        print(json.dumps(worker(method, int(size), int(n), args.device, args.hbb1)))
        return
    methods = ["torch", "naive", "hbb1"] + (["gsplat"] if args.device == "cuda" else [])
    header = f"| image | Gaussians | {' | '.join(methods)} | torch speed-up vs hbb1 | vs naive |"
    print(f"device: {args.device}; cells: forward+backward seconds / peak memory above inputs")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for size, n in CASES:
        cells, results = [], {}
        for method in methods:
            reason = _skip_reason(method, size, n, args.hbb1)
            if reason is None:
                cmd = [
                    sys.executable,
                    __file__,
                    "--device",
                    args.device,
                    "--worker",
                    method,
                    str(size),
                    str(n),
                ]
                if args.hbb1:
                    cmd += ["--hbb1", args.hbb1]
                try:
                    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                    if proc.returncode == 0:
                        results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
                    else:
                        reason = f"failed: {proc.stderr.strip().splitlines()[-1][:60]}"
                except subprocess.TimeoutExpired:
                    reason = f"timeout > {args.timeout:.0f} s"
            r = results.get(method)
            cells.append(
                reason if r is None else f"{r['fwd'] + r['bwd']:.2f} s / {r['peak'] / 2**20:.0f} MiB"
            )
        ratios = []
        for other in ("hbb1", "naive"):
            if "torch" in results and other in results:
                t = results["torch"]["fwd"] + results["torch"]["bwd"]
                ratios.append(f"{(results[other]['fwd'] + results[other]['bwd']) / t:.1f}x")
            else:
                ratios.append("-")
        print(f"| {size}x{size} | {n} | {' | '.join(cells)} | {' | '.join(ratios)} |", flush=True)


if __name__ == "__main__":
    main()
