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
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it names {module}.{name}, which a data file has no need of")


def load_pickled_npy(path: Path) -> Any:
    """The object a pickled ``.npy`` file holds (a 0-d object array's item: usually a dict), built from
    containers and numpy arrays only. A plain numeric ``.npy`` is returned as its array."""
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
            array = _ArraysOnly(handle).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError) as error:
            raise ValueError(f"{path}: refused to unpickle ({error})") from error
    return array.item() if isinstance(array, np.ndarray) and array.shape == () else array


def load_pickle_file(path: Path) -> Any:
    """The object a plain pickle file holds, built from containers and numpy arrays only."""
    with open(path, "rb") as handle:
        try:
            return _ArraysOnly(handle).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: refused to unpickle ({error})") from error
