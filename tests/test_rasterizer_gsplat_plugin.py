"""The ``gsplat`` plugin's call into gsplat, checked on the CPU.

gsplat's kernels need CUDA, so ``gsplat.rasterization`` is replaced here by a stand-in that
1. binds the call to the real function's signature (a misspelled or dropped keyword fails),
2. enforces gsplat 1.5.3's input rules for what the plugin passes: ``[B, N, ...]`` Gaussians,
   ``[B, C, ...]`` cameras, ``backgrounds [B, C, D]`` with D the colour channels, to which ``"RGB+D"``
   itself appends the depth channel and a zero background channel (``gsplat/rendering.py``), and
3. renders with the toolkit's ``torch`` rasterizer in gsplat's output layout (channels last).
The plugin must then give what the ``torch`` plugin gives. Whether gsplat's kernels equal the ``torch``
rasterizer is the gpu-marked test's business (``test_rasterizer_torch.py``).
"""

from __future__ import annotations

import inspect

import gsplat
import pytest
import torch
from test_rasterizer_torch import random_cameras, random_scene

from lca.gaussians import Gaussians
from lca.rasterization import rasterize
from lca.rasterization.inputs import prepare_inputs
from lca_plugins.rasterizers.gsplat_cuda import GsplatRasterizer, GsplatRasterizerConfig, gsplat_render
from lca_plugins.rasterizers.torch_tiles import TorchRasterizer, TorchRasterizerConfig

REAL_RASTERIZATION = gsplat.rasterization


def stand_in(*args, **kwargs):
    """gsplat.rasterization's contract on the CPU (see the module docstring)."""
    call = inspect.signature(REAL_RASTERIZATION).bind(*args, **kwargs)
    call.apply_defaults()
    a = call.arguments
    means, viewmats, colors, backgrounds = a["means"], a["viewmats"], a["colors"], a["backgrounds"]
    batch, c = viewmats.shape[:-3], viewmats.shape[-3]
    assert a["sh_degree"] is None and colors.shape == (*means.shape[:-1], 3), "RGB colours [..., N, 3]"
    assert a["Ks"].shape == (*batch, c, 3, 3) and a["quats"].shape[-1] == 4
    assert a["rasterize_mode"] == "classic" and a["camera_model"] == "pinhole"
    if backgrounds is not None:
        assert backgrounds.shape == (*batch, c, colors.shape[-1]), (
            f"backgrounds {tuple(backgrounds.shape)}: gsplat appends the depth channel's zero itself"
        )
    depth = a["render_mode"] == "RGB+D"
    assert a["render_mode"] in ("RGB", "RGB+D")
    g = Gaussians(means=means, quats=a["quats"], scales=a["scales"], opacities=a["opacities"], colors=colors)
    out = rasterize(
        g,
        viewmats,
        a["Ks"],
        a["width"],
        a["height"],
        backgrounds,
        depth,
        near_plane=a["near_plane"],
        far_plane=a["far_plane"],
        eps2d=a["eps2d"],
    )
    last = lambda x: x.permute(0, 1, 3, 4, 2)  # noqa: E731  [B, C, X, H, W] -> [B, C, H, W, X]
    image = torch.cat([out.color, out.depth], dim=2) if depth else out.color
    return last(image), last(out.alpha), {}


@pytest.mark.parametrize("render_depth", [False, True])
@pytest.mark.parametrize("batched", [False, True])
def test_plugin_call_matches_torch_plugin(monkeypatch, render_depth: bool, batched: bool) -> None:
    monkeypatch.setattr(gsplat, "rasterization", stand_in)
    width, height = 24, 16
    scene = random_scene(60, 3, torch.float32)
    viewmats, Ks = random_cameras(2, 3, width, height, torch.float32)
    background = torch.tensor([0.2, 0.5, 0.9])
    if batched:
        scene, viewmats, Ks = (
            Gaussians.stack([scene, scene]),
            viewmats.expand(2, -1, -1, -1),
            Ks.expand(2, -1, -1, -1),
        )
    inp = prepare_inputs(scene, viewmats, Ks, width, height, background)
    ours = gsplat_render(inp, width, height, render_depth, GsplatRasterizerConfig())
    reference = TorchRasterizer(TorchRasterizerConfig())(
        scene, viewmats, Ks, width, height, background, render_depth
    )
    assert ours.color.shape == reference.color.shape == (*viewmats.shape[:-2], 3, height, width)
    torch.testing.assert_close(ours.color, reference.color)
    torch.testing.assert_close(ours.alpha, reference.alpha)
    if render_depth:
        torch.testing.assert_close(ours.depth, reference.depth)
    else:
        assert ours.depth is None


def test_plugin_refuses_cpu_tensors_before_touching_gsplat(monkeypatch) -> None:
    def must_not_run(*args, **kwargs):
        raise AssertionError("gsplat.rasterization was called with CPU tensors")

    monkeypatch.setattr(gsplat, "rasterization", must_not_run)
    scene = random_scene(10, 0, torch.float32)
    viewmats, Ks = random_cameras(1, 0, 8, 8, torch.float32)
    with pytest.raises(RuntimeError, match=r"needs CUDA tensors.*rasterizer=torch"):
        GsplatRasterizer(GsplatRasterizerConfig())(scene, viewmats, Ks, 8, 8)
