"""Store locations: local paths, fsspec URLs, and ``synthetic://LAYOUT`` for the built-in synthetic data.

``synthetic://wild-video`` and ``synthetic://studio`` name the default synthetic stores in the cache
folder (``$LCA_CACHE_DIR/synthetic``, default ``~/.cache/lca``); they are generated on first use, so the
tiny pipelines run on a fresh machine with nothing downloaded.
"""

from __future__ import annotations

from lca.errors import LcaError

SYNTHETIC_SCHEME = "synthetic://"


def resolve_store_url(url: str) -> str:
    """The concrete location of a store URL (generating the synthetic stores if asked for and missing)."""
    if not url.startswith(SYNTHETIC_SCHEME):
        return url
    from lca.data.synth import ensure_synthetic_data

    layout = url[len(SYNTHETIC_SCHEME) :]
    stores = ensure_synthetic_data()
    if layout not in stores:
        raise LcaError(
            f"Unknown synthetic store {url!r}: "
            f"choose one of {', '.join(SYNTHETIC_SCHEME + k for k in stores)}."
        )
    return str(stores[layout])
