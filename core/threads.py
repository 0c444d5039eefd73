"""torch's CPU thread count, set for a block of work and restored afterwards.

The toolkit's CPU workloads (tiny models, tile rasterization of small images) are many small operations.
On a shared 2-core machine they ran about 12x slower with 2 OpenMP threads than with 1, because idle
threads spin-wait while other processes hold the cores (docs/development.md). Long CPU jobs (training,
synthetic data) therefore run with one thread per process unless told otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads (``None``: leave torch's setting alone)."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
