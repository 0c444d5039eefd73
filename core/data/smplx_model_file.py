"""The licensed SMPL-X model file (``SMPLX_NEUTRAL.npz``) that some importers need to convert a dataset's
fits to the schema (its mean hand, its hand PCA basis, its rest pelvis): located errors when it is not
given, missing or not an SMPL-X model. Only the named arrays are read."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_smplx_model_arrays(model: str | None, keys: tuple[str, ...], why: str) -> dict[str, np.ndarray]:
    """``keys`` of the model file ``model`` (float64); ``why`` says what the dataset's fits need it for."""
    if model is None:
        raise ValueError(
            f"{why}: set smplx_model (CLI: --set smplx_model=PATH/SMPLX_NEUTRAL.npz, the licensed model "
            "file from smpl-x.is.tue.mpg.de) to convert them"
        )
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"SMPL-X model file {path} (smplx_model) does not exist")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise ValueError(f"SMPL-X model file {path} has no {missing}: is it an SMPL-X .npz model?")
        return {k: np.asarray(data[k], np.float64) for k in keys}
