"""The toolkit's own per-frame SMPL-X files, which importers read beside a source that has no SMPL-X fits
of its own (transforms-json folders, ZJU-MoCap's SMPL-only captures): one file per frame named after the
frame (``000012.npz`` or ``000012.json``) with keys ``betas, global_orient, body_pose, transl`` (required)
and ``left_hand_pose, right_hand_pose, jaw_pose, leye_pose, reye_pose, expression`` (zero when absent, as
SMPL-X's own defaults), optionally ``face_box [4]`` (pixels) and ``gaze [2,3]``. Poses are flat axis-angle
with full (not PCA) hands, zero being the open hand; ``transl`` in metres. Leading singleton axes are
dropped. docs/data.md describes the format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lca.data.schema import MAX_TRANSLATION_M, SMPLX_POSE_DIMS

REQUIRED_SMPLX = ("betas", "global_orient", "body_pose", "transl")


def load_smplx_file(folder: Path, stem: str, where: Path, index: int) -> dict[str, np.ndarray]:
    npz, js = folder / f"{stem}.npz", folder / f"{stem}.json"
    if npz.is_file():
        with np.load(npz) as data:
            raw = {k: np.asarray(data[k]) for k in data.files}
    elif js.is_file():
        raw = {k: np.asarray(v) for k, v in json.loads(js.read_text()).items()}
    else:
        raise FileNotFoundError(f"frame {index} of {where}: no SMPL-X file {npz} or {js}")
    missing = [k for k in REQUIRED_SMPLX if k not in raw]
    if missing:
        raise ValueError(f"SMPL-X file for frame {index} ({folder / stem}.*) lacks {missing}")
    for key, width in (("left_hand_pose", 45), ("right_hand_pose", 45)):
        if key in raw and raw[key].size != width:
            raise ValueError(
                f"SMPL-X file for frame {index} ({folder / stem}.*): {key} has {raw[key].size} values, "
                f"expected {width} (15 joints x 3, full axis-angle); PCA hand components must be turned "
                "into full poses first (smplx: use_pca=True, then model.left_hand_components)"
            )
    far = float(np.abs(raw["transl"]).max())
    if far > MAX_TRANSLATION_M:
        raise ValueError(
            f"SMPL-X file for frame {index} ({folder / stem}.*): transl reaches {far:.0f}, beyond "
            f"{MAX_TRANSLATION_M:.0f} m: is it in millimetres? The files want metres"
        )
    params = {
        k: raw[k].astype(np.float32).reshape(-1)
        for k in (*REQUIRED_SMPLX, "expression", *SMPLX_POSE_DIMS)
        if k in raw
    }
    for key, width in SMPLX_POSE_DIMS.items():
        params.setdefault(key, np.zeros(width, np.float32))
    params.setdefault("expression", np.zeros(10, np.float32))
    if "face_box" in raw:
        params["face_box"] = raw["face_box"].astype(np.float32).reshape(4)
    if "gaze" in raw:
        params["gaze"] = raw["gaze"].astype(np.float32).reshape(2, 3)
    return params
