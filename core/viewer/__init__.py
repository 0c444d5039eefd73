"""The interactive web viewer of ``lca view`` (viser): see :mod:`lca.viewer.server`."""
