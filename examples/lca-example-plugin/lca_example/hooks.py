"""Hook module named by the entry point: hands the package's registry.yaml fragment to the toolkit.
Import-light on purpose (no torch): the toolkit imports it whenever it reads its registry."""

from importlib import resources
from importlib.abc import Traversable

from lca.hookspecs import hookimpl


@hookimpl
def lca_registry_files() -> list[Traversable]:
    return [resources.files("lca_example") / "registry.yaml"]
