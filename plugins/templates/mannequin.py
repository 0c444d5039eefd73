"""The ``mannequin`` template: the SMPL-X template over the project's own procedural body.

The body (:mod:`lca_plugins.templates.mannequin_model`) is generated deterministically into a cache
folder the first time it is needed, as
``<cache_dir>/mannequin-v<version>-seed<seed>/smplx/SMPLX_NEUTRAL.npz``, and then loaded exactly like a
real SMPL-X file (through ``smplx.create``). Everything else, including anchors and skinning, is
:class:`~lca_plugins.templates.smplx_model.SmplxTemplate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from lca.paths import cache_dir
from lca_plugins.templates.mannequin_model import mannequin_model_dir
from lca_plugins.templates.smplx_model import SmplxBodyConfig, SmplxTemplate


class MannequinConfig(SmplxBodyConfig):
    """Config of the ``mannequin`` template."""

    cache_dir: str | None = None
    """Folder for the generated model file; ``None``: ``$LCA_CACHE_DIR`` or ``~/.cache/lca``."""
    mannequin_seed: int = Field(0, ge=0)
    """Seed of the generated body file (it draws the hand PCA bases; the geometry is fixed)."""


class MannequinTemplate(SmplxTemplate):
    """SMPL-X-format procedural mannequin (about 11.6k vertices, 10 shape + 10 expression blend shapes)."""

    Config: ClassVar[type[SmplxBodyConfig]] = MannequinConfig

    def model_file(self) -> Path:
        cfg = self.config
        assert isinstance(cfg, MannequinConfig)
        cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else cache_dir()
        return mannequin_model_dir(cache, cfg.mannequin_seed) / "smplx" / "SMPLX_NEUTRAL.npz"
