"""Pure-PyTorch Gaussian rasterization (gsplat 1.5.3 semantics): projection, tile lists, compositing."""

from lca.rasterization.composite import composite
from lca.rasterization.projection import Splats, project
from lca.rasterization.render import rasterize
from lca.rasterization.tiles import TileLists, intersect_tiles

__all__ = ["Splats", "TileLists", "composite", "intersect_tiles", "project", "rasterize"]
