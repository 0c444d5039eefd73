"""Pipeline configs: inheritance, overrides, complete validation with dotted paths, round trips."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from lca.config import Override, resolve_pipeline
from lca.config.overrides import parse_value
from lca.errors import ConfigError, OverrideError
from lca.registry import Registry, default_registry


def test_toy_pipeline_resolves_with_defaults(toy_registry: Registry) -> None:
    config = resolve_pipeline("toy", registry=toy_registry)
    assert config.slots["encoder"].type == "toy-encoder"
    assert config.slots["encoder"].config.model_dump() == {"dim": 16, "depth": 2, "mode": "fast"}
    assert list(config.drivers) == ["pose"] and list(config.data) == ["main"]
    assert [s.name for s in config.schedule] == ["pretrain", "posttrain"]
    assert config.stage("posttrain").layer_decay == 0.8


def test_inheritance_merges_params_and_adds_group_members(toy_registry: Registry) -> None:
    config = resolve_pipeline("toy-child", registry=toy_registry)
    assert config.slots["encoder"].config.dim == 32
    assert config.slots["encoder"].config.depth == 2  # kept from the base
    assert sorted(config.drivers) == ["gaze", "pose"]
    assert config.drivers["gaze"].config.dim == 4
    assert config.model.width == 16 and len(config.schedule) == 2


def test_switch_resets_params_to_the_new_components_defaults(toy_registry: Registry) -> None:
    config = resolve_pipeline("toy-child", ["encoder=vit-toy"], registry=toy_registry)
    assert config.slots["encoder"].type == "vit-toy"
    assert config.slots["encoder"].config.dim == 8  # the default, not the base's 32


def test_overrides_are_order_independent(toy_registry: Registry) -> None:
    overrides = [
        "encoder.dim=64",
        "encoder=vit-toy",
        "model.depth=3",
        "drivers.gaze=toy-driver",
        "drivers.gaze.dim=5",
        "schedule.pretrain.steps=7",
    ]
    results = {
        resolve_pipeline("toy", list(order), registry=toy_registry).to_yaml()
        for order in itertools.permutations(overrides)
    }
    assert len(results) == 1
    config = resolve_pipeline("toy", overrides, registry=toy_registry)
    assert config.slots["encoder"].config.dim == 64
    assert config.drivers["gaze"].config.dim == 5
    assert config.model.depth == 3 and config.stage("pretrain").steps == 7


def test_group_member_removal_and_yaml_values(toy_registry: Registry) -> None:
    config = resolve_pipeline(
        "toy-child",
        [
            "drivers.gaze=null",
            "run.mixed_precision=bf16",
            "schedule.posttrain.lr=1e-4",
            "schedule.pretrain.freeze=[encoder]",
        ],
        registry=toy_registry,
    )
    assert list(config.drivers) == ["pose"]
    assert config.run.mixed_precision == "bf16"
    assert config.stage("posttrain").lr == pytest.approx(1e-4)
    assert config.stage("pretrain").freeze == ["encoder"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("1e-3", 1e-3),
        ("true", True),
        ("[1, 2]", [1, 2]),
        ("null", None),
        ("vit-tiny", "vit-tiny"),
        ("'1e-3'", "1e-3"),
    ],
)
def test_override_values_are_yaml(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_unparseable_override() -> None:
    with pytest.raises(OverrideError, match="expected KEY=VALUE"):
        Override.parse("encoder")


def test_every_error_of_every_slot_is_reported_at_once(toy_registry: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_pipeline(
            "toy",
            [
                "encoder.dimm=3",
                "encoder.mode=medium",
                "block=toy-blok",
                "drivers.pose.dim=wide",
                "model.depth=0",
                "schedule.pretrain.steps=-1",
                "schedule.posttrain.data=studio",
                "encodr.x=1",
            ],
            registry=toy_registry,
        )
    paths = [issue.path for issue in info.value.issues]
    for expected in [
        "encoder.dimm",
        "encoder.mode",
        "block",
        "drivers.pose.dim",
        "model.depth",
        "schedule.pretrain.steps",
        "schedule.posttrain.data",
        "encodr.x",
    ]:
        assert expected in paths, f"{expected} missing from {paths}"
    message = str(info.value)
    assert "did you mean 'dim'?" in message and "valid fields: depth, dim, mode" in message
    assert "Unknown block 'toy-blok'" in message and "Did you mean 'toy-block'" in message
    assert "override 'block=toy-blok'" in message
    assert "(did you mean 'encoder'?)" in message


def test_missing_slot_unknown_stage_and_bad_init(toy_registry: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_pipeline(
            "toy",
            ["schedule.pretrian.steps=3", "schedule.posttrain.init_from=nowhere"],
            registry=toy_registry,
        )
    message = str(info.value)
    assert "no stage named 'pretrian' (did you mean 'pretrain'?)" in message
    assert "neither an earlier stage" in message


def test_round_trip_through_yaml_is_identical(toy_registry: Registry, tmp_path: Path) -> None:
    config = resolve_pipeline("toy-child", ["encoder.mode=slow", "run.seed=7"], registry=toy_registry)
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml(meta={"lca_version": "test"}))
    reloaded = resolve_pipeline(path, registry=toy_registry)
    assert reloaded == config
    assert reloaded.to_yaml() == config.to_yaml()


def test_user_file_can_inherit_a_registered_pipeline(toy_registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("base: toy\nslots:\n  encoder: {depth: 5}\n")
    config = resolve_pipeline(path, registry=toy_registry)
    assert config.slots["encoder"].config.depth == 5 and config.slots["encoder"].config.dim == 16
    assert config.name == "mine"


UNSAFE_NAMES = ["../../x", "..", ".hidden", "a/b", "a\\b", "", " ", "/abs", "x y", "tab\t", "nul\x00"]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_stage_and_pipeline_names_are_refused(
    toy_registry: Registry, tmp_path: Path, name: str
) -> None:
    """Stage and pipeline names become folders of the run: none may step outside it or hide in it."""
    with pytest.raises(ConfigError, match=r"becomes a folder of the run") as info:
        resolve_pipeline("toy", [f"schedule.pretrain.name={name!r}"], registry=toy_registry)
    assert "schedule." in str(info.value)
    path = tmp_path / "mine.yaml"
    path.write_text(f"base: toy\nname: {name!r}\n")
    if name:  # an empty name falls back to the file's stem
        with pytest.raises(ConfigError, match=r"name: pipeline name .* becomes a folder of the run"):
            resolve_pipeline(path, registry=toy_registry)


@pytest.mark.parametrize("name", ["pretrain", "stage_2", "v1.0", "A-b"])
def test_safe_names_are_kept(toy_registry: Registry, name: str) -> None:
    config = resolve_pipeline(
        "toy",
        [f"schedule.pretrain.name={name}", f"schedule.posttrain.init_from={name}"],
        registry=toy_registry,
    )
    assert config.schedule[0].name == name


def test_inheritance_loop_is_an_error(toy_registry: Registry) -> None:
    toy_registry.add_fragment(
        {"pipelines": {"loop-a": {"base": "loop-b"}, "loop-b": {"base": "loop-a"}}},
        origin="t",
        source="t.yaml",
    )
    with pytest.raises(Exception, match="loops: loop-a -> loop-b -> loop-a"):
        resolve_pipeline("loop-a", registry=toy_registry)


def test_every_named_builtin_pipeline_validates() -> None:
    registry = default_registry()
    names = registry.pipeline_names()
    assert names, "registry.yaml defines no pipelines"
    for name in names:
        config = resolve_pipeline(name, registry=registry)
        assert config.name == name


@pytest.mark.parametrize(
    "override",
    [
        "schedule.pretrain.steps=-3",
        "schedule.pretrain.lr=0",
        "schedule.pretrain.batch_size=0",
        "schedule.pretrain.data=7",
    ],
)
def test_an_invalid_stage_reports_its_own_problem_only(toy_registry: Registry, override: str) -> None:
    """A later stage initialised from an invalid one is not also told that the earlier stage is missing."""
    with pytest.raises(ConfigError) as info:
        resolve_pipeline("toy", [override], registry=toy_registry)
    assert [issue.path for issue in info.value.issues] == [override.split("=")[0]], info.value.issues


def test_misleading_texts_are_gone(toy_registry: Registry, tmp_path: Path) -> None:
    """`schedule=[]` is not answered "did you mean 'schedule'?"; a bad `base:` in a file names the file and
    the key, with the closest registered names."""
    with pytest.raises(ConfigError) as info:
        resolve_pipeline("toy", ["schedule=[]"], registry=toy_registry)
    assert "did you mean" not in str(info.value) and "cannot override 'schedule=[]'" in str(info.value)
    path = tmp_path / "mine.yaml"
    path.write_text("base: toyy\n")
    with pytest.raises(Exception, match=rf"{path}, key 'base': Unknown pipeline 'toyy'.*Did you mean 'toy'"):
        resolve_pipeline(path, registry=toy_registry)


def test_views_per_sample_have_one_source_the_data_slot(tiny_studio_store: Path) -> None:
    """A stage's copy of a view count equal to its data slot's (configs of earlier versions carry one) is
    dropped; one that differs is an error naming both places, never a silent override; and the dataset a
    stage trains on takes the slot's counts, the ones evaluation and avatar creation read too."""
    from lca.train.stage import build_dataset

    for key in ("num_references", "num_targets"):
        with pytest.raises(ConfigError) as info:
            resolve_pipeline("lca-tiny", [f"schedule.posttrain.{key}=3"])
        (issue,) = info.value.issues
        assert issue.path == f"schedule.posttrain.{key}"
        assert f"differs from data.studio.{key}=2" in issue.message
        assert f"set data.studio.{key}=3 instead" in issue.message
    config = resolve_pipeline("lca-tiny", ["schedule.posttrain.num_references=2"])
    assert "num_references" not in config.to_yaml().split("schedule:")[1]
    slot = ["data.studio.num_references=3", "data.studio.num_targets=1"]
    config = resolve_pipeline("lca-tiny", [f"data.studio.path={tiny_studio_store}", *slot])
    dataset = build_dataset(config, config.stage("posttrain"), default_registry())
    assert (dataset.config.num_references, dataset.config.num_targets) == (3, 1)
    sample = dataset[0]
    assert sample.references.images.shape[0] == 3 + 1 and sample.targets.images.shape[0] == 1  # + the face


def test_an_empty_schedule_is_a_config_error(tmp_path: Path) -> None:
    """`lca train` could not run it, so validation refuses it too, with what to write."""
    path = tmp_path / "untrainable.yaml"
    path.write_text("base: lca-tiny\nschedule: []\n")
    with pytest.raises(ConfigError, match=r"schedule: no stages: nothing to train; add one"):
        resolve_pipeline(path)
