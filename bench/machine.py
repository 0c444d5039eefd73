"""Measuring commands on a shared machine: load while they ran, wall and CPU time, peak memory.

The benchmark machines are shared (2 cores, other jobs running), so a time means little without the load
it was taken under. :class:`LoadSampler` samples ``os.getloadavg()`` in a background thread;
:func:`run_measured` runs a command (e.g. ``lca train``) in a subprocess and measures it.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


class LoadSampler:
    """Samples the 1-minute load average every ``interval`` seconds while the ``with`` block runs."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.interval):
                break

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> str:
        """``load 3.1 (2.8-3.4)``: mean and range of the samples (1-minute load average)."""
        if not self.samples:
            return "load n/a"
        mean = sum(self.samples) / len(self.samples)
        return f"load {mean:.1f} ({min(self.samples):.1f}-{max(self.samples):.1f})"


def machine_line() -> str:
    """CPU count and the current 1/5/15-minute load averages."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min)"


@dataclass
class Measured:
    """One command's wall time, CPU time (user + system of it and every descendant it waited for) and
    memory: the peak of the summed RSS of its process tree and the peak RSS of its largest process."""

    returncode: int
    wall: float
    cpu: float
    peak_tree_rss: int
    peak_process_rss: int


def run_measured(
    command: list[str], log: Path, env: dict[str, str] | None = None, poll: float = 0.2
) -> Measured:
    """Run ``command`` with stdout and stderr into ``log``, sampling its process tree's RSS with psutil every
    ``poll`` seconds (the per-process peak also comes from ``ru_maxrss``, which no sampling can miss)."""
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_tree = peak_process = 0
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                sizes = [p.memory_info().rss for p in tree]
            except psutil.Error:  # a process ended between listing and reading
                sizes = []
            if sizes:
                peak_tree, peak_process = max(peak_tree, sum(sizes)), max(peak_process, max(sizes))
            time.sleep(poll)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if after.ru_maxrss > before.ru_maxrss:  # a maximum over all children so far: only new if it grew
        peak_process = max(peak_process, after.ru_maxrss * 1024)  # KiB on Linux
    return Measured(proc.returncode, wall, cpu, max(peak_tree, peak_process), peak_process)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, to show why a command failed."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
