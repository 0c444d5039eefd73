"""The preview grid: layout, the target as the losses see it (person over black) and the error map."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from lca.contracts.model import ModelOutput
from lca.train.preview import error_map, preview_grid


def test_grid_shows_the_masked_target_and_its_error() -> None:
    h = w = 6
    image = torch.full((1, 2, 3, h, w), 0.8)
    mask = torch.zeros(1, 2, 1, h, w)
    mask[..., :, : w // 2] = 1.0  # left half is the person
    driven = image * mask  # a perfect render of the person over black
    targets = SimpleNamespace(images=image, masks=mask, valid=torch.tensor([[True, False]]))
    batch = SimpleNamespace(targets=targets, references=SimpleNamespace(images=torch.rand(1, 3, 3, h, w)))
    empty = torch.zeros(0)
    output = ModelOutput(
        driven=driven, driven_alpha=mask, offsets=empty, scales=empty, part_labels=empty, canonical=driven
    )
    grid = preview_grid(output, batch)
    pad = 2
    assert grid.shape == (3, h + 2 * pad, 5 * (w + pad) + pad)  # one valid row of five tiles

    def tile(i: int) -> torch.Tensor:
        x0 = pad + i * (w + pad)
        return grid[:, pad : pad + h, x0 : x0 + w]

    torch.testing.assert_close(tile(1), driven[0, 0])  # target: the person over black
    torch.testing.assert_close(tile(4), torch.zeros(3, h, w))  # perfect render: no error anywhere


def test_error_map_scale() -> None:
    pred, target = torch.zeros(3, 1, 3), torch.tensor([0.0, 0.25, 0.5]).expand(3, 1, 3)
    heat = error_map(pred, target)
    torch.testing.assert_close(heat[0, 0], torch.tensor([0.0, 1.0, 1.0]))  # red saturates at error 0.25
    torch.testing.assert_close(heat[1, 0], torch.tensor([0.0, 0.0, 1.0]))  # yellow at error >= 0.5
