"""Package discovery with renaming: the source folders ``core/`` and ``plugins/`` install as the import
packages ``lca`` and ``lca_plugins`` (docs/architecture.md). pyproject.toml's ``package-dir`` maps the
names; setuptools' declarative ``packages.find`` cannot rename, so the list is computed here."""

from setuptools import find_packages, setup


def _renamed(source: str, target: str) -> list[str]:
    return [target + name[len(source) :] for name in find_packages(include=[source, f"{source}.*"])]


setup(packages=_renamed("core", "lca") + _renamed("plugins", "lca_plugins"))
