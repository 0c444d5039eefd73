"""The command that starts several CPU training processes through ``accelerate launch`` (real gloo DDP or
FSDP), for the tests and benchmarks that train with more than one process (docs/training.md, "Several
processes": ``ACCELERATE_USE_CPU=1`` must be in the environment, or ``--multi_gpu`` starts independent
single-process runs on a machine without GPUs)."""

from __future__ import annotations

import sys

from lca.testing.helpers import free_port


def accelerate_cpu_launch(processes: int) -> list[str]:
    """``python -m accelerate.commands.launch ...`` for ``processes`` CPU processes on this machine, each on a
    fresh rendezvous port; append ``-m lca train ...`` (run it with ``ACCELERATE_USE_CPU=1``)."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
    ]
