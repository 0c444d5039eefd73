"""The toolkit's built-in components, handed over exactly as a third-party plugin hands over its own:
a registry.yaml fragment returned by the ``lca_registry_files`` hook (entry point ``builtin`` of the
``lca.plugins`` group). Import-light on purpose: this module is imported whenever the registry is read."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

from lca.hookspecs import hookimpl


@hookimpl
def lca_registry_files() -> list[Traversable]:
    # In the wheel the catalogue is package data; in a source checkout plugins/registry.yaml is a
    # symbolic link to the repository's top-level registry.yaml (docs/architecture.md, "Two packages").
    return [resources.files("lca_plugins") / "registry.yaml"]
