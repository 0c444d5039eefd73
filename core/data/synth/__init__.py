"""Synthetic people rendered into both store layouts, so the toolkit runs and is tested without licensed data.

Procedural identities on the ``mannequin`` template (:mod:`.identity`), smooth motions (:mod:`.motion`),
the layouts' cameras and camera effects (:mod:`.scene`), posing and drawing with the ``torch``
rasterizer (:mod:`.render`) and writing through :class:`~lca.data.writer.StoreWriter` (:mod:`.generate`).
"""

from lca.data.synth.config import LAYOUT_DEFAULTS, SynthConfig
from lca.data.synth.generate import ensure_synthetic_data, synthesize, synthesize_config

__all__ = ["LAYOUT_DEFAULTS", "SynthConfig", "ensure_synthetic_data", "synthesize", "synthesize_config"]
