"""Losses as a registry kind: each built-in term against a closed form, the conformance check of every
registered term, the objective weighing regularisers by name, ``loss.terms`` validation, overrides and
inheritance, and a loss term added by an installed plugin package."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from lca.config import LossOptions, resolve_pipeline, resolve_raw
from lca.config.defaults import DEFAULT_LOSS_TERMS
from lca.config.pipeline import load_definition
from lca.contracts.loss import LossContext, Render
from lca.contracts.model import ModelOutput
from lca.errors import ConfigError, LcaError
from lca.losses import Objective
from lca.lpips_weights import RandomLpipsBackboneWarning
from lca.registry import Registry, build_registry
from lca.testing.loss import check_loss, loss_inputs


def _build(name: str, registry: Registry | None = None, **params: Any) -> Any:
    registry = registry or build_registry()
    parts = params.pop("parts", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomLpipsBackboneWarning)
        return registry.build("loss", name, {"weight": 1.0, **params}, part_weights=parts)


def _output(**fields: Any) -> ModelOutput:
    base: dict[str, Any] = {
        "driven": torch.full((1, 2, 3, 4, 4), 0.25),
        "driven_alpha": torch.full((1, 2, 1, 4, 4), 0.25),
        "offsets": torch.zeros(1, 2, 1, 3),
        "scales": torch.ones(1, 2, 1, 3),
        "part_labels": torch.tensor([0, 3]),
    }
    return ModelOutput(**{**base, **fields})


def _batch() -> Any:
    valid = torch.tensor([[True, False]])  # view 1 is padding: never counts
    masks = torch.ones(1, 2, 1, 4, 4)
    return SimpleNamespace(
        targets=SimpleNamespace(images=torch.full((1, 2, 3, 4, 4), 0.5), masks=masks, valid=valid)
    )


def _call(term: Any, output: ModelOutput, render: str = "driven") -> Any:
    color, alpha = getattr(output, render), getattr(output, f"{render}_alpha")
    return term(output, _batch(), LossContext(step=0, render=Render(render, color, alpha)))


def _terms(**terms: dict[str, Any]) -> LossOptions:
    return LossOptions(terms=terms)


# ------------------------------------------------------------------------------ built-in terms, closed forms
@pytest.mark.parametrize("name", build_registry().names("loss"))
def test_registered_loss_terms_conform(name: str) -> None:
    check_loss(build_registry(), name)


def test_l1_and_mask_compare_the_given_render() -> None:
    output = _output(canonical=torch.full((1, 2, 3, 4, 4), 0.375), canonical_alpha=None)
    output.driven[0, 1] = 9.0  # padded view
    assert _call(_build("l1"), output).item() == pytest.approx(0.25)
    assert _call(_build("l1"), output, "canonical").item() == pytest.approx(0.125)
    assert _call(_build("mask"), output).item() == pytest.approx(0.75)
    assert _call(_build("mask"), output, "canonical") is None  # no alpha: nothing to compare


def test_lpips_compares_subject_cutouts_with_its_network() -> None:
    class MeanAbs(torch.nn.Module):  # a stand-in network: per-pair mean |a - b|
        def forward(self, a: torch.Tensor, b: torch.Tensor, normalize: bool) -> torch.Tensor:
            return (a - b).abs().mean(dim=(1, 2, 3))

    term = _build("lpips", random_backbone=True)
    term.network = MeanAbs()
    assert _call(term, _output()).item() == pytest.approx(0.25)
    assert term.per_render and not term.ramped


def test_acap_and_asap_weigh_body_parts_from_the_build_context() -> None:
    offsets = torch.zeros(1, 2, 1, 3)
    offsets[0, 0, 0] = torch.tensor([0.03, 0.04, 0.0])  # length 0.05, anchor of part 0 (head)
    scales = torch.tensor([[[[1.0, 1.0, 4.0]], [[2.0, 2.0, 2.0]]]])  # ratios 4 (head) and 1
    output = _output(offsets=offsets, scales=scales)
    acap = _build("acap", threshold=0.02, parts={"head": 2.0})
    asap = _build("asap", threshold=3.0, parts={"head": 0.5})
    assert _call(acap, output).item() == pytest.approx(2.0 * (0.05 - 0.02) / 2)
    assert _call(asap, output).item() == pytest.approx(0.5 * (4 - 3) / 2)
    assert acap.ramped and asap.ramped and not acap.per_render


def test_regularizer_returns_its_key_or_nothing() -> None:
    term = _build("regularizer", key="tv")
    assert type(term).regularization_keys(term.config) == ("tv",)
    assert _call(term, _output(regularization={"tv": torch.tensor(3.0)})).item() == 3.0
    assert _call(term, _output(regularization={"kl": torch.tensor(3.0)})) is None


# ------------------------------------------------------------------------------------------- the objective
def test_default_terms_are_the_method_defaults() -> None:
    assert LossOptions().terms == DEFAULT_LOSS_TERMS
    assert resolve_pipeline("lca-tiny").loss.terms == {
        "l1": {"type": "l1", "weight": 1.0},
        "mask": {"type": "mask", "weight": 1.0},
        "acap": {"type": "acap", "weight": 1.0, "threshold": 0.02},
        "asap": {"type": "asap", "weight": 0.1, "threshold": 3.0},
        "kl": {"type": "regularizer", "weight": 1e-3, "key": "kl"},
    }
    reference = resolve_pipeline("lca-reference").loss.terms
    assert list(reference) == ["l1", "lpips", "mask", "acap", "asap", "kl"]
    assert reference["lpips"]["weight"] == 0.1


def test_objective_weighs_regularisers_by_name_and_logs_term_names() -> None:
    options = _terms(
        code_kl={"type": "regularizer", "key": "kl", "weight": 0.5},
        tv={"type": "regularizer", "key": "tv", "weight": 2.0},
        l1={"type": "l1", "weight": 1.0},
    )
    output = _output(regularization={"tv": torch.tensor(3.0), "kl": torch.tensor(5.0)})
    terms = Objective(options)(output, _batch(), step=0)
    assert list(terms.values) == ["driven/l1", "code_kl", "tv"]  # renders first, then term order
    assert terms.total.item() == pytest.approx(0.25 + 0.5 * 5.0 + 2.0 * 3.0)


def test_objective_orders_renders_then_terms_and_ramps_regularisers() -> None:
    options = LossOptions(canonical=0.25, ramp_steps=4)
    output = _output(
        canonical=torch.full((1, 2, 3, 4, 4), 0.375),
        canonical_alpha=torch.ones(1, 2, 1, 4, 4),
        regularization={"kl": torch.tensor(2.0)},
    )
    terms = Objective(options)(output, _batch(), step=1)
    assert list(terms.values) == [
        "driven/l1",
        "driven/mask",
        "canonical/l1",
        "canonical/mask",
        "acap",
        "asap",
        "kl",
    ]
    assert terms.weights == {
        "driven/l1": 1.0,
        "driven/mask": 1.0,
        "canonical/l1": 0.25,
        "canonical/mask": 0.25,
        "acap": 0.25,
        "asap": 0.1 * 0.25,
        "kl": 1e-3 * 0.25,
    }


def test_unweighed_regularisation_key_is_an_error_naming_key_terms_and_fix() -> None:
    output = _output(regularization={"kl": torch.tensor(1.0), "tv": torch.tensor(1.0)})
    with pytest.raises(LcaError) as error:
        Objective(LossOptions())(output, _batch(), step=0)
    message = str(error.value)
    assert "regularization term 'tv'" in message
    assert "l1 (l1), mask (mask), acap (acap), asap (asap), kl (regularizer)" in message
    assert "loss.terms.tv={type: regularizer, key: tv, weight: 0.001}" in message
    # a term at weight 0 still weighs its key (by 0): no error, nothing logged
    zero = _terms(l1={"type": "l1", "weight": 1.0}, tv={"type": "regularizer", "key": "tv", "weight": 0.0})
    terms = Objective(zero)(_output(regularization={"tv": torch.tensor(1.0)}), _batch(), step=0)
    assert list(terms.values) == ["driven/l1"]


def test_objective_reports_every_invalid_term() -> None:
    options = _terms(
        l1={"type": "lpip", "weight": 1.0}, acap={"type": "acap", "weight": 1.0, "treshold": 0.1}
    )
    with pytest.raises(ConfigError) as error:
        Objective(options)
    text = str(error.value)
    assert "loss.terms.l1" in text and "Did you mean 'lpips'" in text
    assert "loss.terms.acap.treshold" in text and "did you mean 'threshold'" in text


# -------------------------------------------------------------------------------- config, overrides, merge
def test_config_errors_are_located_with_suggestions() -> None:
    overrides = [
        "loss.terms.smooth=lpip",
        "loss.terms.acap.treshold=0.1",
        "loss.terms.lpips=lpips",
        "loss.terms.acpa.weight=2",
    ]
    with pytest.raises(ConfigError) as error:
        resolve_pipeline("lca-tiny", overrides)
    issues = {issue.path: issue.message for issue in error.value.issues}
    assert "Did you mean 'lpips'" in issues["loss.terms.smooth"]
    assert "override 'loss.terms.smooth=lpip'" in issues["loss.terms.smooth"]
    assert "did you mean 'threshold'" in issues["loss.terms.acap.treshold"]
    assert "loss.terms.lpips.weight" in issues  # a switched term's params reset: its weight is required
    assert "did you mean 'acap'" in issues["loss.terms.acpa"]


def test_term_names_and_an_empty_objective_are_refused() -> None:
    raw, label = load_definition("lca-tiny")
    raw["loss"] = {"terms": {"Driven/L1": {"type": "l1", "weight": 1.0}}}
    with pytest.raises(ConfigError, match=r"loss\.terms\.Driven/L1: a term name"):
        resolve_raw(raw, label)
    raw["loss"] = {"terms": {}}
    with pytest.raises(ConfigError, match=r"loss\.terms: no loss terms"):
        resolve_raw(raw, label)


@pytest.mark.parametrize(
    "overrides",
    [
        [
            "loss.terms.lpips=lpips",
            "loss.terms.lpips.weight=0.2",
            "loss.terms.kl=null",
            "loss.terms.acap.weight=2",
        ],
        [
            "loss.terms.acap.weight=2",
            "loss.terms.lpips.weight=0.2",
            "loss.terms.kl=null",
            "loss.terms.lpips=lpips",
        ],
    ],
)
def test_overrides_add_remove_and_edit_terms_in_any_order(overrides: list[str]) -> None:
    terms = resolve_pipeline("lca-tiny", overrides).loss.terms
    assert list(terms) == ["l1", "mask", "acap", "asap", "lpips"]
    assert terms["lpips"] == {
        "type": "lpips",
        "weight": 0.2,
        "net": "alex",
        "weights": None,
        "random_backbone": False,
    }
    assert terms["acap"] == {"type": "acap", "weight": 2.0, "threshold": 0.02}


def test_override_with_a_mapping_and_on_a_pipeline_naming_no_terms(toy_registry: Registry) -> None:
    tv = "loss.terms.tv={type: regularizer, key: tv, weight: 0.01}"
    assert resolve_pipeline("lca-tiny", [tv]).loss.terms["tv"] == {
        "type": "regularizer",
        "weight": 0.01,
        "key": "tv",
    }
    config = resolve_pipeline("toy", ["loss.terms.mask.weight=0.5"], registry=toy_registry)  # no loss section
    assert config.loss.terms == {**DEFAULT_LOSS_TERMS, "mask": {"type": "mask", "weight": 0.5}}


def test_inheritance_merges_terms_member_by_member(tmp_path: Path) -> None:
    child = tmp_path / "child.yaml"
    child.write_text(
        textwrap.dedent(
            """\
            base: lca-tiny
            loss:
              ramp_steps: 10
              terms:
                kl: null
                asap: {weight: 0.5}
                l1: {type: lpips, weight: 0.3, random_backbone: true}
            """
        )
    )
    config = resolve_pipeline(child)
    assert config.loss.ramp_steps == 10
    assert list(config.loss.terms) == ["l1", "mask", "acap", "asap"]
    assert config.loss.terms["asap"] == {"type": "asap", "weight": 0.5, "threshold": 3.0}
    assert config.loss.terms["l1"]["type"] == "lpips"  # another type replaces the base's term


def test_resolved_terms_round_trip_through_yaml(tmp_path: Path) -> None:
    config = resolve_pipeline("lca-tiny", ["loss.terms.kl=null", "loss.terms.asap.threshold=2.0"])
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml())
    assert "terms:" in path.read_text()
    assert resolve_pipeline(path).loss == config.loss


# ----------------------------------------------------------------------------- a term from a plugin package
_PLUGIN_TERM = '''
"""A third-party loss term: total variation of each render (smooth images)."""

from typing import Any, ClassVar

from torch import Tensor

from lca.contracts.loss import Loss, LossConfig, LossContext


class SmoothConfig(LossConfig):
    power: int = 1
    """Exponent of the neighbour differences."""


class Smooth(Loss):
    """Mean ``|dx| ** power + |dy| ** power`` of the rendered images."""

    Config: ClassVar[type[SmoothConfig]] = SmoothConfig
    per_render: ClassVar[bool] = True
    test_config: ClassVar[dict[str, Any]] = {"weight": 1.0}

    def forward(self, output: Any, batch: Any, context: LossContext) -> Tensor:
        image, p = context.render.color, self.config.power
        dx = (image[..., :, 1:] - image[..., :, :-1]).abs() ** p
        dy = (image[..., 1:, :] - image[..., :-1, :]).abs() ** p
        return dx.mean() + dy.mean()
'''


def test_a_plugin_package_adds_a_loss_term_that_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "lca_smooth"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "smooth.py").write_text(_PLUGIN_TERM)
    (package / "registry.yaml").write_text(
        "version: 1\ncomponents:\n  loss:\n"
        '    smooth: {target: "lca_smooth.smooth:Smooth", summary: "Total variation of each render"}\n'
    )
    (package / "hooks.py").write_text(
        "from pathlib import Path\n\nfrom lca.hookspecs import hookimpl\n\n\n@hookimpl\n"
        "def lca_registry_files():\n    return [Path(__file__).with_name('registry.yaml')]\n"
    )
    info = tmp_path / "lca_smooth-0.1.dist-info"  # what `pip install` leaves behind
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lca-smooth\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lca.plugins]\nsmooth = lca_smooth.hooks\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    registry = build_registry()
    assert registry.get("loss", "smooth").origin == "smooth"
    check_loss(registry, "smooth")
    config = resolve_pipeline(
        "lca-tiny",
        ["loss.terms.tv.weight=0.5", "loss.terms.tv=smooth", "loss.terms.tv.power=2"],
        registry=registry,
    )
    assert config.loss.terms["tv"] == {"type": "smooth", "weight": 0.5, "power": 2}

    objective = Objective(config.loss, registry)
    output, batch = loss_inputs(("kl",))
    terms = objective(output, batch, step=0)
    assert list(terms.values)[:3] == ["driven/l1", "driven/mask", "driven/tv"]
    image = output.driven.detach()
    tv = ((image[..., :, 1:] - image[..., :, :-1]) ** 2).mean() + (
        (image[..., 1:, :] - image[..., :-1, :]) ** 2
    ).mean()
    torch.testing.assert_close(terms.values["driven/tv"], tv)
    assert terms.weights["driven/tv"] == 0.5 and terms.weights["canonical/tv"] == 0.25

    # it trains: gradient steps on the render under the new term alone make it smoother
    alone = Objective(LossOptions(terms={"tv": config.loss.terms["tv"]}), registry)
    render = output.driven.detach().clone().requires_grad_()
    optimizer = torch.optim.SGD([render], lr=0.5)
    losses = []
    for step in range(5):
        optimizer.zero_grad()
        total = alone(
            ModelOutput(**{**vars(output), "driven": render, "regularization": {}}), batch, step
        ).total
        total.backward()
        optimizer.step()
        losses.append(total.item())
    assert losses[-1] < losses[0]
