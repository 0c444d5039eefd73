"""The component registry: kind -> name -> where to find the component, read from registry.yaml
fragments that plugins hand over, plus objects registered directly (notebooks, tests).

Nothing is imported to list or describe a component: a catalogue entry is an import target string,
and the component's module is imported by :meth:`Registry.load` only when it is validated or built.

>>> from lca.registry import default_registry
>>> reg = default_registry()
>>> [spec.name for spec in reg.list("encoder", "vit-*")]          # doctest: +SKIP
>>> encoder = reg.build("encoder", "vit-tiny", dim=64)             # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lca.component import ComponentConfig
from lca.errors import (
    ComponentBuildError,
    ComponentImportError,
    ContractError,
    DuplicateComponentError,
    PluginFailure,
    RegistryFileError,
    UnknownComponentError,
    UnknownKindError,
    UnknownPipelineError,
)
from lca.validation import validate_model

#: The component kinds: for each, the contract class its components subclass and the base its ``Config``
#: derives from, as import targets (the registry imports them only when it loads a component, so listing
#: stays free of torch). Each kind is also a section of registry.yaml.
KIND_CONTRACTS: dict[str, tuple[str, str]] = {
    "template": ("lca.contracts.template:Template", "lca.component:ComponentConfig"),
    "rasterizer": ("lca.contracts.rasterizer:Rasterizer", "lca.contracts.rasterizer:RasterizerConfig"),
    "encoder": ("lca.contracts.encoder:Encoder", "lca.component:ComponentConfig"),
    "tokenizer": ("lca.contracts.tokenizer:Tokenizer", "lca.component:ComponentConfig"),
    "block": ("lca.contracts.block:Block", "lca.component:ComponentConfig"),
    "driver": ("lca.contracts.driver:Driver", "lca.component:ComponentConfig"),
    "decoder": ("lca.contracts.decoder:Decoder", "lca.component:ComponentConfig"),
    "dataset": ("lca.contracts.dataset:Dataset", "lca.contracts.dataset:DatasetConfig"),
    "loss": ("lca.contracts.loss:Loss", "lca.contracts.loss:LossConfig"),
    "importer": ("lca.contracts.importer:Importer", "lca.contracts.importer:ImporterConfig"),
}
KINDS: tuple[str, ...] = tuple(KIND_CONTRACTS)

_NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_TARGET_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
RUNTIME = "runtime"

T = TypeVar("T")


@dataclass(frozen=True)
class ComponentSpec:
    """One catalogue entry. ``target`` is ``module:attr`` for file entries; ``obj`` for direct ones."""

    kind: str
    name: str
    summary: str
    origin: str
    source: str
    target: str | None = None
    obj: Any = None

    @property
    def target_text(self) -> str:
        if self.target is not None:
            return self.target
        return f"{self.obj.__module__}:{self.obj.__qualname__}"

    def describe_origin(self) -> str:
        return f"plugin '{self.origin}' ({self.source})"


@dataclass(frozen=True)
class PipelineEntry:
    """A named pipeline as written in a registry fragment (unresolved; see :mod:`lca.config`)."""

    name: str
    data: Mapping[str, Any]
    origin: str
    source: str

    @property
    def summary(self) -> str:
        return str(self.data.get("summary", ""))


@dataclass
class Registry:
    """Catalogue of components and named pipelines, with the plugin failures seen while loading."""

    failures: list[PluginFailure] = field(default_factory=list)
    plugins: list[Any] = field(default_factory=list)
    _components: dict[str, dict[str, ComponentSpec]] = field(default_factory=lambda: {k: {} for k in KINDS})
    _pipelines: dict[str, PipelineEntry] = field(default_factory=dict)

    # ----------------------------------------------------------------------------------- adding
    def add_file(self, path: Path | Any, origin: str) -> None:
        """Add a registry.yaml fragment (a path or an ``importlib.resources`` file)."""
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise RegistryFileError(source, f"cannot be read ({error})") from error
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise RegistryFileError(source, f"is not valid YAML ({error})") from error
        self.add_fragment(data, origin=origin, source=source)

    def add_fragment(self, data: Mapping[str, Any], *, origin: str, source: str) -> None:
        """Add the components and pipelines of one parsed fragment."""
        if not isinstance(data, Mapping):
            raise RegistryFileError(source, "the top level must be a mapping")
        unknown = set(data) - {"version", "components", "pipelines"}
        if unknown:
            raise RegistryFileError(source, f"unknown top-level keys {sorted(unknown)}")
        components = data.get("components") or {}
        if not isinstance(components, Mapping):
            raise RegistryFileError(source, "'components' must map kinds to entries")
        for kind, entries in components.items():
            if kind not in KINDS:
                raise UnknownKindError(kind, KINDS, where=source)
            for name, entry in (entries or {}).items():
                self._add_spec(self._spec_from_entry(kind, name, entry, origin, source))
        pipelines = data.get("pipelines") or {}
        if not isinstance(pipelines, Mapping):
            raise RegistryFileError(source, "'pipelines' must map names to pipeline definitions")
        for name, body in pipelines.items():
            self._check_name(name, source, "pipeline")
            if not isinstance(body, Mapping):
                raise RegistryFileError(source, f"pipeline '{name}' must be a mapping")
            if name in self._pipelines:
                first = self._pipelines[name]
                raise DuplicateComponentError("pipeline", name, f"{first.origin} ({first.source})", source)
            self._pipelines[name] = PipelineEntry(name, body, origin, source)

    def _check_name(self, name: Any, source: str, kind: str) -> None:
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise RegistryFileError(source, f"{kind} name {name!r} is not kebab-case (e.g. 'vit-tiny')")

    def _spec_from_entry(self, kind: str, name: str, entry: Any, origin: str, source: str) -> ComponentSpec:
        self._check_name(name, source, kind)
        if isinstance(entry, str):
            entry = {"target": entry}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("target"), str):
            raise RegistryFileError(source, f"{kind} '{name}' needs a 'target: \"module:Class\"' entry")
        target = entry["target"]
        if not _TARGET_PATTERN.match(target):
            raise RegistryFileError(source, f"{kind} '{name}': target {target!r} is not 'module:Class'")
        extra = set(entry) - {"target", "summary"}
        if extra:
            raise RegistryFileError(source, f"{kind} '{name}': unknown keys {sorted(extra)}")
        return ComponentSpec(kind, name, str(entry.get("summary", "")), origin, source, target=target)

    def _add_spec(self, spec: ComponentSpec, *, replace: bool = False) -> None:
        existing = self._components[spec.kind].get(spec.name)
        # Re-running a notebook cell re-registers the same class: replace it rather than fail.
        same_runtime_object = (
            existing is not None
            and existing.source == RUNTIME == spec.source
            and existing.target_text == spec.target_text
        )
        if existing is not None and not (replace or same_runtime_object):
            raise DuplicateComponentError(
                spec.kind, spec.name, existing.describe_origin(), spec.describe_origin()
            )
        self._components[spec.kind][spec.name] = spec

    def register(
        self,
        kind: str,
        name: str,
        obj: T | None = None,
        *,
        summary: str | None = None,
        replace: bool = False,
    ) -> Any:
        """Register an object directly; usable as a decorator::

        @registry.register("encoder", "my-encoder")
        class MyEncoder(Encoder): ...
        """
        if kind not in KINDS:
            raise UnknownKindError(kind, KINDS)
        self._check_name(name, RUNTIME, kind)

        def decorate(target: T) -> T:
            text = summary if summary is not None else (target.__doc__ or "").strip().split("\n")[0]
            self._add_spec(ComponentSpec(kind, name, text, RUNTIME, RUNTIME, obj=target), replace=replace)
            return target

        return decorate if obj is None else decorate(obj)

    # ---------------------------------------------------------------------------------- looking up
    def names(self, kind: str) -> list[str]:
        self._check_kind(kind)
        return sorted(self._components[kind])

    def list(self, kind: str | None = None, pattern: str | None = None) -> list[ComponentSpec]:
        """Catalogue entries, sorted by kind then name; ``pattern`` is a shell wildcard (``vit-*``)."""
        kinds = KINDS if kind is None else (self._check_kind(kind),)
        return [
            spec
            for k in kinds
            for name, spec in sorted(self._components[k].items())
            if pattern is None or fnmatch.fnmatchcase(name, pattern)
        ]

    def get(self, kind: str, name: str, *, where: str | None = None) -> ComponentSpec:
        """The entry for ``kind``/``name``, or an error naming close matches and listing commands."""
        self._check_kind(kind)
        try:
            return self._components[kind][name]
        except KeyError:
            other = [k for k in KINDS if k != kind and name in self._components[k]]
            raise UnknownComponentError(
                kind, name, self.names(kind), where=where, other_kinds=other, failures=self.failures
            ) from None

    def load(self, kind: str, name: str, *, where: str | None = None) -> Any:
        """Import and return the component class (the only place component modules are imported)."""
        spec = self.get(kind, name, where=where)
        if spec.obj is not None:
            return spec.obj
        assert spec.target is not None
        module_name, _, attr = spec.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as error:
            raise ComponentImportError(kind, name, spec.target, spec.describe_origin(), error) from error
        config = getattr(obj, "Config", None)
        if not (isinstance(config, type) and issubclass(config, ComponentConfig)):
            problem = TypeError(
                f"{spec.target} has no 'Config' class attribute deriving from ComponentConfig"
            )
            raise ComponentImportError(kind, name, spec.target, spec.describe_origin(), problem)
        return obj

    def config_class(self, kind: str, name: str) -> type[ComponentConfig]:
        return self.load(kind, name).Config

    def make_config(self, kind: str, name: str, params: Mapping[str, Any] | None = None) -> ComponentConfig:
        """Validate ``params`` against the component's config (errors name the closest valid field)."""
        cls = self.load(kind, name)
        config, issues = validate_model(cls.Config, dict(params or {}), path=f"{kind} '{name}'")
        if issues:
            from lca.errors import ConfigError

            raise ConfigError(f"{kind} '{name}' config", issues)
        return config

    def build(
        self,
        kind: str,
        name: str,
        config: ComponentConfig | Mapping[str, Any] | None = None,
        /,
        **context: Any,
    ) -> Any:
        """Build a component: ``cls(validated_config, **context)``, once :meth:`check_contract` passes."""
        cls = self.load(kind, name)
        self.check_contract(kind, name)
        if not isinstance(config, ComponentConfig):
            config = self.make_config(kind, name, config)
        elif not isinstance(config, cls.Config):
            raise ContractError(
                f"{kind} '{name}' was given a {type(config).__name__} config; it takes {cls.Config.__name__} "
                "(pass a mapping of params to have it validated)."
            )
        try:
            return cls(config, **context)
        except ComponentBuildError:
            raise
        except ValueError as error:  # a rule across fields or context: located, not a traceback
            raise ComponentBuildError(kind, name, error) from error

    def check_contract(self, kind: str, name: str) -> None:
        """Raise :class:`ContractError` unless the component subclasses its kind's contract and its
        ``Config`` the kind's config base (:data:`KIND_CONTRACTS`), so that the trainer and the model can
        rely on what the contract promises (a dataset's ``num_targets``, ...) without probing."""
        cls, spec = self.load(kind, name), self.get(kind, name)
        contract_target, config_target = KIND_CONTRACTS[kind]
        problems = []
        if not (isinstance(cls, type) and issubclass(cls, _import_target(contract_target))):
            problems.append(f"it must subclass {contract_target.replace(':', '.')}")
        if not issubclass(cls.Config, _import_target(config_target)):
            problems.append(f"its Config must derive from {config_target.replace(':', '.')}")
        if problems:
            raise ContractError(
                f"{kind} '{name}' ({spec.target_text}, registered by {spec.describe_origin()}) breaks the "
                f"{kind} contract: {'; '.join(problems)}. See docs/components.md."
            )

    # ---------------------------------------------------------------------------------- pipelines
    def pipeline_names(self) -> list[str]:
        return sorted(self._pipelines)

    def pipeline(self, name: str) -> PipelineEntry:
        try:
            return self._pipelines[name]
        except KeyError:
            raise UnknownPipelineError(name, self.pipeline_names(), self.failures) from None

    def _check_kind(self, kind: str) -> str:
        if kind not in KINDS:
            raise UnknownKindError(kind, KINDS)
        return kind


def _import_target(target: str) -> Any:
    """``module:attr`` -> the object (contract targets are the toolkit's own, so a failure is a bug)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_registry(fragments: Iterable[tuple[Any, str]] = ()) -> Registry:
    """A registry from plugins (entry points and ``LCA_PLUGINS``) plus extra ``(path, origin)`` fragments."""
    from lca.plugin_manager import load_plugins

    plugins = load_plugins()
    registry = Registry(failures=list(plugins.failures), plugins=list(plugins.loaded))
    hook = plugins.manager.hook
    for impl in hook.lca_registry_files.get_hookimpls():
        for path in impl.function() or ():
            registry.add_file(path, origin=impl.plugin_name)
    hook.lca_register(registry=registry)
    for path, origin in fragments:
        registry.add_file(path, origin=origin)
    return registry


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, built on first use from every plugin."""
    global _default
    if _default is None:
        _default = build_registry()
    return _default


def reset_default_registry() -> None:
    """Forget the process-wide registry (after changing ``LCA_PLUGINS`` or installing a plugin)."""
    global _default
    _default = None


def register(
    kind: str, name: str, obj: Any = None, *, summary: str | None = None, replace: bool = False
) -> Any:
    """Register an object in the default registry (decorator or call); see :meth:`Registry.register`."""
    return default_registry().register(kind, name, obj, summary=summary, replace=replace)


def create(
    kind: str, name: str, config: ComponentConfig | Mapping[str, Any] | None = None, /, **context: Any
) -> Any:
    """Build a component from the default registry, like timm's ``create_model``."""
    return default_registry().build(kind, name, config, **context)
