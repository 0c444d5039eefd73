"""Every named pipeline builds; the tiny pipeline and a tiny instance of every variant run forward and
backward on the CPU with gradients reaching every trainable parameter; the avatar does not depend on
the order of the reference views nor on padded views."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lca.config import resolve_pipeline
from lca.contracts.sample import Views, collate
from lca.losses import Objective
from lca.model.avatar import AvatarModel, reference_poses
from lca.registry import default_registry

VARIANTS = [
    "lca-tiny",
    "lca-tiny-paper",
    "lca-small",
    "lca-blendshapes",
    "lca-joint-attention",
    "lca-cross-attention",
    "lca-dinov2",
]
# Paper-scale pipelines need licensed SMPL-X files and too much memory for a test: they are built on the
# meta device with the mannequin standing in for SMPL-X (same anchor counts).
PAPER_SCALE = ["lca-reference"]
SMALL = ["template.num_anchors=128", "template.num_head_anchors=64", "model.width=32"]


def test_every_named_pipeline_is_covered() -> None:
    names = set(default_registry().pipeline_names())
    ablations = {"lca-tiny-pretrain-only", "lca-tiny-posttrain-only"}  # lca-tiny's model, other schedules
    assert names == set(VARIANTS) | set(PAPER_SCALE) | ablations


@pytest.mark.parametrize("name", PAPER_SCALE)
def test_paper_scale_pipeline_builds_on_meta(name: str) -> None:
    config = resolve_pipeline(
        name, ["template=mannequin", "template.num_anchors=30000", "template.num_head_anchors=10000"]
    )
    model = AvatarModel(config, device="meta")
    parameters = list(model.parameters())
    assert all(p.is_meta for p in parameters)
    assert sum(p.numel() for p in parameters) > 1_000_000_000  # Sapiens-1B alone has 1.1B
    assert model.template.num_anchors == 40_000


@pytest.mark.parametrize("name", ["lca-tiny-pretrain-only", "lca-tiny-posttrain-only"])
def test_ablation_pipelines_share_the_tiny_model(name: str) -> None:
    tiny, ablation = resolve_pipeline("lca-tiny"), resolve_pipeline(name)
    assert ablation.slots == tiny.slots and ablation.drivers == tiny.drivers and ablation.model == tiny.model
    assert sum(s.steps for s in ablation.schedule) == sum(s.steps for s in tiny.schedule)


def _batch(store: Path, config_name: str, overrides: list[str]):
    config = resolve_pipeline(
        config_name, [f"data.studio.path={store}", "data.studio.image_size=32", *overrides]
    )
    dataset = default_registry().build("dataset", "studio", config.data["studio"].config)
    return config, collate([dataset[0], dataset[1]])


CASES = [(name, []) for name in VARIANTS] + [("lca-tiny", ["model.camera_embedding=plucker"])]


@pytest.mark.parametrize(("name", "extra"), CASES, ids=[" ".join([n, *e]) for n, e in CASES])
def test_tiny_variant_forward_backward_reaches_every_parameter(
    name: str, extra: list[str], tiny_studio_store: Path
) -> None:
    torch.manual_seed(0)
    config, batch = _batch(tiny_studio_store, name, [*SMALL, *extra])
    model = AvatarModel(config)
    # Zero-initialised output layers (training starts from small Gaussians on the template) block every
    # gradient path through them at step 0 by design; perturb them so each path can be seen.
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(std=1e-2)
    output = model(batch)
    assert output.driven.shape == (2, 2, 3, 32, 32) and output.canonical.shape == output.driven.shape
    assert torch.isfinite(output.driven).all()
    terms = Objective(config.loss)(output, batch, step=10_000)
    terms.total.backward()
    unreached = [
        n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())
    ]
    assert unreached == []


@pytest.fixture(scope="module", params=["fourier", "pixel-aligned"])
def tiny_model_and_batch(request: pytest.FixtureRequest, tiny_studio_store: Path):
    torch.manual_seed(0)
    overrides = [*SMALL, "data.studio.num_references=3", f"tokenizer={request.param}"]
    config, batch = _batch(tiny_studio_store, "lca-tiny", overrides)
    return AvatarModel(config).eval(), batch


def _views(views: Views, order: torch.Tensor) -> Views:
    """``views`` with the view axis (dim 1) reindexed by ``order`` (a permutation, or repeats as padding)."""
    pick = lambda x: x[:, order]  # noqa: E731
    return replace(
        views,
        images=pick(views.images), masks=pick(views.masks), viewmats=pick(views.viewmats),
        Ks=pick(views.Ks), params={k: pick(v) for k, v in views.params.items()}, frame=pick(views.frame),
        camera=pick(views.camera), is_face=pick(views.is_face), valid=pick(views.valid),
    )  # fmt: skip


def _avatar(model: AvatarModel, views: Views):
    with torch.no_grad():
        return model.create_avatar(
            views.images, views.valid, views.params["betas"][:, 0], reference_poses(views)
        )


def test_reference_view_order_does_not_change_the_avatar(tiny_model_and_batch) -> None:
    model, batch = tiny_model_and_batch
    refs = batch.references
    a = _avatar(model, refs)
    b = _avatar(model, _views(refs, torch.arange(refs.images.shape[1]).flip(0)))
    assert model.backbone.permutation_invariant
    torch.testing.assert_close(a.features, b.features, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.canonical.offsets, b.canonical.offsets, atol=1e-6, rtol=1e-5)


def test_padded_views_do_not_change_the_avatar(tiny_model_and_batch) -> None:
    """Two padding views repeat real views' cameras and poses (so a tokenizer would see the person there)
    over garbage images: only ``valid`` says to ignore them."""
    model, batch = tiny_model_and_batch
    refs = batch.references
    count = refs.images.shape[1]
    padded = _views(refs, torch.cat([torch.arange(count), torch.tensor([0, 1])]))
    padded.images[:, count:] = torch.rand_like(padded.images[:, count:])
    padded.valid[:, count:] = False
    plain = _avatar(model, refs)
    torch.testing.assert_close(plain.features, _avatar(model, padded).features, atol=1e-5, rtol=1e-5)


def test_checkpointed_state_holds_no_template_data(tiny_model_and_batch) -> None:
    """Template buffers are derived from the (possibly licensed) body model file: never saved."""
    model, _ = tiny_model_and_batch
    assert not [key for key in model.state_dict() if key.startswith("template.")]
