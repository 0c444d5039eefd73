"""Every user mistake is a message: through the `lca` command line each ends in exit code 2, names the
place (dotted config path, file, store/group/array) and what to do, and prints no traceback without
``--debug``. Organised by the classes of mistakes users make: config values (every bounded field of the
default pipeline, below its bound, plus rules across fields), config files, file-system paths, stores,
checkpoints and avatar files, and names that become paths (a property test: no name writes outside the
run folder). The data-integrity cases that need a trained step are in test_train_trainer.py and
test_data_store.py; here the same damaged stores are given to `lca train`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from avatar_helpers import TINY_OVERRIDES, make_run, make_stores
from config_fields import field_lower_bound, numeric_fields, value_below
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from train_toy import toy_config, toy_factory, toy_registry

from lca.cli import main
from lca.config import resolve_pipeline, sections
from lca.errors import ConfigError, LcaError


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *expected: str) -> str:
    """Run ``lca ARGV`` in this process: exit code 2, every ``expected`` text in the message (whitespace
    folded), no traceback. Returns the message."""
    code = main(argv)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err, err
    for text in expected:
        assert text in err, (argv, text, err)
    return err


# ------------------------------------------------------------------------------ config values: bounds
def _bound_cases() -> list[tuple[str, str, str]]:
    """``(dotted path, override, expected text)`` one below the lower bound, for every numeric field of
    every slot, group member, core section and stage of the default pipeline: what a user can type on
    `lca train`."""
    config = resolve_pipeline("lca-tiny")
    places = [(slot, s.config) for slot, s in config.slots.items()]
    places += [(f"drivers.{name}", s.config) for name, s in config.drivers.items()]
    places += [(f"data.{name}", s.config) for name, s in config.data.items()]
    places += [("model", config.model), ("run", config.run), ("loss", config.loss)]
    places += [(f"schedule.{stage.name}", stage) for stage in config.schedule]
    cases = []
    for place, model in places:
        for name, field, pair in numeric_fields(type(model)):
            lower = field_lower_bound(field, pair)
            assert lower is not None, f"{place}.{name} has no lower bound"
            value = value_below(field, pair, lower)
            text = f"[{value[0]}, {value[1]}]" if pair else str(value)
            named = f"{place}.{name}.0:" if pair else f"{place}.{name}:"  # a pair's member is named
            cases.append((f"{place}.{name}", f"{place}.{name}={text}", named))
    return cases


BOUND_CASES = _bound_cases()


def test_the_bound_cases_cover_the_pipeline() -> None:
    places = {path.rsplit(".", 1)[0] for path, _, _ in BOUND_CASES}
    assert len(BOUND_CASES) > 60, len(BOUND_CASES)
    assert {"encoder", "tokenizer", "decoder", "drivers.expression", "data.wild", "run"} <= places


@pytest.mark.parametrize(("path", "override", "named"), BOUND_CASES, ids=[c[0] for c in BOUND_CASES])
def test_a_value_below_its_bound_is_named(
    path: str, override: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(capsys, ["config", "validate", "--no-build", "lca-tiny", override], named)


# -------------------------------------------------------------- config values: names, types, cross-field
CONFIG_CASES = [
    # (overrides, build the model?, expected texts)
    ("encoder=vit-tinyy", False, ["Unknown encoder 'vit-tinyy'", "Did you mean 'vit-tiny'"]),
    ("encoder.dimm=3", False, ["encoder.dimm: unknown field (did you mean 'dim'?)"]),
    ("model.depth=zero", False, ["model.depth:"]),
    ("run.mixed_precision=fp32", False, ["run.mixed_precision:"]),
    ("data.wild.on_error=ignore", False, ["data.wild.on_error:"]),
    ("data.wild.path=[1,2]", False, ["data.wild.path:"]),
    ("data.wild.min_references=5", False, ["data.wild:", "min_references=5 is above num_references=2"]),
    ("tokenizer=fourier tokenizer.spread_radius=0.3", False, ["tokenizer.spread_radius: unknown field"]),
    ("schedule.pretrain.num_references=3", False, ["schedule.pretrain.num_references:", "data.wild"]),
    ("schedule.posttrain.num_targets=1", False, ["schedule.posttrain.num_targets:", "data.studio"]),
    ("schedule.posttrain.init_from=nowhere", False, ["schedule.posttrain.init_from:", "nowhere"]),
    ("schedule.pretrain.data=wilde", False, ["schedule.pretrain.data:", "did you mean 'wild'"]),
    ("schedule.pretrain.stepz=3", False, ["schedule.pretrain.stepz: unknown field"]),
    ("schedule.pretrain.freeze=encoder", False, ["schedule.pretrain.freeze:"]),
    ("schedule=[]", False, ["schedule:", "cannot override 'schedule=[]'"]),
    ("loss.terms.l1.type=l2", False, ["loss.terms.l1", "Unknown loss 'l2'"]),
    ("loss.terms.l1.weight=-1", False, ["loss.terms.l1.weight:"]),
    ("drivers.pose=smplx-posee", False, ["Unknown driver 'smplx-posee'", "Did you mean 'smplx-pose'"]),
    ("nosuchslot.x=1", False, ["nosuchslot"]),
    ("encoder", False, ["encoder", "KEY=VALUE"]),
    ("decoder.init_scale=0.5", False, ["decoder:", "min_scale < init_scale < max_scale"]),
    ("encoder.image_size=[60,60]", True, ["slot 'encoder' (encoder 'vit-tiny') refuses its config"]),
    ("encoder.num_heads=3", False, ["encoder:", "dim=64 is not a multiple of num_heads=3"]),
    ("block.num_heads=3", True, ["slot 'block' (block 'lca-tri-attention') refuses its config"]),
    ("block=joint-attention model.width=30", True, ["slot 'block' (block 'joint-attention')"]),
]


@pytest.mark.parametrize(("overrides", "build", "expected"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_config_mistake_is_named(
    overrides: str, build: bool, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [] if build else ["--no-build"]
    _refused(capsys, ["config", "validate", *flags, "lca-tiny", *overrides.split()], *expected)


def test_an_unknown_pipeline_gets_the_closest_names(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["config", "validate", "lca-tinyy"], ["model", "summary", "lca-tinyy"]):
        _refused(capsys, argv, "Unknown pipeline 'lca-tinyy'", "Did you mean 'lca-tiny'")


# ------------------------------------------------------------------------------------------ config files
CONFIG_FILES = [
    # (file text, expected texts; {file} is the file's path)
    ("base: lca-tiny\nschedule: []\n", ["schedule: no stages: nothing to train"]),
    ("base: lca-tinyy\n", ["{file}, key 'base'", "Did you mean 'lca-tiny'"]),
    ("base: lca-tiny\nmodel: {width: [\n", ["{file}", "line"]),
    ("- base: lca-tiny\n", ["{file}"]),
    ("base: lca-tiny\nname: ../../escape\n", ["name:", "must be letters, digits"]),
    (
        "base: lca-tiny\nschedule:\n  - {name: ../up, data: wild, steps: 1}\n",
        ["schedule.../up.name:", "must be letters, digits"],
    ),
    ("base: lca-tiny\nschedule:\n  - {name: '', data: wild, steps: 1}\n", ["name:", "must be letters"]),
    (
        "base: lca-tiny\nschedule:\n  - {name: a, data: wild, steps: 1}\n"
        "  - {name: a, data: wild, steps: 1}\n",
        ["schedule.a.name: stage names must be unique"],
    ),
    ("base: lca-tiny\nslots: {encoder: {type: vit-tiny, patch_size: 0}}\n", ["encoder.patch_size:"]),
    ("base: lca-tiny\nrun: {seed: one}\n", ["run.seed:"]),
]


@pytest.mark.parametrize(
    ("text", "expected"), CONFIG_FILES, ids=[f"file{i}" for i in range(len(CONFIG_FILES))]
)
def test_a_config_file_mistake_is_named(
    text: str, expected: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    _refused(
        capsys, ["config", "validate", "--no-build", str(path)], *(e.format(file=path) for e in expected)
    )


# -------------------------------------------------------------------------- file-system paths and files
@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny stores, a tiny run with a checkpoint, an avatar file, and files of the wrong kind."""
    folder = tmp_path_factory.mktemp("mistakes")
    stores = make_stores(folder)
    run, _ = make_run(folder, stores)
    avatar = folder / "person.safetensors"
    argv = ["avatar", "create", "--checkpoint", str(run), "--store", stores["studio"], "--group", "g002"]
    assert main([*argv, "--out", str(avatar)]) == 0
    places = {"folder": folder, "run": run, "avatar": avatar, **{k: Path(v) for k, v in stores.items()}}
    places["afile"] = folder / "afile"
    places["afile"].write_text("x")
    places["adir"] = folder / "adir.safetensors"
    places["adir"].mkdir()
    places["configdir"] = folder / "config.yaml"
    places["configdir"].mkdir()
    places["latin1"] = folder / "latin1.yaml"
    places["latin1"].write_bytes(b'base: lca-tiny\nsummary: "caf\xe9"\n')
    places["junk"] = folder / "junk.safetensors"
    places["junk"].write_bytes(b"\x00" * 100)
    import torch
    from safetensors.torch import save_file

    places["weights"] = folder / "weights.safetensors"
    save_file({"x": torch.zeros(2)}, str(places["weights"]))
    places["motion"] = folder / "motion.npz"
    np.savez(places["motion"], body_pose=np.zeros((2, 63)), gaze=np.zeros((2, 3)))
    return places


PATH_CASES = [
    # (argv with {place} names, expected texts)
    ("config validate --no-build {latin1}", ["{latin1}", "is not UTF-8 text"]),
    ("config validate --no-build {configdir}", ["{configdir}", "is a directory"]),
    ("config show {folder}/none.yaml", ["Config file not found: {folder}/none.yaml"]),
    ("data synth --out {afile} --identities 1 --frames 1", ["{afile}: File exists"]),
    ("train lca-tiny run.output_dir={afile}/runs schedule.pretrain.steps=1", ["{afile}/runs"]),
    ("train lca-tiny --run-dir {afile}", ["--run-dir {afile} is a file, not a folder"]),
    (
        "train lca-tiny --resume --run-dir {folder}/none",
        ["{folder}/none holds no checkpoints", "drop --resume"],
    ),
    ("avatar export {adir} --out {folder}/o.ply", ["Avatar file {adir} is a directory, not a file"]),
    ("avatar export {folder}/none.safetensors --out {folder}/o.ply", ["none.safetensors does not exist"]),
    ("avatar export {junk} --out {folder}/o.ply", ["{junk} is not a readable safetensors file"]),
    ("avatar export {weights} --out {folder}/o.ply", ["{weights} is not an LCA avatar file"]),
    ("avatar export {avatar} --out {afile}/o.ply", ["{afile}"]),
    ("avatar animate {avatar} --motion {folder}/none.npz --out {folder}/o.mp4", ["none.npz does not exist"]),
    ("avatar animate {avatar} --motion {adir} --out {folder}/o.mp4", ["store {adir}: no Zarr store here"]),
    ("avatar animate {avatar} --motion {motion} --out {folder}/o.mp4", ["'gaze' has shape"]),
    ("avatar animate {avatar} --motion {wild}:nope --out {folder}/o.mp4", ["nope"]),
    (
        "avatar create --checkpoint {run} --images {folder}/none.png --params {motion} "
        "--out {folder}/a.safetensors",
        ["Reference image {folder}/none.png does not exist"],
    ),
    (
        "avatar create --checkpoint {run} --store {studio} --group g002 --out {afile}/a.safetensors",
        ["{afile}: File exists"],
    ),
    (
        "avatar create --checkpoint {run} --store {studio} --group g999 --out {folder}/a.safetensors",
        ["g999"],
    ),
    (
        "avatar create --checkpoint {run} --store {studio} --group g002 --frame 99 "
        "--out {folder}/a.safetensors",
        ["--frame 99 is out of range", "has 4 frames"],
    ),
    ("lpips check --weights {adir}", ["{adir} is a directory, not a file", "lca lpips convert"]),
    (
        "config validate lca-dinov2 encoder.weights={adir}",
        ["dinov2-vit: weights file '{adir}' is a directory, not a file", "never downloads"],
    ),
    ("config validate lca-dinov2 encoder.weights={folder}/none.pth", ["none.pth' does not exist"]),
    ("data list {folder}/none.zarr", ["store {folder}/none.zarr: no Zarr store here"]),
    ("data list {afile}", ["store {afile}: no Zarr store here"]),
    ("data import {folder}/nosource {folder}/new.zarr", ["{folder}/nosource", "no transforms.json"]),
    ("data import --format transforms-jsn {folder} {folder}/new.zarr", ["Did you mean 'transforms-json'"]),
    ("eval --checkpoint {afile} --store {wild}", ["No valid checkpoint under {afile}"]),
    ("eval --checkpoint {folder}/none --store {wild}", ["{folder}/none does not exist"]),
    ("eval --checkpoint {run} --store {wild} --split dev", ["--split"]),
    ("eval --checkpoint {run} --store {folder}/none.zarr", ["{folder}/none.zarr"]),
]


@pytest.mark.parametrize(
    ("argv", "expected"), PATH_CASES, ids=[c[0].split(" {")[0] + f"-{i}" for i, c in enumerate(PATH_CASES)]
)
def test_a_path_mistake_is_named(
    argv: str, expected: list[str], made: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    places = {k: str(v) for k, v in made.items()}
    before = sorted(p.name for p in made["folder"].iterdir())
    _refused(capsys, [a.format(**places) for a in argv.split()], *(e.format(**places) for e in expected))
    assert made["afile"].read_text() == "x"
    assert sorted(p.name for p in made["folder"].iterdir()) == before  # nothing half-written beside them


# ---------------------------------------------------------------------------- checkpoints and the run
@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda final: (final / "meta.json").write_text("null"), "meta.json is malformed"),
        (lambda final: (final / "meta.json").write_text("[1, 2]"), "meta.json is malformed"),
        (lambda final: (final / "meta.json").unlink(), "is incomplete: it has no meta.json"),
        (lambda final: (final / "model.safetensors").write_bytes(b"\x00" * 10), "corrupt or truncated"),
    ],
    ids=["meta-null", "meta-list", "meta-missing", "weights-truncated"],
)
def test_a_damaged_checkpoint_is_named_and_never_used(
    damage, expected: str, made: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(made["run"], run)
    damage(run / "checkpoints" / "posttrain" / "final")
    argv = ["avatar", "create", "--checkpoint", str(run), "--store", str(made["studio"]), "--group", "g002"]
    with pytest.warns(UserWarning, match=expected):  # each damaged checkpoint is named as it is skipped
        err = _refused(
            capsys, [*argv, "--out", str(tmp_path / "a.safetensors")], f"No valid checkpoint under {run}"
        )
    assert not (tmp_path / "a.safetensors").exists(), err


# ------------------------------------------------------------------------------------------------- stores
def _tiny_train(stores: dict[str, str], *extra: str) -> list[str]:
    paths = [f"data.wild.path={stores['wild']}", f"data.studio.path={stores['studio']}"]
    steps = ["schedule.pretrain.steps=1", "schedule.posttrain.steps=1", "data.wild.samples_per_group=1"]
    return ["train", "lca-tiny", *TINY_OVERRIDES, *paths, *steps, *extra]


def _damage_array(store: Path, array: str) -> None:
    shutil.rmtree(store / "g000" / array)


def _damage_chunks(store: Path, array: str) -> None:
    shutil.rmtree(store / "g000" / array / "c")


def _damage_root(store: Path, _: str) -> None:
    (store / "zarr.json").write_text("{not json")


def _damage_values(store: Path, array: str) -> None:
    import zarr

    values = zarr.open_array(str(store / "g000" / array), mode="r+")
    values[:] = np.nan  # every frame: whichever the sample draws


STORE_CASES = [
    (_damage_array, "masks", ["g000", "masks"]),
    (_damage_array, "smplx/body_pose", ["g000", "smplx/body_pose"]),
    (_damage_chunks, "frames", ["g000", "frames", "chunk"]),
    (_damage_root, "", ["zarr.json"]),
    (_damage_values, "smplx/transl", ["g000", "transl"]),
]


@pytest.mark.parametrize(
    ("damage", "array", "expected"), STORE_CASES, ids=[f"{c[0].__name__[8:]}-{c[1]}" for c in STORE_CASES]
)
def test_training_on_a_damaged_store_is_refused_with_its_place(
    damage, array: str, expected: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The wild store's only training group damaged: `lca train` (on_error: raise) names the store, group
    and array at the first read, never trains on zeros."""
    stores = make_stores(tmp_path)
    damage(Path(stores["wild"]), array)
    run = tmp_path / "run"
    _refused(capsys, [*_tiny_train(stores), "--stage", "pretrain", "--run-dir", str(run)], *expected)
    assert not (run / "checkpoints" / "pretrain" / "final").exists()


def test_with_on_error_skip_a_damaged_group_is_skipped_and_counted_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Two training clips, one with its masks deleted: with ``on_error: skip`` each of its samples is
    replaced by the next index's and counted, in metrics.json, the progress bar and TensorBoard."""
    import json

    from data_stores import make_store
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    stores = make_stores(tmp_path)
    wild = tmp_path / "wild-two.zarr"
    make_store(str(wild), "wild-video", identities=("id-a", "id-b"), splits=("train", "train"), frames=5)
    _damage_array(wild, "masks")
    run = tmp_path / "run"
    extra = [f"data.wild.path={wild}", "data.wild.on_error=skip", "data.wild.samples_per_group=2"]
    argv = [*_tiny_train(stores), *extra, "schedule.pretrain.steps=4", "--stage", "pretrain", "--run-dir"]
    assert main([*argv, str(run)]) == 0
    skipped = json.loads((run / "metrics.json").read_text())["stages"]["pretrain"]["skipped_samples"]
    assert skipped > 0  # half of an epoch's indices are the damaged clip's (a skip may hit it again)
    assert f"skipped_samples={skipped}" in capsys.readouterr().err  # the progress bar's last state
    named = [r.getMessage() for r in caplog.records if "g000" in r.getMessage()]
    assert len(named) == skipped and all("masks" in m for m in named)  # each skip logged by its place
    events = EventAccumulator(str(next((run / "tensorboard").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    assert events.Scalars("pretrain/skipped_samples")[-1].value == skipped


def test_a_wrong_store_for_a_later_stage_is_refused_before_any_training(
    made: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stores = {"wild": str(made["wild"]), "studio": str(made["wild"])}  # a wild store in the studio slot
    run = tmp_path / "run"
    _refused(
        capsys,
        [*_tiny_train(stores), "--run-dir", str(run)],
        "slot 'data.studio' (dataset 'studio') refuses its config",
        "is a 'wild-video' store",
    )
    assert not (run / "checkpoints").exists()  # pretrain did not train first


@pytest.mark.parametrize(
    ("path", "expected"),
    [("''", "config.path (the store location) is empty"), ("{afile}", "no Zarr store here"),
     ("{studio}", "is a 'studio' store; the 'wild-video' dataset cannot read it"),
     ("{folder}/none.zarr", "does not exist")],
    ids=["empty", "a-file", "other-layout", "missing"],
)  # fmt: skip
def test_a_wrong_store_path_is_named(
    path: str, expected: str, made: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stores = {"wild": path.format(**{k: str(v) for k, v in made.items()}), "studio": str(made["studio"])}
    _refused(capsys, [*_tiny_train(stores), "--run-dir", str(tmp_path / "run")], expected)


# ------------------------------------------------------------------------- names that become paths
_UNSAFE = ["..", ".", "../..", "../../escape", "/", "/tmp/x", "a/b", "a\\b", "", " ", ".hidden", "~", "-a"]
NAMES = st.one_of(
    st.sampled_from(_UNSAFE),
    st.from_regex(sections.SAFE_NAME, fullmatch=True).filter(lambda n: len(n) <= 24),
    st.text(alphabet=st.sampled_from("a./\\-_ü\u202e:*?\x00 "), max_size=8),
    st.text(max_size=6),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pipeline=NAMES, stage=NAMES)
@example(pipeline="my-pipeline.v2", stage="stage_1")  # always one run that trains
@example(pipeline="../..", stage="fit")
@example(pipeline="toy", stage="../escape")
def test_no_name_makes_the_trainer_write_outside_its_run_folder(
    pipeline: str, stage: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Random pipeline and stage names (``..``, separators, empty, unicode, control characters): each is
    refused as a config error naming it, or the run writes every file inside its run folder."""
    from lca.train import train

    root = tmp_path_factory.mktemp("names")
    registry = toy_registry()
    try:
        config = toy_config(
            registry, root / "out", ["schedule.tune.init_from=null"], pipeline=pipeline, name=stage, steps=1
        )
    except ConfigError as error:
        assert re.search(r"(pipeline|stage) name .* becomes a folder of the run", str(error)), error
        assert not re.fullmatch(sections.SAFE_NAME, pipeline) or not re.fullmatch(sections.SAFE_NAME, stage)
        return
    except LcaError as error:  # another rule refused it (e.g. stage names must be unique): named too
        assert "schedule" in str(error), error
        return
    run_dir = train(config, stage=stage, registry=registry, model_factory=toy_factory)
    assert run_dir.resolve().is_relative_to((root / "out").resolve())
    written = [p for p in root.rglob("*") if p.is_file()]
    assert written and all(p.resolve().is_relative_to(run_dir.resolve()) for p in written), written
    assert (run_dir / "checkpoints" / stage / "final").is_dir()
