"""The toolkit's errors. Every error a user can cause derives from :class:`LcaError`; the CLI prints
its message without a traceback and exits with code 2 (``--debug`` shows the traceback).

Messages are built here, in one place, so that they read the same from the CLI, a notebook or a test:
what was asked for, where it was asked for, what exists instead, and the command that lists it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class LcaError(Exception):
    """Base of the toolkit's user-facing errors."""

    exit_code: int = 2


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The names closest to ``name`` (difflib ratio >= 0.6), best first."""
    return difflib.get_close_matches(name, sorted(set(candidates)), n=n, cutoff=0.6)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean 'x' or 'y'?`` for the closest candidates, or ``""``: ends a sentence of a message."""
    matches = close_matches(name, candidates)
    return f" Did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""


def hint_for(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``""``: the hint every located config
    message ends its first clause with."""
    matches = close_matches(name, candidates)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded: kept and repeated in later lookup errors, never dropped."""

    plugin: str
    origin: str
    error: str

    def describe(self) -> str:
        return f"plugin '{self.plugin}' ({self.origin}) failed to load: {self.error}"


def _failures_note(failures: Sequence[PluginFailure]) -> str:
    if not failures:
        return ""
    lines = "\n".join(f"  - {f.describe()}" for f in failures)
    return f"\nNote: some plugins failed to load, so their components are missing:\n{lines}"


class UnknownComponentError(LcaError, LookupError):
    """A component name that is not registered under the requested kind."""

    def __init__(
        self,
        kind: str,
        name: str,
        known: Sequence[str],
        *,
        where: str | None = None,
        other_kinds: Sequence[str] = (),
        failures: Sequence[PluginFailure] = (),
    ) -> None:
        self.kind, self.name, self.known, self.where = kind, name, list(known), where
        self.other_kinds, self.failures = list(other_kinds), list(failures)
        location = f" (asked for in {where})" if where else ""
        message = f"Unknown {kind} '{name}'{location}.{did_you_mean(name, known)}"
        if other_kinds:
            kinds = ", ".join(repr(k) for k in other_kinds)
            message += f"\nNote: '{name}' exists under kind {kinds}, but this slot expects kind '{kind}'."
        shown = ", ".join(sorted(known)) if known else "(none)"
        message += (
            f"\nKnown {kind} components ({len(known)}): {shown}.  List them with: lca registry list {kind}"
        )
        message += _failures_note(failures)
        super().__init__(message)

    def __str__(self) -> str:  # LookupError would otherwise repr() the message, escaping newlines
        return self.args[0]


class UnknownKindError(LcaError, LookupError):
    """A kind that the toolkit does not define."""

    def __init__(self, kind: str, known: Sequence[str], *, where: str | None = None) -> None:
        location = f" (in {where})" if where else ""
        super().__init__(
            f"Unknown component kind '{kind}'{location}.{did_you_mean(kind, known)} "
            f"Kinds: {', '.join(known)}."
        )

    def __str__(self) -> str:
        return self.args[0]


class UnknownPipelineError(LcaError, LookupError):
    """A pipeline name that is neither registered nor an existing file."""

    def __init__(self, name: str, known: Sequence[str], failures: Sequence[PluginFailure] = ()) -> None:
        message = (
            f"Unknown pipeline '{name}' (not a registered pipeline and not a config file)."
            f"{did_you_mean(name, known)}\nKnown pipelines: {', '.join(sorted(known)) or '(none)'}."
            "  List them with: lca registry list pipeline"
        )
        super().__init__(message + _failures_note(failures))

    def __str__(self) -> str:
        return self.args[0]


class ComponentImportError(LcaError, ImportError):
    """A registered component whose module or class cannot be imported; chained to the real cause."""

    def __init__(self, kind: str, name: str, target: str, origin: str, cause: BaseException) -> None:
        super().__init__(
            f"{kind} '{name}' is registered (by {origin}) as '{target}', but importing it failed: "
            f"{type(cause).__name__}: {cause}"
        )


class ContractError(LcaError, TypeError):
    """A component that does not subclass its kind's contract (or its config the kind's config base)."""


class ComponentBuildError(LcaError, ValueError):
    """A component that refused its (individually valid) config when built: a rule across its fields or its
    context (an image size not divisible by the patch size, a width not divisible by the heads, ...).
    Names the slot once the assembler knows it."""

    def __init__(self, kind: str, name: str, cause: BaseException, slot: str | None = None) -> None:
        self.kind, self.name, self.cause, self.slot = kind, name, cause, slot
        where = f"slot '{slot}' ({kind} '{name}')" if slot else f"{kind} '{name}'"
        super().__init__(f"{where} refuses its config: {cause}")

    def at(self, slot: str) -> ComponentBuildError:
        """The same error, naming the pipeline slot it was built for."""
        return ComponentBuildError(self.kind, self.name, self.cause, slot)


class DuplicateComponentError(LcaError):
    """The same kind and name registered twice; names both origins."""

    def __init__(self, kind: str, name: str, first: str, second: str) -> None:
        super().__init__(f"{kind} '{name}' is registered twice: by {first} and by {second}.")


class RegistryFileError(LcaError):
    """A registry.yaml fragment that cannot be read or has the wrong shape."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"Invalid registry file {source}: {problem}")


class PluginLoadError(LcaError):
    """Raised where a plugin failure must stop the run (for example when listing plugins strictly)."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config, at a dotted path (``encoder.dim``, ``schedule.pretrain.steps``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(LcaError):
    """Every problem found while validating a pipeline config, reported together."""

    def __init__(self, source: str, issues: Sequence[ConfigIssue]) -> None:
        self.source, self.issues = source, list(issues)
        count = len(self.issues)
        body = "\n".join(f"  - {issue}" for issue in self.issues)
        super().__init__(f"{source} is invalid ({count} problem{'s' if count != 1 else ''}):\n{body}")


class OverrideError(LcaError):
    """An override string that cannot be parsed (``key=value`` expected)."""


class TrainingError(LcaError):
    """Training cannot go on (too many non-finite steps in a row, nothing to resume, ...)."""


class SeenInTrainingError(LcaError):
    """An evaluation of people the run trained on, without the flag that allows it."""

    def __init__(self, where: str, seen: dict[str, list[str]]) -> None:
        names = sorted(seen)
        shown = ", ".join(f"{name} (stage {', '.join(seen[name])})" for name in names[:12])
        more = f" and {len(names) - 12} more" if len(names) > 12 else ""
        super().__init__(
            f"{where}: {len(names)} of the evaluated people were in the run's training data: {shown}{more}. "
            "Their numbers would not be held out. Evaluate another split or store, or pass --allow-seen to "
            "evaluate them anyway (the results are then marked as seen in training)."
        )


class TrainingInterrupted(LcaError):
    """SIGINT/SIGTERM stopped training after a checkpoint was written; ``--resume`` continues it."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


# ------------------------------------------------------------------------------------------- data stores
# Each names the store, the group, the array and the index it concerns, so a bad chunk among a million
# clips can be found and fixed from the message alone.
@dataclass(frozen=True)
class Problem:
    """One defect of a store: where it is (store, group, array, index) and what is wrong."""

    store: str
    message: str
    group: str = ""
    array: str = ""
    index: tuple[int, ...] | None = None

    def where(self) -> str:
        parts = [f"store {self.store}"]
        if self.group:
            parts.append(f"group '{self.group}'")
        if self.array:
            parts.append(f"array '{self.array}'")
        if self.index is not None:
            parts.append(f"index {list(self.index)}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"


class StoreError(LcaError):
    """A store that cannot be used as asked; ``problems`` lists every defect found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = str(self.problems[0])
        else:
            message = f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class SchemaError(StoreError):
    """The store's structure (arrays, dtypes, shapes, attributes, version) does not match the schema."""


class ChunkError(StoreError):
    """A chunk that is missing, truncated or cannot be decoded."""


class UnresolvedStoreError(LcaError, ValueError):
    """A ``synthetic://`` URL reached code that takes concrete store locations only."""

    def __init__(self, url: str, where: str) -> None:
        super().__init__(
            f"{where} takes a concrete store location, not {url!r}: resolve synthetic:// URLs first with "
            "lca.data.locations.resolve_store_url (or resolve_data_paths for a pipeline's data slots), "
            "which generates the synthetic stores if they are missing."
        )


# ------------------------------------------------------------------------------------------ model components
class WeightsNotFoundError(LcaError, FileNotFoundError):
    """A pretrained-weights file that is not where the config says; names the file and where to get it."""

    def __init__(self, component: str, path: str, how_to_get: str, reason: str = "does not exist") -> None:
        super().__init__(
            f"{component}: weights file '{path}' {reason}. The toolkit never downloads weights at run "
            f"time; {how_to_get} and set the component's `weights` field to its local path (or set "
            "`weights: null` for a random initialisation)."
        )


class WeightsMismatchError(LcaError, ValueError):
    """A weights file whose tensors do not fit the configured architecture."""


class SignalError(LcaError, KeyError, ValueError):
    """A driving signal that is missing or has the wrong shape."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]
