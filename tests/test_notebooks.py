"""Every notebook in notebooks/ executes end to end at a tiny size (papermill parameters, tiny synthetic
stores) and draws its figures; the notebooks build variants only through the registry. The shared code the
notebooks use (:mod:`lca.compare`) is checked against closed-form cases."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest
import torch

from lca import compare

matplotlib.use("Agg")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# name -> (tiny papermill parameters, figures the notebook must draw at that size)
TINY_RUNS: dict[str, tuple[dict, int]] = {
    "compare_encoders": ({"steps": 2, "resolution": 32, "eval_views": 2}, 4),
    "compare_blocks": ({"steps": 2, "resolution": 32, "eval_views": 2}, 4),
    "compare_drivers": ({"steps": 2, "resolution": 32, "eval_every": 1, "eval_views": 2, "face_size": 16}, 3),
    "compare_rasterizers": ({"counts": [100, 300], "resolution": 32, "repeats": 1, "num_anchors": 200}, 2),
    "compare_tokenizers": ({"steps": 2, "resolution": 32, "eval_views": 2}, 4),
}


@pytest.fixture(scope="module")
def tiny_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Wild-video and studio stores of 3 people (train, train, test: lca.splits) at 32 px."""
    from lca.data.synth import synthesize

    root = tmp_path_factory.mktemp("notebook-stores")
    wild = synthesize("wild-video", root / "wild.zarr", identities=3, frames=3, resolution=32, progress=False)
    studio = synthesize(
        "studio", root / "studio.zarr", identities=3, frames=2, cameras=3, resolution=32, progress=False
    )
    return {"wild_store": str(wild), "studio_store": str(studio)}


def _code(notebook: dict) -> list[str]:
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_every_notebook_has_a_tiny_run() -> None:
    assert {path.stem for path in NOTEBOOKS.glob("*.ipynb")} == set(TINY_RUNS)


@pytest.mark.parametrize("name", sorted(TINY_RUNS))
def test_notebook_builds_through_the_registry(name: str) -> None:
    notebook = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    tagged = [c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "one cell tagged 'parameters' (papermill)"
    assert all("lca_plugins" not in source for source in _code(notebook)), "plugin classes imported directly"
    assert any("torch.set_num_threads(1)" in source for source in _code(notebook))


@pytest.mark.parametrize("name", sorted(TINY_RUNS))
def test_notebook_executes_at_tiny_size(name: str, tiny_stores: dict[str, str], tmp_path: Path) -> None:
    import papermill

    parameters, figures = TINY_RUNS[name]
    notebook = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    source = "".join(_code(notebook))
    parameters = {**parameters, "tiny": True}
    parameters |= {k: v for k, v in tiny_stores.items() if f"{k} =" in source}
    out = tmp_path / f"{name}.ipynb"
    # Raises PapermillExecutionError (with the failing cell's traceback) if any cell fails.
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    executed = json.loads(out.read_text(encoding="utf-8"))
    images = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= figures


# ------------------------------------------------------------------------------------------ lca.compare
def test_crop_boxes_matches_slicing_and_blanks_empty_boxes() -> None:
    images = torch.rand(2, 3, 20, 30)
    boxes = torch.tensor([[4.0, 2.0, 12.0, 10.0], [5.0, 5.0, 5.0, 9.0]])  # the second is empty
    crops = compare.crop_boxes(images, boxes, size=8)
    assert crops.shape == (2, 3, 8, 8)
    torch.testing.assert_close(crops[0], images[0, :, 2:10, 4:12])  # an 8x8 box resized to 8: unchanged
    assert not crops[1].any()


def test_markdown_table_lays_out_rows_and_missing_cells() -> None:
    table = compare.markdown_table({"a": {"x": 1.23456, "y": 2.0}, "b": {"y": 30.0}}, significant=3)
    assert table.splitlines() == [
        "| variant | x | y |",
        "|---|---:|---:|",
        "| a | 1.23 | 2 |",
        "| b |  | 30 |",
    ]


def test_parameter_count_and_forward_seconds() -> None:
    layer = torch.nn.Linear(3, 4)
    assert compare.parameter_count(layer) == 3 * 4 + 4
    calls: list[bool] = []
    seconds = compare.forward_seconds(lambda: calls.append(torch.is_grad_enabled()), repeats=2)
    assert calls == [False, False, False] and seconds >= 0  # warm-up + 2 timed calls, no gradients


def test_plots_draw_one_artist_per_variant() -> None:
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    compare.plot_curves(ax, {"a": [3.0, 2.0, 1.0], "b": [1.0, 1.0, 1.0]})
    assert len(ax.lines) == 2
    compare.plot_bars(ax, {"a": {"x": 1.0, "y": 2.0}, "b": {"x": 3.0}}, ylabel="v")
    assert len(ax.patches) == 4  # two keys x two variants (b's missing y is a NaN bar)
    grid = compare.image_grid({"gt": torch.rand(3, 3, 8, 8), "model": torch.rand(2, 3, 8, 8)})
    assert len(grid.axes) == 6
    plt.close("all")
