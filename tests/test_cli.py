"""The `lca` command line: output, exit codes, no tracebacks for user mistakes, --debug."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lca.cli import main


def _lca(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lca", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
    )


TOY = {"LCA_PLUGINS": "lca_toy.hooks", "PYTHONPATH": os.pathsep.join(sys.path)}


def test_help_lists_the_command_groups() -> None:
    result = _lca("--help")
    assert result.returncode == 0
    for command in ("registry", "config"):
        assert command in result.stdout


def test_registry_list_shows_kind_name_summary_origin() -> None:
    result = _lca("registry", "list", "encoder", "toy-*", **TOY)
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["kind", "name", "summary", "origin"]
    assert lines[1][:2] == ["encoder", "toy-encoder"] and lines[1][-1] == "lca_toy.hooks"


def test_registry_show_prints_fields_types_defaults_docs() -> None:
    result = _lca("registry", "show", "encoder", "toy-encoder", **TOY)
    assert result.returncode == 0, result.stderr
    assert "lca_toy.components:ToyEncoder" in result.stdout
    assert "ToyEncoderConfig" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("mode"))
    assert "Literal['fast', 'slow']" in row and "'fast'" in row and "Speed mode." in row


def test_unknown_component_exits_2_with_closest_name_and_no_traceback() -> None:
    result = _lca("config", "validate", "toy", "encoder=toy-encodr", **TOY)
    assert result.returncode == 2
    assert "Did you mean 'toy-encoder'" in result.stderr
    assert "Traceback" not in result.stderr


def test_misspelled_field_and_invalid_value_name_the_dotted_path() -> None:
    result = _lca("config", "validate", "toy", "encoder.dimm=3", "model.depth=zero", **TOY)
    assert result.returncode == 2
    assert "encoder.dimm: unknown field (did you mean 'dim'?)" in result.stderr
    assert "model.depth:" in result.stderr


def test_debug_shows_the_traceback() -> None:
    result = _lca("--debug", "config", "validate", "toy", "encoder=toy-encodr", **TOY)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_config_show_prints_resolved_yaml(toy_default: None, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    assert main(["config", "show", "toy", "encoder.dim=24"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["slots"]["encoder"] == {"type": "toy-encoder", "dim": 24, "depth": 2, "mode": "fast"}


def test_config_validate_ok_and_usage_errors(toy_default: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", "toy", "--no-build"]) == 0  # the toy components configure, not build
    assert "ok: toy" in capsys.readouterr().out
    assert main(["config", "validate"]) == 2  # click usage error: missing argument
    assert main(["registry", "show", "encoder", "nope"]) == 2
    assert "lca registry list encoder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "encoder.image_size=[60,60]",
            "slot 'encoder' (encoder 'vit-tiny') refuses its config: .*not a multiple",
        ),
        (
            "encoder=conv-tiny encoder.image_size=[60,60]",
            "slot 'encoder' (encoder 'conv-tiny') refuses its config",
        ),
        ("block=joint-attention model.width=30", "slot 'block' (block 'joint-attention') refuses its config"),
        ("data.wild.min_references=5", "data.wild: .*min_references=5 is above num_references=2"),
        ("decoder.init_scale=0.5", "decoder: .*min_scale < init_scale < max_scale"),
    ],
)
def test_config_validate_catches_what_building_would_refuse(
    override: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rules across fields, or across a component and its context, are caught by `config validate` (which
    builds the model on the meta device), named by slot, exit code 2, no traceback."""
    import re

    assert main(["config", "validate", "lca-tiny", *override.split()]) == 2
    err = capsys.readouterr().err
    assert re.search(expected.replace("(", r"\(").replace(")", r"\)"), " ".join(err.split())), err
    assert "Traceback" not in err


def test_file_system_mistakes_name_the_path_with_exit_code_2(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config that is not UTF-8, a directory given as a config, a file given as a folder (for the
    synthetic stores, for the run's output): each a located message, exit code 2, no traceback."""
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b'base: lca-tiny\nsummary: "caf\xe9"\n')
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (["config", "validate", "--no-build", str(latin1)], "is not UTF-8 text"),
        (["config", "validate", "--no-build", str(folder)], "is a directory"),
        (
            ["data", "synth", "--out", str(afile), "--identities", "1", "--frames", "1"],
            f"{afile}: File exists",
        ),
        (
            ["train", "lca-tiny", f"run.output_dir={afile}/runs", "schedule.pretrain.steps=1"],
            f"{afile}/runs",
        ),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = " ".join(capsys.readouterr().err.split())
        assert expected in err and "Traceback" not in err, (argv, err)
    assert afile.read_text() == "x"
