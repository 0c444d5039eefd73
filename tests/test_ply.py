"""PLY export/import in the standard 3DGS layout, checked against plyfile and gsplat's own exporter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gsplat.exporter import export_splats
from plyfile import PlyData

from lca.gaussians import Gaussians
from lca.ply import SH_C0, load_ply, ply_property_names, save_ply


def _scene(n: int, sh_degree: int | None, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    colors = (
        torch.rand(n, 3, generator=gen)
        if sh_degree is None
        else torch.randn(n, (sh_degree + 1) ** 2, 3, generator=gen)
    )
    return Gaussians(
        means=torch.randn(n, 3, generator=gen),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1),
        scales=torch.rand(n, 3, generator=gen) * 0.1 + 1e-3,
        opacities=torch.rand(n, generator=gen) * 0.98 + 0.01,
        colors=colors,
    )


def _arrays(path: Path) -> dict[str, np.ndarray]:
    vertex = PlyData.read(str(path))["vertex"]
    return {p.name: np.asarray(vertex[p.name]) for p in vertex.properties}


@pytest.mark.parametrize("sh_degree", [None, 0, 3])
def test_standard_property_names_and_values(tmp_path: Path, sh_degree: int | None) -> None:
    g = _scene(50, sh_degree)
    arrays = _arrays(save_ply(tmp_path / "a.ply", g))
    num_rest = 0 if sh_degree is None else 3 * ((sh_degree + 1) ** 2 - 1)
    assert list(arrays) == ply_property_names(num_rest)
    assert list(arrays)[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert all(a.dtype == np.float32 for a in arrays.values())
    np.testing.assert_allclose(arrays["opacity"], torch.logit(g.opacities).numpy(), rtol=1e-5)
    np.testing.assert_allclose(arrays["scale_2"], torch.log(g.scales[:, 2]).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(arrays["rot_0"], g.quats[:, 0].numpy())  # w first
    if sh_degree is None:
        np.testing.assert_allclose(
            arrays["f_dc_1"], ((g.colors[:, 1] - 0.5) / SH_C0).numpy(), rtol=1e-6, atol=1e-6
        )
    elif sh_degree == 3:  # channel-major f_rest: index c * 15 + k holds coefficient k+1 of channel c
        np.testing.assert_array_equal(arrays["f_rest_17"], g.colors[:, 3, 1].numpy())


@pytest.mark.parametrize("sh_degree", [None, 2])
def test_round_trip(tmp_path: Path, sh_degree: int | None) -> None:
    g = _scene(64, sh_degree)
    first = save_ply(tmp_path / "a.ply", g)
    back = load_ply(first)
    assert back.sh_degree == g.sh_degree and back.dtype == torch.float32
    for name, value in g.as_dict().items():
        torch.testing.assert_close(getattr(back, name), value, rtol=2e-6, atol=2e-7, msg=name)
    # Exact: file -> float64 Gaussians -> file reproduces every stored float32 bit for bit.
    second = save_ply(tmp_path / "b.ply", load_ply(first, dtype=torch.float64))
    a, b = _arrays(first), _arrays(second)
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_matches_gsplat_exporter(tmp_path: Path) -> None:
    """gsplat's ``export_splats`` takes the raw (log / logit) values; every shared property must agree."""
    g = _scene(40, 1)
    ours = _arrays(save_ply(tmp_path / "ours.ply", g))
    export_splats(
        means=g.means,
        scales=torch.log(g.scales),
        quats=g.quats,
        opacities=torch.logit(g.opacities),
        sh0=g.colors[:, :1],
        shN=g.colors[:, 1:],
        format="ply",
        save_to=str(tmp_path / "gsplat.ply"),
    )
    theirs = _arrays(tmp_path / "gsplat.ply")
    assert set(theirs) == set(ours) - {"nx", "ny", "nz"}
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_ply(tmp_path / "missing.ply")
    with pytest.raises(ValueError, match="unbatched"):
        save_ply(tmp_path / "x.ply", _scene(4, None).reshape_batch(1))


def test_saturated_opacities_and_zero_scales_are_finite_in_the_file(tmp_path: Path) -> None:
    """A float32 sigmoid saturates to exactly 0 or 1 and a scale can underflow to 0: their logit/log would be
    infinite. The file holds finite values that load back to the same activations (sigmoid(88) == 1 in
    float32), and the other Gaussians' values are untouched."""
    g = _scene(6, None)
    opacities, scales = g.opacities.clone(), g.scales.clone()
    opacities[0], opacities[1], scales[2, 1] = 1.0, 0.0, 0.0
    g = Gaussians(means=g.means, quats=g.quats, scales=scales, opacities=opacities, colors=g.colors)
    path = save_ply(tmp_path / "s.ply", g)
    arrays = _arrays(path)
    assert all(np.isfinite(values).all() for values in arrays.values())
    assert arrays["opacity"][0] == 88.0 and arrays["opacity"][1] == -88.0 and arrays["scale_1"][2] == -88.0
    np.testing.assert_allclose(arrays["opacity"][3:], torch.logit(opacities[3:].double()).numpy(), rtol=1e-6)
    back = load_ply(path)
    assert back.opacities[0] == 1.0 and back.opacities[1] < 1e-38 and back.scales[2, 1] < 1e-38


@pytest.mark.parametrize("field", ["means", "scales", "opacities", "colors", "quats"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_gaussians_are_refused_and_nothing_is_written(
    tmp_path: Path, field: str, value: float
) -> None:
    from lca.errors import LcaError

    g = _scene(5, None)
    values = {name: getattr(g, name).clone() for name in ("means", "quats", "scales", "opacities", "colors")}
    values[field].view(-1)[3] = value
    if field == "opacities" and value == float("inf"):
        values[field].view(-1)[3] = float("nan")  # an opacity above 1 is not an opacity; NaN is the case
    with pytest.raises(LcaError, match=r"save_ply: 1 of 5 Gaussians hold non-finite values"):
        save_ply(tmp_path / "bad.ply", Gaussians(**values))
    assert not (tmp_path / "bad.ply").exists()
