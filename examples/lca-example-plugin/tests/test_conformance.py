"""The plugin's components pass the toolkit's conformance suite (`lca.testing`), the same checks the
toolkit runs on its built-ins. Run from this folder with `pytest` once the plugin is installed (or with
`LCA_PLUGINS=lca_example.hooks PYTHONPATH=.` without installing)."""

from __future__ import annotations

import pytest

from lca.registry import default_registry
from lca.testing import check_component

OURS = [
    (spec.kind, spec.name)
    for spec in default_registry().list()
    if spec.origin in {"example", "lca_example.hooks"}  # entry point name, or the LCA_PLUGINS module
]


def test_the_plugin_registers_its_components() -> None:
    assert ("encoder", "patch-mean") in OURS


@pytest.mark.parametrize(("kind", "name"), OURS)
def test_conformance(kind: str, name: str) -> None:
    check_component(kind, name)
