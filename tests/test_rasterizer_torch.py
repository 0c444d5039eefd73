"""The ``torch`` rasterizer against an independent brute-force reference (float64, every pixel x every
Gaussian, sequential front-to-back compositing with gsplat 1.5.3's rules), with the 2D projection taken
from gsplat's own pure-PyTorch functions. Plus the torch-vs-gsplat check on a GPU (skipped on CPU)."""

from __future__ import annotations

import pytest
import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _isect_tiles, _quat_scale_to_covar_preci

from lca.cameras import intrinsics_from_fov, look_at
from lca.gaussians import Gaussians
from lca.rasterization import intersect_tiles, project, rasterize
from lca_plugins.rasterizers.torch_tiles import TorchRasterizer, TorchRasterizerConfig

NEAR, FAR = 0.01, 1e10


def reference_render(g: Gaussians, viewmat, K, width, height, background, eps2d=0.3):
    """One camera, unbatched RGB Gaussians -> color [H, W, 3], alpha [H, W], depth [H, W] (sum w z)."""
    covars, _ = _quat_scale_to_covar_preci(g.quats, g.scales, compute_preci=False)
    _, means2d, depths, conics, _ = _fully_fused_projection(
        g.means, covars, viewmat[None], K[None], width, height, eps2d=eps2d, near_plane=NEAR, far_plane=FAR
    )
    means2d, depths, conics = means2d[0], depths[0], conics[0]
    valid = (depths > NEAR) & (depths < FAR)  # depth culling only; no tile or radius shortcut here
    order = torch.argsort(torch.where(valid, depths, torch.inf))[: int(valid.sum())]
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    pix = torch.stack([xs, ys], -1).reshape(-1, 2).to(g.means) + 0.5  # [P, 2] pixel centres
    color = torch.zeros(pix.shape[0], 3, dtype=g.means.dtype)
    depth = torch.zeros(pix.shape[0], dtype=g.means.dtype)
    T = torch.ones(pix.shape[0], dtype=g.means.dtype)
    done = torch.zeros(pix.shape[0], dtype=torch.bool)
    for i in order.tolist():
        d = means2d[i] - pix
        a, b, c = conics[i]
        sigma = 0.5 * (a * d[:, 0] ** 2 + c * d[:, 1] ** 2) + b * d[:, 0] * d[:, 1]
        alpha = torch.clamp(g.opacities[i] * torch.exp(-sigma), max=0.999)
        active = ~done & (sigma >= 0) & (alpha >= 1.0 / 255.0)
        next_T = T * (1 - alpha)
        stop = active & (next_T <= 1e-4)
        add = active & ~stop
        w = torch.where(add, alpha * T, 0.0)
        color = color + w[:, None] * g.colors[i]
        depth = depth + w * depths[i]
        T = torch.where(add, next_T, T)
        done = done | stop
    color = color + T[:, None] * background
    return color.reshape(height, width, 3), (1 - T).reshape(height, width), depth.reshape(height, width)


def random_scene(n: int, seed: int, dtype=torch.float64) -> Gaussians:
    """Gaussians around the origin, plus some behind the cameras, far off-screen and nearly degenerate."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=gen) * 0.4
    means[: n // 10] *= 8.0  # many end up behind a camera or off-screen
    scales = torch.rand(n, 3, generator=gen) * 0.08 + 0.005
    scales[n // 10 : n // 5, 0] = 1e-7  # flat (degenerate) Gaussians: the eps2d dilation keeps them finite
    scales[n // 5 : n // 5 + 3] = 0.6  # a few large ones spanning many tiles
    return Gaussians(
        means=means,
        quats=torch.randn(n, 4, generator=gen),
        scales=scales,
        opacities=torch.rand(n, generator=gen) * 0.98 + 0.01,
        colors=torch.rand(n, 3, generator=gen),
    ).to(dtype)


def random_cameras(c: int, seed: int, width: int, height: int, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    eye = torch.nn.functional.normalize(torch.randn(c, 3, generator=gen), dim=-1) * 2.5
    target = torch.randn(c, 3, generator=gen) * 0.1
    viewmats = look_at(eye, target)
    Ks = intrinsics_from_fov(50.0, width, height).expand(c, 3, 3).clone()
    Ks[:, 0, 2] += torch.rand(c, generator=gen) * 4 - 2  # off-centre principal points
    return viewmats.to(dtype), Ks.to(dtype)


def _leaves(g: Gaussians) -> Gaussians:
    return g.map(lambda t: t.detach().clone().requires_grad_(True))


@pytest.mark.parametrize(("seed", "chunk_pairs"), [(0, 1 << 22), (1, 2000)])
def test_matches_brute_force_images_and_gradients(seed: int, chunk_pairs: int) -> None:
    """Float64, 2 batch elements x 2 cameras; chunk_pairs=2000 splits tile lists into chained segments."""
    width, height, n = 37, 29, 120  # partial tiles on both axes
    scenes = [random_scene(n, seed), random_scene(n, seed + 10)]
    cams = [random_cameras(2, seed, width, height), random_cameras(2, seed + 10, width, height)]
    bg = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    w_color = torch.rand(2, 2, 3, height, width, generator=gen, dtype=torch.float64)
    w_alpha = torch.rand(2, 2, 1, height, width, generator=gen, dtype=torch.float64)
    w_depth = torch.rand(2, 2, 1, height, width, generator=gen, dtype=torch.float64)

    batch = _leaves(Gaussians.stack(scenes))
    viewmats = torch.stack([c[0] for c in cams])
    Ks = torch.stack([c[1] for c in cams])
    out = rasterize(batch, viewmats, Ks, width, height, bg, render_depth=True, chunk_pairs=chunk_pairs)
    assert out.color.shape == (2, 2, 3, height, width)
    assert out.alpha.shape == out.depth.shape == (2, 2, 1, height, width)
    loss = (out.color * w_color).sum() + (out.alpha * w_alpha).sum() + (out.depth * w_depth).sum()
    loss.backward()

    for bi in range(2):
        ref = _leaves(scenes[bi])
        ref_loss = 0.0
        for ci in range(2):
            color, alpha, depth = reference_render(ref, cams[bi][0][ci], cams[bi][1][ci], width, height, bg)
            torch.testing.assert_close(out.color[bi, ci].detach(), color.permute(2, 0, 1), rtol=0, atol=1e-9)
            torch.testing.assert_close(out.alpha[bi, ci, 0].detach(), alpha, rtol=0, atol=1e-9)
            torch.testing.assert_close(out.depth[bi, ci, 0].detach(), depth, rtol=0, atol=1e-8)
            ref_loss = ref_loss + (color.permute(2, 0, 1) * w_color[bi, ci]).sum()
            ref_loss = ref_loss + (alpha * w_alpha[bi, ci, 0]).sum() + (depth * w_depth[bi, ci, 0]).sum()
        ref_loss.backward()
        for name in ("means", "quats", "scales", "opacities", "colors"):
            got, want = getattr(batch, name).grad[bi], getattr(ref, name).grad
            assert want.abs().max() > 0, name
            torch.testing.assert_close(
                got, want, rtol=1e-6, atol=1e-8, msg=lambda m, name=name: f"{name}: {m}"
            )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("depth", [0.0, 0.005, -0.3])  # at the camera plane, inside the near plane, behind
def test_a_gaussian_at_the_camera_plane_is_culled_without_nan_gradients(
    dtype: torch.dtype, depth: float
) -> None:
    """Gaussian 0 sits at depth ``depth`` of a camera on the z axis (exactly: z is 0.0 in float32 too),
    beside the axis, so x / z is infinite at 0: the images equal those of the scene without it, and every
    gradient is finite (the culled one's are zero)."""
    width, height = 32, 24
    scene = random_scene(40, 3, dtype)
    viewmats = look_at(torch.tensor([[0.0, 0.0, -2.5]]), torch.zeros(1, 3)).to(dtype)
    Ks = intrinsics_from_fov(50.0, width, height)[None].to(dtype)
    means = scene.means.clone()
    means[0] = torch.tensor([0.3, 0.0, -2.5 + depth], dtype=dtype)
    assert (viewmats[0, 2, :3] @ means[0] + viewmats[0, 2, 3]).item() == pytest.approx(depth, abs=1e-6)
    scene = Gaussians(means, scene.quats, scene.scales, scene.opacities, scene.colors)
    bg = torch.tensor([0.2, 0.5, 0.9], dtype=dtype)
    g = _leaves(scene.map(lambda t: t[None]))
    out = rasterize(g, viewmats[None, :1], Ks[None, :1], width, height, bg, render_depth=True)
    (out.color.sum() + out.alpha.sum() + out.depth.sum()).backward()
    for name in ("means", "quats", "scales", "opacities", "colors"):
        grad = getattr(g, name).grad
        assert torch.isfinite(grad).all(), name
        assert not grad[0, 0].any(), name  # culled in the only camera: no gradient at all
    rest = scene.map(lambda t: t[None, 1:])
    without = rasterize(rest, viewmats[None, :1], Ks[None, :1], width, height, bg, render_depth=True)
    torch.testing.assert_close(out.color, without.color, rtol=0, atol=0)
    torch.testing.assert_close(out.depth, without.depth, rtol=0, atol=0)


def test_float32_image_matches_float64_reference() -> None:
    width, height = 48, 32
    scene = random_scene(300, 3)
    viewmats, Ks = random_cameras(1, 3, width, height)
    bg = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    out = rasterize(scene.to(torch.float32), viewmats.float(), Ks.float(), width, height, bg.float())
    color, alpha, _ = reference_render(scene, viewmats[0], Ks[0], width, height, bg)
    assert alpha.max() > 0.5  # the scene is actually visible
    torch.testing.assert_close(out.color[0].double(), color.permute(2, 0, 1), rtol=0, atol=1e-4)
    torch.testing.assert_close(out.alpha[0, 0].double(), alpha, rtol=0, atol=1e-4)


def test_unbatched_inputs_and_spherical_harmonics() -> None:
    """Unbatched Gaussians/cameras drop B; SH degree 0 with DC = (rgb - 0.5) / C0 renders like RGB."""
    width, height = 32, 24
    scene = random_scene(80, 5)
    viewmats, Ks = random_cameras(3, 5, width, height)
    rgb = rasterize(scene, viewmats, Ks, width, height)
    c0 = 0.28209479177387814
    sh = scene.replace(colors=((scene.colors - 0.5) / c0)[:, None, :])
    assert sh.sh_degree == 0
    out = rasterize(sh, viewmats, Ks, width, height)
    assert rgb.color.shape == (3, 3, height, width) and rgb.depth is None
    torch.testing.assert_close(out.color, rgb.color, rtol=0, atol=1e-12)


def test_tile_lists_equal_gsplat_isect() -> None:
    scene = random_scene(150, 7)
    viewmats, Ks = random_cameras(2, 7, 40, 30)
    splats = project(scene.reshape_batch(1), viewmats[None], Ks[None], 40, 30)
    lists = intersect_tiles(splats.means2d, splats.radii, splats.depths, 8, 40, 30)
    _, isect_ids, flatten_ids = _isect_tiles(splats.means2d, splats.radii, splats.depths, 8, 5, 4)
    assert lists.tile_ids.numel() > 100
    tile_n_bits = (5 * 4).bit_length()
    image = (isect_ids >> 32) >> tile_n_bits
    tile = (isect_ids >> 32) & ((1 << tile_n_bits) - 1)
    torch.testing.assert_close(lists.tile_ids, image * 20 + tile)
    torch.testing.assert_close(lists.flat_ids, flatten_ids.long())


def test_plugin_validates_inputs() -> None:
    rasterizer = TorchRasterizer(TorchRasterizerConfig())
    scene = random_scene(10, 0).reshape_batch(1)
    viewmats, Ks = random_cameras(2, 0, 16, 16)
    with pytest.raises(ValueError, match=r"viewmats must be \[B, C, 4, 4\]"):
        rasterizer(scene, viewmats, Ks, 16, 16)
    with pytest.raises(ValueError, match="Ks must be"):
        rasterizer(scene, viewmats[None], Ks, 16, 16)
    with pytest.raises(ValueError, match="background must be"):
        rasterizer(scene, viewmats[None], Ks[None], 16, 16, background=torch.zeros(2, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for gsplat")
def test_torch_matches_gsplat_on_cuda() -> None:
    from lca_plugins.rasterizers.gsplat_cuda import GsplatRasterizer, GsplatRasterizerConfig

    width, height = 64, 48
    scenes = [random_scene(500, 11, torch.float32), random_scene(500, 12, torch.float32)]
    batch = Gaussians.stack(scenes)
    cams = [
        random_cameras(3, 11, width, height, torch.float32),
        random_cameras(3, 12, width, height, torch.float32),
    ]
    viewmats = torch.stack([c[0] for c in cams]).cuda()
    Ks = torch.stack([c[1] for c in cams]).cuda()
    bg = torch.tensor([0.3, 0.6, 0.1], device="cuda")
    weights = torch.rand(2, 3, 5, height, width, device="cuda")
    results = []
    for rasterizer in (TorchRasterizer(TorchRasterizerConfig()), GsplatRasterizer(GsplatRasterizerConfig())):
        g = _leaves(batch.to("cuda"))
        out = rasterizer(g, viewmats, Ks, width, height, bg, render_depth=True)
        image = torch.cat([out.color, out.alpha, out.depth], dim=2)
        (image * weights).sum().backward()
        results.append((image.detach(), {k: v.grad for k, v in g.as_dict().items()}))
    (img_t, grads_t), (img_g, grads_g) = results
    torch.testing.assert_close(img_t, img_g, rtol=1e-4, atol=1e-4)
    for name, grad in grads_t.items():
        scale = grads_g[name].abs().max().clamp(min=1.0)
        torch.testing.assert_close(grad / scale, grads_g[name] / scale, rtol=1e-4, atol=1e-4, msg=name)


def test_plugin_chunk_default_is_the_core_default() -> None:
    """The plugin's config repeats the literal (``lca registry show`` reads defaults from source)."""
    from lca.rasterization.composite import DEFAULT_CHUNK_PAIRS

    assert TorchRasterizerConfig().chunk_pairs == DEFAULT_CHUNK_PAIRS
