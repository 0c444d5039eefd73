"""Override strings (``slot=name``, ``slot.field=value``, ``section.field=value``) applied to a raw
pipeline definition.

Grammar (values are parsed as YAML, so ``true``, ``3``, ``[1, 2]`` and ``null`` mean what they say):

================================  ==========================================================================
``encoder=vit-tiny``              switch the component of a slot; its params reset to the defaults
``encoder.dim=128``               set a param of the slot's component
``drivers.gaze=gaze``             add or switch a member of a slot group (``drivers``, ``data``)
``drivers.gaze=null``             remove a member of a slot group
``drivers.gaze.dim=16``           set a param of a group member
``model.depth=4``                 set a field of a core section (``model``, ``loss``, ``run``)
``loss.terms.lpips=lpips``        add or switch a loss term (its params reset; a YAML mapping sets them all)
``loss.terms.kl=null``            remove a loss term
``loss.terms.lpips.weight=0.1``   set a param of a loss term
``schedule.pretrain.steps=50``    set a field of a training stage, addressed by its name
================================  ==========================================================================

Switches are applied before field edits, so the order of overrides never matters.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import yaml

from lca.config.defaults import DEFAULT_LOSS_TERMS
from lca.errors import ConfigIssue, OverrideError, hint_for

SLOTS: dict[str, str] = {
    "template": "template",
    "encoder": "encoder",
    "tokenizer": "tokenizer",
    "block": "block",
    "decoder": "decoder",
    "rasterizer": "rasterizer",
}
"""Single slots of a pipeline and the kind each holds."""

SLOT_GROUPS: dict[str, str] = {"drivers": "driver", "data": "dataset"}
"""Slot groups (named members, any number) and the kind their members hold."""

SECTIONS: tuple[str, ...] = ("model", "loss", "run")
"""Core sections addressed by ``section.field=value``."""

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_value(text: str) -> Any:
    """YAML-parse an override value; ``1e-3`` is a float (YAML 1.1 would read it as a string)."""
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as error:
        raise OverrideError(f"cannot parse value {text!r}: {error}") from error
    if isinstance(value, str) and _FLOAT.fullmatch(text.strip()):  # unquoted only: '1e-3' stays a string
        return float(value)
    return value


@dataclass(frozen=True)
class Override:
    """One parsed override: the dotted path, the parsed value and the text it came from."""

    path: tuple[str, ...]
    value: Any
    text: str

    @classmethod
    def parse(cls, text: str) -> Override:
        key, sep, raw = text.partition("=")
        path = tuple(key.strip().split("."))
        if not sep or not all(path):
            raise OverrideError(
                f"cannot parse override {text!r}: expected KEY=VALUE, "
                "e.g. 'encoder=vit-tiny' or 'model.depth=4'"
            )
        return cls(path, parse_value(raw), text)

    @property
    def is_switch(self) -> bool:
        head = self.path[0]
        return (
            (head in SLOTS and len(self.path) == 1)
            or (head in SLOT_GROUPS and len(self.path) == 2)
            or (self.path[:2] == ("loss", "terms") and len(self.path) == 3)
        )


def _set(mapping: MutableMapping[str, Any], keys: Iterable[str], value: Any) -> None:
    *parents, last = keys
    for key in parents:
        child = mapping.get(key)
        if not isinstance(child, MutableMapping):
            child = mapping[key] = {}
        mapping = child
    mapping[last] = value


def apply_overrides(
    raw: dict[str, Any], overrides: Iterable[str | Override]
) -> tuple[dict[str, Any], dict[str, str], list[ConfigIssue]]:
    """Apply overrides to a raw pipeline definition (not modified in place).

    Returns the new definition, the override text that chose each switched slot (``{"encoder":
    "encoder=vit-tiny"}``, used to say where an unknown name was asked for) and the problems found.
    """
    result = copy.deepcopy(raw)
    slots = result.setdefault("slots", {})
    parsed = [o if isinstance(o, Override) else Override.parse(o) for o in overrides]
    switched: dict[str, str] = {}
    issues: list[ConfigIssue] = []

    for override in sorted(parsed, key=lambda o: not o.is_switch):  # stable: switches first
        head, *rest = override.path
        if head in SLOTS:
            if rest:
                _set(slots.setdefault(head, {}), rest, override.value)
            else:
                slots[head] = {"type": override.value}
                switched[head] = override.text
        elif head in SLOT_GROUPS:
            group = slots.setdefault(head, {}) if isinstance(slots.get(head), dict) else {}
            slots[head] = group
            if not rest:
                issues.append(ConfigIssue(head, f"name a member: '{head}.NAME=TYPE' (got {override.text!r})"))
            elif len(rest) == 1 and override.value is None:
                group.pop(rest[0], None)
            elif len(rest) == 1:
                group[rest[0]] = {"type": override.value}
                switched[f"{head}.{rest[0]}"] = override.text
            else:
                _set(group.setdefault(rest[0], {}), rest[1:], override.value)
        elif head == "loss" and rest[:1] == ["terms"]:
            _override_loss_term(result, override, switched, issues)
        elif head in SECTIONS and rest:
            section = result.get(head)
            if not isinstance(section, dict):
                section = result[head] = {}
            _set(section, rest, override.value)
        elif head == "schedule" and len(rest) >= 2:
            stages = [s for s in result.get("schedule") or [] if isinstance(s, dict)]
            names = [str(s.get("name")) for s in stages]
            if rest[0] not in names:
                suggestion = hint_for(rest[0], names)
                issues.append(
                    ConfigIssue(
                        f"schedule.{rest[0]}",
                        f"no stage named '{rest[0]}'{suggestion}; stages: {', '.join(names)}",
                    )
                )
            else:
                _set(stages[names.index(rest[0])], rest[1:], override.value)
        else:
            valid = [*SLOTS, *SLOT_GROUPS, *SECTIONS, "schedule"]
            suggestion = "" if head in valid else hint_for(head, valid)  # never "did you mean" the same key
            issues.append(
                ConfigIssue(
                    ".".join(override.path),
                    f"cannot override {override.text!r}{suggestion}; overridable: slots {', '.join(SLOTS)}, "
                    f"groups {', '.join(f'{g}.NAME' for g in SLOT_GROUPS)}, sections "
                    f"{', '.join(f'{s}.FIELD' for s in SECTIONS)}, schedule.STAGE.FIELD",
                )
            )
    return result, switched, issues


def _override_loss_term(
    result: dict[str, Any], override: Override, switched: dict[str, str], issues: list[ConfigIssue]
) -> None:
    """``loss.terms.NAME=TYPE|{mapping}|null`` and ``loss.terms.NAME.FIELD=value``, on the definition's
    terms, or on the default terms when it names none (the ones it would get)."""
    section = result.get("loss")
    if not isinstance(section, dict):
        section = result["loss"] = {}
    terms = section.get("terms")
    if not isinstance(terms, dict):
        terms = section["terms"] = copy.deepcopy(DEFAULT_LOSS_TERMS)
    path = ".".join(override.path)
    if len(override.path) == 2:
        issues.append(ConfigIssue(path, f"name a term: 'loss.terms.NAME=TYPE' (got {override.text!r})"))
        return
    name = override.path[2]
    if len(override.path) == 3:
        if override.value is None:
            terms.pop(name, None)
        else:
            value = override.value
            terms[name] = copy.deepcopy(dict(value)) if isinstance(value, dict) else {"type": value}
            switched[f"loss.terms.{name}"] = override.text
    elif name not in terms:
        suggestion = hint_for(name, terms)
        issues.append(
            ConfigIssue(
                f"loss.terms.{name}",
                f"no loss term '{name}'{suggestion}; terms: {', '.join(terms) or '(none)'}; "
                f"add one with 'loss.terms.{name}=TYPE'",
            )
        )
    else:
        if not isinstance(terms[name], dict):
            terms[name] = {}
        _set(terms[name], override.path[3:], override.value)
