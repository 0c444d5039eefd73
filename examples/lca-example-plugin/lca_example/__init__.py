"""lca-example-plugin: a minimal third-party plugin package for the LCA toolkit (see README.md)."""
