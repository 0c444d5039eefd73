"""Resolving a pipeline: a registered name or a YAML file, its ``base:`` chain and overrides become a
fully validated :class:`PipelineConfig`, or one :class:`~lca.errors.ConfigError` listing every problem
of every slot, section and stage, each at its dotted path. Only the components a pipeline names are
imported (to read their config models); nothing is built.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lca.component import ComponentConfig
from lca.config.defaults import DEFAULT_LOSS_TERMS
from lca.config.overrides import SECTIONS, SLOT_GROUPS, SLOTS, Override, apply_overrides
from lca.config.sections import (
    LossOptions,
    ModelOptions,
    RunOptions,
    Section,
    StageConfig,
    unsafe_name_message,
)
from lca.errors import (
    ComponentImportError,
    ConfigError,
    ConfigIssue,
    LcaError,
    UnknownPipelineError,
    did_you_mean,
    hint_for,
)
from lca.registry import Registry, default_registry
from lca.validation import validate_model

SECTION_MODELS: dict[str, type[Section]] = {"model": ModelOptions, "loss": LossOptions, "run": RunOptions}
TOP_LEVEL_KEYS = ("name", "summary", "base", "slots", *SECTIONS, "schedule", "meta")
_TERM_NAME = re.compile(r"^[a-z0-9]+([_-][a-z0-9]+)*$")


@dataclass
class SlotConfig:
    """A validated slot: which component (``type``) of which kind, with its config."""

    kind: str
    type: str
    config: ComponentConfig

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.config.model_dump(mode="json")}


@dataclass
class PipelineConfig:
    """A fully resolved, validated pipeline. ``to_yaml`` / ``resolve_pipeline(file)`` round-trip."""

    name: str
    summary: str
    slots: dict[str, SlotConfig]
    drivers: dict[str, SlotConfig]
    data: dict[str, SlotConfig]
    model: ModelOptions
    loss: LossOptions
    run: RunOptions
    schedule: list[StageConfig] = field(default_factory=list)

    def stage(self, name: str) -> StageConfig:
        names = [s.name for s in self.schedule]
        if name not in names:
            suggestion = did_you_mean(name, names)
            raise LcaError(
                f"Pipeline '{self.name}' has no stage '{name}'.{suggestion} Stages: {', '.join(names)}."
            )
        return self.schedule[names.index(name)]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (no Python tags): what ``lca config show`` prints and each run writes."""
        return {
            "name": self.name,
            "summary": self.summary,
            "slots": {
                **{slot: cfg.to_dict() for slot, cfg in self.slots.items()},
                "drivers": {member: cfg.to_dict() for member, cfg in self.drivers.items()},
                "data": {member: cfg.to_dict() for member, cfg in self.data.items()},
            },
            **{name: getattr(self, name).model_dump(mode="json") for name in SECTIONS},
            "schedule": [stage.model_dump(mode="json") for stage in self.schedule],
        }

    def to_yaml(self, meta: Mapping[str, Any] | None = None) -> str:
        data = self.to_dict()
        if meta:
            data["meta"] = dict(meta)
        return yaml.safe_dump(data, sort_keys=False)


def _merge_slot(base: Any, child: Any) -> Any:
    """A child slot with another ``type`` replaces the base's; otherwise params merge."""
    if not isinstance(base, Mapping) or not isinstance(child, Mapping):
        return copy.deepcopy(child)
    if "type" in child and child.get("type") != base.get("type"):
        return copy.deepcopy(dict(child))
    return {**copy.deepcopy(dict(base)), **copy.deepcopy(dict(child))}


def _merge_group(base: Any, child: Mapping[str, Any]) -> dict[str, Any]:
    """Named members (a slot group, the loss terms) merge member by member; a member set to null goes."""
    group = copy.deepcopy(dict(base)) if isinstance(base, Mapping) else {}
    for member, body in child.items():
        if body is None:
            group.pop(member, None)
        else:
            group[member] = _merge_slot(group.get(member), body)
    return group


def _merge(base: dict[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Single inheritance: slots merge per slot (and per group member), sections merge per field, except
    ``loss.terms``, which merges per term onto the base's (the defaults when the base names none), a
    child's ``schedule`` replaces the base's, ``summary`` is the child's."""
    merged = copy.deepcopy(base)
    for key, value in child.items():
        if key == "slots" and isinstance(value, Mapping):
            slots = merged.setdefault("slots", {})
            for slot, body in value.items():
                if slot in SLOT_GROUPS and isinstance(body, Mapping):
                    slots[slot] = _merge_group(slots.get(slot), body)
                else:
                    slots[slot] = _merge_slot(slots.get(slot), body)
        elif key in SECTIONS and isinstance(value, Mapping):
            section = merged.get(key) if isinstance(merged.get(key), Mapping) else {}
            terms = value.get("terms")
            merged[key] = {**section, **copy.deepcopy(dict(value))}
            if key == "loss" and isinstance(terms, Mapping):
                merged[key]["terms"] = _merge_group(section.get("terms", DEFAULT_LOSS_TERMS), terms)
        elif key != "base":
            merged[key] = copy.deepcopy(value)
    return merged


def _flatten_inheritance(
    registry: Registry, name: str, body: Mapping[str, Any], chain: tuple[str, ...]
) -> dict:
    base_name = body.get("base")
    if base_name is None:
        return copy.deepcopy({k: v for k, v in body.items() if k != "base"})
    if base_name in chain:
        raise LcaError(f"Pipeline inheritance loops: {' -> '.join((*chain, base_name))}.")
    try:
        base_entry = registry.pipeline(base_name)
    except UnknownPipelineError as error:  # name where the bad name was written
        raise LcaError(f"{name}, key 'base': {error}") from None
    base = _flatten_inheritance(registry, base_name, base_entry.data, (*chain, base_name))
    return _merge(base, body)


def _validate_slot(
    registry: Registry, kind: str, path: str, body: Any, where: str, issues: list[ConfigIssue]
) -> SlotConfig | None:
    if not isinstance(body, Mapping) or not isinstance(body.get("type"), str):
        issues.append(ConfigIssue(path, f"expected {{type: <{kind} name>, ...params}}, got {body!r}"))
        return None
    params = {k: v for k, v in body.items() if k != "type"}
    try:
        cls = registry.load(kind, body["type"], where=where)
    except (LcaError, ComponentImportError) as error:
        issues.append(ConfigIssue(path, str(error)))
        return None
    config, problems = validate_model(cls.Config, params, path)
    issues.extend(problems)
    return None if config is None else SlotConfig(kind, body["type"], config)


def _where(label: str, path: str, switched: Mapping[str, str]) -> str:
    if path in switched:
        return f"override '{switched[path]}' of {label}"
    return f"{label}, slot '{path}'"


def resolve_raw(
    raw: Mapping[str, Any],
    label: str,
    overrides: Sequence[str | Override] = (),
    registry: Registry | None = None,
) -> PipelineConfig:
    """Validate a raw (inheritance-flattened) definition with overrides; raise one ConfigError."""
    registry = registry or default_registry()
    definition, switched, issues = apply_overrides(dict(raw), overrides)

    for key in definition:
        if key not in TOP_LEVEL_KEYS:
            suggestion = hint_for(str(key), TOP_LEVEL_KEYS)
            issues.append(
                ConfigIssue(str(key), f"unknown key{suggestion}; valid keys: {', '.join(TOP_LEVEL_KEYS)}")
            )

    raw_slots = definition.get("slots") or {}
    slots: dict[str, SlotConfig] = {}
    groups: dict[str, dict[str, SlotConfig]] = {group: {} for group in SLOT_GROUPS}
    for slot in raw_slots:
        if slot not in SLOTS and slot not in SLOT_GROUPS:
            suggestion = hint_for(str(slot), [*SLOTS, *SLOT_GROUPS])
            issues.append(
                ConfigIssue(
                    str(slot), f"unknown slot{suggestion}; slots: {', '.join([*SLOTS, *SLOT_GROUPS])}"
                )
            )
    for slot, kind in SLOTS.items():
        if slot not in raw_slots:
            issues.append(ConfigIssue(slot, f"missing slot (needs a {kind}: '{slot}=NAME')"))
            continue
        config = _validate_slot(registry, kind, slot, raw_slots[slot], _where(label, slot, switched), issues)
        if config is not None:
            slots[slot] = config
    for group, kind in SLOT_GROUPS.items():
        members = raw_slots.get(group) or {}
        if not isinstance(members, Mapping):
            issues.append(ConfigIssue(group, f"expected a mapping of named {kind} slots, got {members!r}"))
            continue
        for member, body in members.items():
            path = f"{group}.{member}"
            config = _validate_slot(registry, kind, path, body, _where(label, path, switched), issues)
            if config is not None:
                groups[group][member] = config

    sections: dict[str, Any] = {}
    for name, model in SECTION_MODELS.items():
        sections[name], problems = validate_model(model, definition.get(name) or {}, name)
        issues.extend(problems)
    if sections["loss"] is not None:
        terms = validate_loss_terms(registry, sections["loss"].terms, issues, label, switched)
        sections["loss"].terms = {name: term.to_dict() for name, term in terms.items()}

    schedule = _validate_schedule(
        definition.get("schedule") or [], set(raw_slots.get("data") or {}), groups["data"], issues
    )
    name = str(definition.get("name") or label)
    unsafe = unsafe_name_message("pipeline", name)
    if unsafe:
        issues.append(ConfigIssue("name", unsafe))
    if issues:
        raise ConfigError(label, issues)
    return PipelineConfig(
        name=name,
        summary=str(definition.get("summary", "")),
        slots=slots,
        drivers=groups["drivers"],
        data=groups["data"],
        schedule=schedule,
        **sections,
    )


def validate_loss_terms(
    registry: Registry,
    raw: Mapping[str, Any],
    issues: list[ConfigIssue],
    label: str = "loss config",
    switched: Mapping[str, str] | None = None,
) -> dict[str, SlotConfig]:
    """Each ``loss.terms`` member against its loss component's config, problems at ``loss.terms.NAME``.

    Resolution stores the validated terms back as plain data with every param (defaults filled in), so
    ``lca config show`` prints the whole objective; the objective validates again to build them.
    """
    switched = switched or {}
    if not raw:
        issues.append(
            ConfigIssue(
                "loss.terms",
                "no loss terms: training would minimise nothing; add one: 'loss.terms.NAME={type: TYPE, "
                "weight: W}' (types: lca registry list loss)",
            )
        )
    terms: dict[str, SlotConfig] = {}
    for name, body in raw.items():
        path = f"loss.terms.{name}"
        if not _TERM_NAME.match(str(name)):
            issues.append(
                ConfigIssue(
                    path, "a term name is lowercase letters and digits joined by '_' or '-' (it is a log tag)"
                )
            )
            continue
        where = (
            f"override '{switched[path]}' of {label}" if path in switched else f"{label}, loss term '{name}'"
        )
        term = _validate_slot(registry, "loss", path, body, where, issues)
        if term is not None:
            terms[name] = term
    return terms


_VIEW_COUNTS = ("num_references", "num_targets")


def _without_view_counts(
    body: Any, path: str, data: Mapping[str, SlotConfig], issues: list[ConfigIssue]
) -> Any:
    """``body`` without the view counts configs of earlier versions repeated on a stage. The data slot is
    their one place (training, evaluation and avatar creation all read it): a copy equal to the slot's is
    dropped, one that differs is an error naming both, never a silent override."""
    if not isinstance(body, Mapping) or not any(key in body for key in _VIEW_COUNTS):
        return body
    slot = data.get(body.get("data"))  # type: ignore[arg-type]
    for key in _VIEW_COUNTS:
        if key in body and slot is not None and body[key] != getattr(slot.config, key):
            member = body["data"]
            issues.append(
                ConfigIssue(
                    f"{path}.{key}",
                    f"{body[key]!r} differs from data.{member}.{key}={getattr(slot.config, key)}: the views "
                    "per sample are set once, on the stage's data slot (training, evaluation and avatar "
                    f"creation all read it); set data.{member}.{key}={body[key]} instead (a stage that needs "
                    "other counts reads a data slot of its own)",
                )
            )
    return {key: value for key, value in body.items() if key not in _VIEW_COUNTS}


def _validate_schedule(
    raw: Any, data_members: set[str], data: Mapping[str, SlotConfig], issues: list[ConfigIssue]
) -> list[StageConfig]:
    if not isinstance(raw, list):
        issues.append(ConfigIssue("schedule", f"expected a list of stages, got {type(raw).__name__}"))
        return []
    if not raw:
        issues.append(
            ConfigIssue(
                "schedule",
                "no stages: nothing to train; add one, e.g. 'schedule: [{name: pretrain, data: wild, "
                "steps: 100}]' (its fields: docs/training.md)",
            )
        )
    stages: list[StageConfig] = []
    named: list[str] = []  # every earlier stage's name, invalid stages' too: their errors must not cascade
    for index, body in enumerate(raw):
        name = body.get("name") if isinstance(body, Mapping) else None
        label = name if isinstance(name, str) and name else index
        body = _without_view_counts(body, f"schedule.{label}", data, issues)
        stage, problems = validate_model(StageConfig, body, f"schedule.{label}")
        issues.extend(problems)
        earlier = list(named)
        if isinstance(name, str):
            named.append(name)
        if stage is None:
            continue
        path = f"schedule.{stage.name}"
        if stage.name in earlier:
            issues.append(ConfigIssue(f"{path}.name", "stage names must be unique"))
        if stage.data not in data_members:
            suggestion = hint_for(stage.data, data_members)
            issues.append(
                ConfigIssue(
                    f"{path}.data",
                    f"no dataset slot 'data.{stage.data}'{suggestion}; "
                    f"data slots: {', '.join(sorted(data_members)) or '(none)'}",
                )
            )
        if (
            stage.init_from is not None
            and stage.init_from not in earlier
            and not Path(stage.init_from).exists()
        ):
            issues.append(
                ConfigIssue(
                    f"{path}.init_from",
                    f"'{stage.init_from}' is neither an earlier stage ({', '.join(earlier) or 'none'}) "
                    "nor an existing checkpoint",
                )
            )
        stages.append(stage)
    return stages


def load_definition(source: str | Path, registry: Registry | None = None) -> tuple[dict[str, Any], str]:
    """The inheritance-flattened raw definition of a registered pipeline name or a YAML file."""
    registry = registry or default_registry()
    path = Path(source)
    if str(source).endswith((".yaml", ".yml")) or path.is_file():
        if path.is_dir():
            raise LcaError(f"Config file {path} is a directory; give the YAML file inside it.")
        if not path.is_file():
            raise LcaError(f"Config file not found: {path}")
        try:
            body = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as error:
            raise LcaError(f"Config file {path} is not UTF-8 text ({error}); save it as UTF-8.") from error
        except yaml.YAMLError as error:
            raise LcaError(f"Config file {path} is not valid YAML: {error}") from error
        if not isinstance(body, Mapping):
            raise LcaError(f"Config file {path} must hold a mapping at the top level.")
        label = f"config file '{path}'"
        body = {**body, "name": body.get("name", path.stem)}
        return _flatten_inheritance(registry, str(path), body, (str(path),)), label
    entry = registry.pipeline(str(source))
    body = {"name": entry.name, **entry.data}
    return _flatten_inheritance(registry, entry.name, body, (entry.name,)), f"pipeline '{entry.name}'"


def resolve_pipeline(
    source: str | Path,
    overrides: Sequence[str | Override] = (),
    registry: Registry | None = None,
) -> PipelineConfig:
    """Resolve a registered pipeline name or a YAML file (e.g. a run's ``config.yaml``) with overrides."""
    registry = registry or default_registry()
    raw, label = load_definition(source, registry)
    return resolve_raw(raw, label, overrides, registry)
