"""Hook specifications of the ``lca`` plugin system (pluggy), documented as stubs, as pytest does.

A plugin is a Python module listed under the entry-point group :data:`ENTRY_POINT_GROUP` of its
distribution (or named in the ``LCA_PLUGINS`` environment variable). It implements any of the hooks
below with functions decorated by :data:`hookimpl`::

    # my_avatar_plugin/hooks.py
    from pathlib import Path
    from lca.hookspecs import hookimpl

    @hookimpl
    def lca_registry_files():
        return [Path(__file__).with_name("registry.yaml")]

The toolkit's own components (``lca_plugins``) are registered through this very mechanism.
Keep hook modules import-light: they are imported whenever the registry is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from lca.registry import Registry

PROJECT_NAME = "lca"
ENTRY_POINT_GROUP = "lca.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def lca_registry_files() -> Sequence[Path | Any]:
    """Return the registry.yaml fragments this plugin ships (paths or ``importlib.resources`` files).

    A fragment has the format of the toolkit's own ``registry.yaml``: ``components`` (kind -> name ->
    ``{target: "module:Class", summary: ...}``) and optionally ``pipelines``. Nothing in it is imported
    until a component is built or validated.
    """


@hookspec
def lca_register(registry: Registry) -> None:
    """Register objects directly, e.g. ``registry.register("encoder", "my-enc", MyEncoder)``.

    For components that cannot be described by an import target. Prefer a registry.yaml fragment:
    objects registered here are imported as soon as the plugin loads.
    """
