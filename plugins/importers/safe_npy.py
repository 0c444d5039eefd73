"""Pickled files (``.npy``, ``.pkl``) read without running their code. Several public datasets ship their
metadata as a Python dict saved with ``np.save`` (ZJU-MoCap's ``annots.npy`` and ``params/*.npy``) or a
plain pickle (MVHumanNet's ``camera_scale.pkl``), which ``np.load(allow_pickle=True)`` or ``pickle.load``
would unpickle with the power to run any code the file names. Here the
pickle stream is read by an unpickler that builds only plain containers and numpy arrays, and names
anything else as an error. numpy and pickle offer no such mode, hence this file."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
}


class _ArraysOnly(pickle.Unpickler):
    def __init__(self, handle: Any, *, tensors: bool = False) -> None:
        super().__init__(handle)
        self.tensors = tensors

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if self.tensors and (module, name) in _TENSOR_BUILDERS:
            return _TENSOR_BUILDERS[(module, name)]()
        raise pickle.UnpicklingError(f"it names {module}.{name}, which a data file has no need of")


def _storage_from_bytes() -> Any:
    """What ``torch.storage._load_from_bytes`` does (a tensor pickled by plain pickle keeps its storage as
    ``torch.save`` bytes), but with torch's own weights-only loader, which builds no other object."""
    import io

    import torch

    return lambda data: torch.load(io.BytesIO(data), weights_only=True)


def _rebuild_tensor() -> Any:
    from torch._utils import _rebuild_tensor_v2

    return _rebuild_tensor_v2


_TENSOR_BUILDERS = {
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
}
"""Torch tensors inside a plain pickle (HuGe100K's ``param/*.npy``), allowed only where asked for."""


def load_pickled_npy(path: Path, *, tensors: bool = False) -> Any:
    """The object a pickled ``.npy`` file holds (a 0-d object array's item: usually a dict), built from
    containers and numpy arrays only (and torch tensors, with ``tensors``). A plain numeric ``.npy`` is
    returned as its array."""
    with open(path, "rb") as handle:
        try:
            major, _ = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            )
            _, _, dtype = read_header(handle)
        except ValueError as error:
            raise ValueError(f"{path} is not a .npy file ({error})") from error
        if not dtype.hasobject:
            handle.seek(0)
            return np.load(handle, allow_pickle=False)
        try:
            array = _ArraysOnly(handle, tensors=tensors).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, RuntimeError) as error:
            raise ValueError(f"{path}: refused to unpickle ({error})") from error
    return array.item() if isinstance(array, np.ndarray) and array.shape == () else array


def load_pickle_file(path: Path) -> Any:
    """The object a plain pickle file holds, built from containers and numpy arrays only."""
    with open(path, "rb") as handle:
        try:
            return _ArraysOnly(handle).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: refused to unpickle ({error})") from error
