"""Zarr stores of people on video: the versioned schema, writer, reader, importer and checker.

Two layouts (``wild-video``: one monocular clip per group; ``studio``: one multi-view capture per
group) are described in :mod:`lca.data.schema` and in ``docs/data.md``. The torch side (the
:class:`~lca.contracts.sample.Sample` structure and its ``collate``) lives in :mod:`lca.contracts.sample`.
"""
