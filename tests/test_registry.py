"""The registry: catalogue fragments, lookups, errors, direct registration and lazy imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lca.errors import (
    ComponentImportError,
    ContractError,
    DuplicateComponentError,
    PluginFailure,
    RegistryFileError,
    UnknownComponentError,
    UnknownKindError,
    UnknownPipelineError,
)
from lca.registry import KINDS, Registry, build_registry


def _run_python(code: str, **env: str) -> str:
    import os

    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    return result.stdout.strip()


def test_listing_imports_no_component_module() -> None:
    out = _run_python(
        """
        import sys
        from lca.registry import default_registry
        registry = default_registry()
        specs = registry.list()
        loaded = sorted(m for m in sys.modules if m.startswith("lca_plugins.") and m != "lca_plugins.hooks")
        print(len(specs), "torch" in sys.modules, loaded)
        """
    )
    count, torch_loaded, loaded = out.split(" ", 2)
    assert int(count) > 0, "the built-in catalogue is empty"
    assert torch_loaded == "False"
    assert loaded == "[]"


def test_describing_every_builtin_imports_no_component_module() -> None:
    out = _run_python(
        """
        import sys
        from lca.describe import describe_config
        from lca.registry import default_registry
        for spec in default_registry().list():
            describe_config(spec)
        print(sorted(m for m in sys.modules if m.startswith("lca_plugins.") and m.count(".") > 1))
        """
    )
    assert out == "[]"


def test_list_filters_by_kind_and_wildcard(toy_registry: Registry) -> None:
    names = [spec.name for spec in toy_registry.list("encoder", "*toy*")]
    assert names == ["toy-encoder", "vit-toy"]
    assert all(spec.kind == "encoder" for spec in toy_registry.list("encoder"))
    kinds = [spec.kind for spec in toy_registry.list()]
    assert kinds == sorted(kinds, key=KINDS.index)


def test_unknown_name_suggests_close_matches_other_kinds_and_list_command(toy_registry: Registry) -> None:
    with pytest.raises(UnknownComponentError) as info:
        toy_registry.get("block", "toy-encodr", where="pipeline 'toy', slot 'block'")
    message = str(info.value)
    assert "Unknown block 'toy-encodr'" in message
    assert "pipeline 'toy', slot 'block'" in message
    assert "lca registry list block" in message
    with pytest.raises(UnknownComponentError) as info:
        toy_registry.get("block", "toy-encoder")
    assert "exists under kind 'encoder'" in str(info.value)
    with pytest.raises(UnknownComponentError) as info:
        toy_registry.get("encoder", "toy-encodr")
    assert "Did you mean 'toy-encoder'" in str(info.value)


def test_unknown_name_repeats_plugin_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LCA_PLUGINS", "lca_toy.hooks,lca_toy_not_installed.hooks")
    registry = build_registry()
    assert [f.plugin for f in registry.failures] == ["lca_toy_not_installed.hooks"]
    with pytest.raises(UnknownComponentError) as info:
        registry.get("encoder", "something-else")
    assert "plugin 'lca_toy_not_installed.hooks'" in str(info.value)
    assert "ModuleNotFoundError" in str(info.value)


def test_unknown_kind_and_pipeline(toy_registry: Registry) -> None:
    with pytest.raises(UnknownKindError, match="Did you mean 'encoder'"):
        toy_registry.list("encoders")
    with pytest.raises(UnknownPipelineError, match="Did you mean 'toy'"):
        toy_registry.pipeline("tooy")


def test_broken_component_error_is_chained_to_the_import_failure(toy_registry: Registry) -> None:
    with pytest.raises(ComponentImportError) as info:
        toy_registry.load("encoder", "broken-encoder")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert "lca_toy.missing_module:Nothing" in str(info.value)
    assert "registered" in str(info.value)


def test_component_without_config_is_an_import_error() -> None:
    registry = Registry()
    registry.add_fragment(
        {"components": {"encoder": {"no-config": {"target": "pathlib:Path"}}}}, origin="test", source="inline"
    )
    with pytest.raises(ComponentImportError, match="no 'Config' class attribute"):
        registry.load("encoder", "no-config")


def test_duplicate_name_names_both_origins(toy_registry: Registry) -> None:
    fragment = {"components": {"encoder": {"toy-encoder": {"target": "lca_toy.components:ToyEncoder"}}}}
    with pytest.raises(DuplicateComponentError) as info:
        toy_registry.add_fragment(fragment, origin="other-plugin", source="other/registry.yaml")
    message = str(info.value)
    assert "lca_toy.hooks" in message and "other-plugin" in message and "other/registry.yaml" in message


def test_register_decorator_builds_and_reregistering_same_class_replaces() -> None:
    from lca_toy.components import ToyEncoder, ToyEncoderConfig
    from torch import nn

    from lca.contracts.encoder import Encoder, EncoderOutput

    registry = Registry()

    @registry.register("encoder", "notebook-encoder")
    class NotebookEncoder(Encoder):
        """An encoder defined in a notebook cell."""

        Config = ToyEncoderConfig

        def __init__(self, config: ToyEncoderConfig, **context: object) -> None:
            super().__init__()
            self.config, self.context = config, context
            self.project = nn.Linear(3, config.dim)

        @property
        def out_dim(self) -> int:
            return self.config.dim

        def layer_groups(self) -> list[list[nn.Parameter]]:
            return [list(self.parameters())]

        def forward(self, images):  # pragma: no cover - built, not run
            return EncoderOutput(self.project(images.mean(dim=(-1, -2)))[:, :, None], (1, 1))

    built = registry.build("encoder", "notebook-encoder", {"dim": 3}, extra=1)
    assert isinstance(built, NotebookEncoder) and built.config.dim == 3 and built.context == {"extra": 1}
    assert registry.get("encoder", "notebook-encoder").summary == "An encoder defined in a notebook cell."
    registry.register("encoder", "notebook-encoder", NotebookEncoder)  # re-run of the same cell
    with pytest.raises(DuplicateComponentError):
        registry.register("encoder", "notebook-encoder", ToyEncoder)


def test_build_refuses_a_component_that_breaks_its_kind_contract(toy_registry: Registry) -> None:
    """The toy encoder has a valid Config but does not subclass lca.contracts.encoder.Encoder: it can be
    listed, described and validated, but building it names the component, its origin and what is missing."""
    toy_registry.make_config("encoder", "toy-encoder", {"dim": 3})
    with pytest.raises(ContractError) as info:
        toy_registry.build("encoder", "toy-encoder", {"dim": 3})
    message = str(info.value)
    assert "encoder 'toy-encoder'" in message and "lca_toy.components:ToyEncoder" in message
    assert "lca_toy.hooks" in message and "must subclass lca.contracts.encoder.Encoder" in message


def test_build_refuses_a_config_outside_the_kinds_config_base() -> None:
    from lca_toy.components import ToyEncoderConfig

    from lca.contracts.dataset import Dataset

    registry = Registry()

    @registry.register("dataset", "odd-dataset")
    class OddDataset(Dataset):
        """A dataset whose config is not a DatasetConfig: the trainer could not set its view counts."""

        Config = ToyEncoderConfig

        def __len__(self) -> int:
            return 0

        def provenance(self):  # pragma: no cover - never built
            raise NotImplementedError

        def make_sample(self, index, rng):  # pragma: no cover - never built
            raise NotImplementedError

    with pytest.raises(
        ContractError, match=r"its Config must derive from lca\.contracts\.dataset\.DatasetConfig"
    ):
        registry.build("dataset", "odd-dataset", {})


def test_build_validates_params_with_suggestions(toy_registry: Registry) -> None:
    from lca.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        toy_registry.make_config("encoder", "toy-encoder", {"dimm": 3, "depth": "deep"})
    message = str(info.value)
    assert "did you mean 'dim'?" in message
    assert "valid fields: depth, dim, mode" in message
    assert "depth" in message and "'deep'" in message


@pytest.mark.parametrize(
    ("fragment", "problem"),
    [
        ({"components": {"encoder": {"Bad_Name": {"target": "a:B"}}}}, "not kebab-case"),
        ({"components": {"encoder": {"ok-name": {"target": "no colon"}}}}, "is not 'module:Class'"),
        ({"components": {"encoder": {"ok-name": {"summary": "no target"}}}}, "needs a 'target"),
        ({"components": {"encoder": {"ok-name": {"target": "a:B", "sumary": "x"}}}}, "unknown keys"),
        ({"componentz": {}}, "unknown top-level keys"),
    ],
)
def test_bad_fragments_name_the_file_and_problem(fragment: dict, problem: str) -> None:
    with pytest.raises(RegistryFileError) as info:
        Registry().add_fragment(fragment, origin="test", source="bad/registry.yaml")
    assert "bad/registry.yaml" in str(info.value) and problem in str(info.value)


def test_fragment_with_unknown_kind() -> None:
    with pytest.raises(UnknownKindError, match="encodr"):
        Registry().add_fragment({"components": {"encodr": {}}}, origin="t", source="x.yaml")


def test_registry_file_errors_for_missing_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(RegistryFileError, match="cannot be read"):
        Registry().add_file(tmp_path / "missing.yaml", origin="t")
    bad = tmp_path / "bad.yaml"
    bad.write_text("components: [unclosed")
    with pytest.raises(RegistryFileError, match="not valid YAML"):
        Registry().add_file(bad, origin="t")


def test_plugin_failure_text() -> None:
    failure = PluginFailure("p", "entry point 'p' of dist", "ImportError: x")
    assert failure.describe() == "plugin 'p' (entry point 'p' of dist) failed to load: ImportError: x"
