"""Fully sharded data parallel training (``run.parallel: fsdp``), with torch's FSDP2 (``fully_shard``).

Why the toolkit shards the model itself rather than through accelerate's FSDP plugin: accelerate (1.16)
selects FSDP only on accelerator devices and runs a CPU launch as plain DDP, so its FSDP path could never
be tested on the CPU. ``fully_shard`` is what accelerate's FSDP2 support calls; applying it here gives one
path, the same on gloo and on NCCL, that the test suite runs with 2 CPU processes. accelerate still
launches the processes, sets up the process group, shards the data and reduces the step's flags.

What sharding changes, and where it is handled:

- the model: each unit the model offers (``fsdp_units()``, e.g. every attention block) and then the model
  as a whole are sharded over all processes (:func:`shard_model`), before the optimizer is built, so the
  optimizer holds only this process's shard of every parameter and of its state;
- gradient accumulation: gradients are reduced only on the last micro-batch (:func:`no_sync`);
- checkpoints: every process writes its shard of the weights and optimizer state with
  ``torch.distributed.checkpoint`` (:func:`save_sharded`; reloaded by :func:`load_sharded`, which also
  reshards when a run resumes on another number of processes), and the full weights are gathered to the
  main process for ``model.safetensors`` (:func:`full_state_dict`), so evaluation, avatars and later stages
  read an FSDP checkpoint exactly like any other. The checkpoint's directory must therefore be on a file
  system every process sees (one machine, or a shared mount across nodes).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn

from lca.errors import TrainingError

ONE_PROCESS = (
    "run.parallel=fsdp shards the model over processes, but this run has one process: launch it with several "
    "(e.g. `accelerate launch --num_processes 8 -m lca train ...`, or on the CPU `ACCELERATE_USE_CPU=1 "
    "accelerate launch --multi_gpu --num_processes 2 -m lca train ...`), or train with run.parallel=ddp."
)
"""Why FSDP cannot run in one process, and what to do."""

SHARDED_DIR = "sharded"
"""The sub-folder of a checkpoint holding the ``torch.distributed.checkpoint`` shards."""


def shard_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Shard ``model`` (already on ``device``) over every process of the initialised process group: each of
    its ``fsdp_units()`` (when it has that method) as its own unit, then the rest as the root unit. The
    module is changed in place (its parameters become ``DTensor`` shards) and returned."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        raise TrainingError(ONE_PROCESS)
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    units = getattr(model, "fsdp_units", None)
    for unit in units() if callable(units) else ():
        fully_shard(unit, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


@contextmanager
def no_sync(model: nn.Module) -> Iterator[None]:
    """Within the block, backward passes accumulate local gradients without reducing them (the micro-batches
    before the last of a gradient-accumulation step)."""
    model.set_requires_gradient_sync(False)  # type: ignore[operator]
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)  # type: ignore[operator]


@contextmanager
def quiet_view_warnings() -> Iterator[None]:
    """FSDP2 warns, at every forward, that a unit returned a view (an in-place op on it would skip the
    gradient hook). The toolkit's units return reshaped tensors and nothing downstream (losses, previews)
    changes a model output in place, so the warning says nothing here; it is silenced within the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")
        yield


def local_value(value: Tensor) -> Tensor:
    """A plain tensor from what may be a ``DTensor`` (e.g. the gradient norm of sharded parameters, whose
    value needs the other shards): the full value on every process."""
    from torch.distributed.tensor import DTensor

    return value.full_tensor() if isinstance(value, DTensor) else value


def full_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The full weights gathered to the main process, on the CPU (other processes get an empty dict).
    Collective: every process must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def save_sharded(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Every process writes its shard of the weights and of the optimizer state into ``folder`` (one file
    per process, plus the main process's ``.metadata``). Collective."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    weights, state = get_state_dict(model, optimizer)
    dcp.save({"model": weights, "optimizer": state}, checkpoint_id=str(folder))


def load_sharded(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Load what :func:`save_sharded` wrote into the sharded ``model`` and its ``optimizer`` (resharded to
    this run's processes when their number changed). Collective."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    weights, state = get_state_dict(model, optimizer)
    loaded = {"model": weights, "optimizer": state}
    try:
        dcp.load(loaded, checkpoint_id=str(folder))
    except Exception as error:  # DCP raises its own CheckpointException, wrapping each rank's failure
        raise TrainingError(f"Could not load the sharded checkpoint {folder}: {error}") from error
    set_state_dict(model, optimizer, model_state_dict=loaded["model"], optim_state_dict=loaded["optimizer"])
