"""Loading plugins: entry points of the group ``lca.plugins`` plus modules named in ``LCA_PLUGINS``.

Environment variables (as pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` / ``-p``):

``LCA_DISABLE_PLUGIN_AUTOLOAD=1``
    Do not load third-party entry points. The toolkit's own ``lca_plugins`` (an entry point of the
    ``lca-toolkit`` distribution) is still loaded, so a run sees exactly the built-in catalogue plus
    what ``LCA_PLUGINS`` names: reproducible runs and CI.
``LCA_PLUGINS=pkg.hooks,other.hooks``
    Comma-separated module names to load as plugins without installing them.

A plugin that fails to import is recorded as a :class:`~lca.errors.PluginFailure`; the registry
repeats it in every later "unknown name" error and ``lca registry plugins`` lists it. Nothing is
silently skipped.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType

import pluggy

from lca import hookspecs
from lca.errors import PluginFailure

AUTOLOAD_ENV = "LCA_DISABLE_PLUGIN_AUTOLOAD"
PLUGINS_ENV = "LCA_PLUGINS"
OWN_DISTRIBUTION = "lca-toolkit"


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin module that loaded, with where it came from (for listings and resolved configs)."""

    name: str
    origin: str
    version: str | None


@dataclass
class PluginSet:
    """The plugin manager plus what loaded and what failed."""

    manager: pluggy.PluginManager
    loaded: list[LoadedPlugin] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)


def _autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _register(plugins: PluginSet, module: ModuleType, name: str, origin: str, version: str | None) -> None:
    if plugins.manager.is_registered(module) or plugins.manager.has_plugin(name):
        return
    plugins.manager.register(module, name=name)
    plugins.loaded.append(LoadedPlugin(name=name, origin=origin, version=version))


def load_plugins() -> PluginSet:
    """Create the plugin manager and load every plugin; failures are recorded, not raised."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    plugins = PluginSet(manager=manager)

    autoload = not _autoload_disabled()
    for entry_point in metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
        dist = entry_point.dist
        dist_name = dist.metadata["Name"] if dist is not None else "?"
        if not autoload and dist_name != OWN_DISTRIBUTION:
            continue
        origin = f"entry point '{entry_point.name}' of {dist_name}"
        try:
            module = entry_point.load()
        except Exception as error:  # recorded and reported later; never silently dropped
            plugins.failures.append(
                PluginFailure(entry_point.name, origin, f"{type(error).__name__}: {error}")
            )
            continue
        _register(plugins, module, entry_point.name, origin, dist.version if dist is not None else None)

    for module_name in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        origin = f"{PLUGINS_ENV} module '{module_name}'"
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            plugins.failures.append(PluginFailure(module_name, origin, f"{type(error).__name__}: {error}"))
            continue
        _register(plugins, module, module_name, origin, getattr(module, "__version__", None))

    # A misspelled hook name in a plugin (``lca_registry_file``) fails here, loudly, as in pytest.
    manager.check_pending()
    return plugins
