"""Conformance checks of the component kinds, for the toolkit's own tests and for plugin packages:

>>> from lca.testing import check_component
>>> check_component("encoder", "patch-mean")          # doctest: +SKIP

Each kind's checks live in one module (``lca.testing.encoder``, ``lca.testing.loss``, ...) and build the
component at its test size, its class attribute ``test_config`` (next to its code, so a new component
brings its own). They raise ``AssertionError`` with a message naming the component and what failed, so
they read the same under pytest and in a plain script.
"""

from __future__ import annotations

import importlib
from typing import Any

from lca.registry import KINDS, Registry, default_registry

CHECKS: dict[str, str] = {
    "encoder": "lca.testing.encoder:check_encoder",
    "tokenizer": "lca.testing.tokenizer:check_tokenizer",
    "block": "lca.testing.block:check_block",
    "driver": "lca.testing.driver:check_driver",
    "decoder": "lca.testing.decoder:check_decoder",
    "loss": "lca.testing.loss:check_loss",
}
"""The kinds with a conformance check, and where it is (import targets: nothing heavy is imported here).
Kinds that need real inputs take them as arguments (``lca.testing.importer.check_importer`` a source
folder); templates, rasterizers and datasets are checked against independent references in the toolkit's
own tests."""


def tiny_config(kind: str, name: str, registry: Registry | None = None) -> dict[str, Any]:
    """The params of a small, fast build of ``kind``/``name``: the component's ``test_config``."""
    cls = (registry or default_registry()).load(kind, name)
    return dict(getattr(cls, "test_config", {}))


def check_component(kind: str, name: str, registry: Registry | None = None) -> None:
    """Run the conformance check of ``kind`` on the registered component ``name``."""
    if kind not in CHECKS:
        checked = ", ".join(CHECKS)
        raise ValueError(
            f"no conformance check for kind '{kind}' (kinds: {', '.join(KINDS)}; checked: {checked})"
        )
    module, _, attr = CHECKS[kind].partition(":")
    getattr(importlib.import_module(module), attr)(registry or default_registry(), name)
