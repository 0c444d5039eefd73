"""Jobs run in fresh processes, for the writers of sharded stores (synthesis, imports): each shard is
independent, so the shards of one run are written side by side."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


def map_in_processes(function: Callable[[Job], Result], jobs: Sequence[Job], workers: int) -> list[Result]:
    """``[function(job) for job in jobs]``, in order, with up to ``workers`` spawned processes (in this
    process when ``workers`` is 1 or there is one job). ``function`` must be importable at module level.
    Spawned, not forked: a forked child would inherit torch's thread pools and the parent's open stores."""
    if workers <= 1 or len(jobs) <= 1:
        return [function(job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        return list(pool.map(function, jobs))
