"""``dna-rendering`` importer: one DNA-Rendering performance (a pair of HDF5 ``.smc`` files) into a
``studio`` capture.

Layout read (as the dataset's own ``SMCReader`` reads it):

- ``main/<id>.smc``: ``Camera_5mp/<cam>/color/<frame>`` (cameras ``0``..``47``) or ``Camera_12mp/<cam>/...``
  (``48``..``60``), each frame one JPEG-encoded byte array.
- ``annotations/<id>_annots.smc``: ``Camera_Parameter/<cam as 2 digits>/{K, D, RT}`` with ``RT`` the
  camera-to-world matrix in the OpenCV camera convention (x right, y down, looking along +z) and ``D`` the
  distortion ``k1, k2, p1, p2, k3``; ``Mask/<cam>/mask/<frame>`` (JPEG, the person where > 0); and
  ``SMPLx/{betas, expression, fullpose [N,55,3], transl [N,3], scale}``.

Conversions: ``RT`` is inverted to the schema's world-to-camera; ``fullpose`` is split in SMPL-X's joint
order (global orient, 21 body, jaw, left eye, right eye, 15 left hand, 15 right hand) into flat
axis-angle arrays; DNA-Rendering's hand poses are relative to SMPL-X's mean hand (its fits use
``flat_hand_mean=False``) while the schema's are absolute (zero is the open hand), so the mean hand of
the SMPL-X model file (``hands_meanl``, ``hands_meanr``, given as ``smplx_model``) is added. ``transl``
is in metres already; a translation beyond 100 m is refused as a unit mistake. Images with non-zero
distortion are undistorted with OpenCV when it is installed and refused otherwise. The annotations
carry no face box, so the capture has none (the datasets then give no face close-up). Frames are the
ones every chosen camera, its masks and the SMPL-X fits all have.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from PIL import Image
from pydantic import Field

from lca.contracts.importer import Importer
from lca.data.schema import MAX_TRANSLATION_M
from lca.data.smplx_model_file import load_smplx_model_arrays
from lca.data.writer import StoreWriter
from lca_plugins.importers.frame_files import resize_frame
from lca_plugins.importers.studio_config import StudioImportConfig
from lca_plugins.importers.undistort import distorted, opencv, undistort

RIGS = {"5mp": "Camera_5mp", "12mp": "Camera_12mp"}
FULLPOSE = {  # SMPL-X joint order of ``fullpose [N, 55, 3]``
    "global_orient": (0, 1),
    "body_pose": (1, 22),
    "jaw_pose": (22, 23),
    "leye_pose": (23, 24),
    "reye_pose": (24, 25),
    "left_hand_pose": (25, 40),
    "right_hand_pose": (40, 55),
}


class DnaRenderingConfig(StudioImportConfig):
    annotations: str | None = None
    """The ``<id>_annots.smc`` file (default: ``../annotations/<id>_annots.smc`` beside ``main/``)."""
    rig: Literal["5mp", "12mp"] = "5mp"
    """Which camera rig: the 48 cameras of 2448x2048 or the 12 of 4096x3000."""
    cameras: list[str] | None = None
    """Camera ids to import (default: every camera of the rig)."""
    image_size: int | None = Field(None, ge=8)
    """Resize so that the longer image side has this many pixels (intrinsics scaled with it)."""
    smplx_model: str | None = None
    """SMPL-X model file (``SMPLX_NEUTRAL.npz``) whose mean hand is added to the mean-relative hand poses.
    Required: without it the hands cannot be stored as the schema wants them."""


class DnaRenderingImporter(Importer):
    """One DNA-Rendering performance (``main/<id>.smc`` + its annotations) -> one studio capture."""

    Config: ClassVar[type[DnaRenderingConfig]] = DnaRenderingConfig
    config: DnaRenderingConfig

    def import_into(self, source: str | Path, store: str) -> list[str]:
        import h5py

        cfg = self.config
        main_path = Path(source)
        annots_path = Path(cfg.annotations) if cfg.annotations else _default_annotations(main_path)
        for path, what in ((main_path, "main .smc file"), (annots_path, "annotations .smc file")):
            if not path.is_file():
                raise FileNotFoundError(f"DNA-Rendering {what} {path} does not exist")
        hands = _mean_hands(cfg.smplx_model)
        name = cfg.group or main_path.stem
        identity = cfg.identity or name
        with h5py.File(main_path, "r") as main, h5py.File(annots_path, "r") as annots:
            rig = RIGS[cfg.rig]
            if rig not in main:
                raise ValueError(f"{main_path}: no '{rig}' group (rig={cfg.rig}); it holds {sorted(main)}")
            cameras = cfg.cameras or sorted(main[rig], key=int)
            params = _smplx(annots, annots_path, hands)
            frames = _common_frames(main[rig], annots, cameras, len(params["transl"]), main_path, annots_path)
            frames = cfg.select(frames)
            calib = [_calibration(annots, c, annots_path) for c in cameras]
            if any(distorted(D) for _, D, _ in calib):  # refused before a byte is written
                opencv(main_path, next(D for _, D, _ in calib if distorted(D)))
            first = _decode(main[rig][cameras[0]]["color"][str(frames[0])])
            height, width = first.shape[:2]
            scale = 1.0 if cfg.image_size is None else cfg.image_size / max(height, width)
            size = (round(width * scale), round(height * scale))
            Ks = np.stack([np.diag([scale, scale, 1.0]) @ K for K, _, _ in calib])
            with StoreWriter(store, "studio", **cfg.writer_options()) as writer:
                capture = writer.add_capture(
                    name,
                    identity=identity,
                    split=cfg.split_for(identity),
                    num_frames=len(frames),
                    height=size[1],
                    width=size[0],
                    viewmats=np.stack([np.linalg.inv(rt) for _, _, rt in calib]),
                    Ks=Ks,
                    camera_ids=list(cameras),
                    fps=15.0,
                    source=f"import:dna-rendering:{main_path}",
                    num_betas=params["betas"].shape[-1],
                    num_expression=params["expression"].shape[-1],
                )
                for frame in frames:
                    images, masks = [], []
                    for camera, (K, D, _) in zip(cameras, calib, strict=True):
                        image = _decode(main[rig][camera]["color"][str(frame)])
                        mask = _decode(annots["Mask"][camera]["mask"][str(frame)]).max(axis=-1)
                        image, mask = undistort(image, K, D, main_path), undistort(mask, K, D, main_path)
                        images.append(resize_frame(image, size))
                        masks.append(resize_frame(mask, size))
                    capture.append(
                        image=np.stack(images),
                        mask=np.stack(masks),
                        smplx={key: values[frame] for key, values in params.items()},
                        face_box=np.zeros((len(cameras), 4), np.float32),
                    )
        return [name]


def _default_annotations(main_path: Path) -> Path:
    return main_path.parent.parent / "annotations" / f"{main_path.stem}_annots.smc"


def _mean_hands(model: str | None) -> tuple[np.ndarray, np.ndarray]:
    arrays = load_smplx_model_arrays(
        model, ("hands_meanl", "hands_meanr"), "DNA-Rendering's hand poses are relative to SMPL-X's mean hand"
    )
    return arrays["hands_meanl"].astype(np.float32).reshape(45), arrays["hands_meanr"].astype(
        np.float32
    ).reshape(45)


def _smplx(annots: Any, where: Path, hands: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-frame SMPL-X arrays in the schema's keys (``betas`` per frame too)."""
    if "SMPLx" not in annots:
        found = "SMPL fits ('SMPL')" if "SMPL" in annots else f"groups {sorted(annots)}"
        raise ValueError(f"{where}: no 'SMPLx' group (it holds {found}); this importer needs SMPL-X fits")
    smplx = annots["SMPLx"]
    fullpose = np.asarray(smplx["fullpose"][()], np.float32)
    if fullpose.ndim != 3 or fullpose.shape[1:] != (55, 3):
        raise ValueError(
            f"{where}: SMPLx/fullpose has shape {fullpose.shape}, expected [N, 55, 3] (SMPL-X's 55 joints; "
            "24 joints would be SMPL, which needs a SMPL-X fit first)"
        )
    frames = fullpose.shape[0]
    scale = np.asarray(smplx["scale"][()], np.float32).reshape(-1) if "scale" in smplx else np.ones(1)
    if not np.allclose(scale, 1.0):
        raise ValueError(f"{where}: SMPLx/scale is {scale.tolist()}; only unscaled fits (scale 1) import")
    params = {key: fullpose[:, a:b].reshape(frames, -1) for key, (a, b) in FULLPOSE.items()}
    params["left_hand_pose"] = params["left_hand_pose"] + hands[0]
    params["right_hand_pose"] = params["right_hand_pose"] + hands[1]
    for key in ("transl", "expression", "betas"):
        values = np.asarray(smplx[key][()], np.float32)
        values = values.reshape(-1, values.shape[-1])
        if len(values) == 1:
            values = np.repeat(values, frames, axis=0)
        if len(values) != frames:
            raise ValueError(f"{where}: SMPLx/{key} has {len(values)} frames, SMPLx/fullpose {frames}")
        params[key] = values
    far = float(np.abs(params["transl"]).max())
    if far > MAX_TRANSLATION_M:
        raise ValueError(
            f"{where}: SMPLx/transl reaches {far:.0f}, beyond {MAX_TRANSLATION_M:.0f} m: is it in "
            "millimetres? The schema wants metres (divide by 1000 before importing)"
        )
    return params


def _common_frames(
    rig: Any, annots: Any, cameras: list[str], fits: int, main_path: Path, annots_path: Path
) -> list[int]:
    """The frame indices that every camera's images and masks and the SMPL-X fits have, in order."""
    common: set[int] | None = None
    for camera in cameras:
        if camera not in rig:
            known = ", ".join(sorted(rig, key=int))
            raise ValueError(f"{main_path}: camera '{camera}' is not in the rig (cameras: {known})")
        if "Mask" not in annots or camera not in annots["Mask"]:
            raise ValueError(f"{annots_path}: camera '{camera}' has no Mask/{camera}/mask")
        images = {int(f) for f in rig[camera]["color"]}
        masks = {int(f) for f in annots["Mask"][camera]["mask"]}
        if not images:
            raise ValueError(f"{main_path}: camera '{camera}' has no frames")
        if images != masks:
            raise ValueError(
                f"{annots_path}: camera '{camera}' has {len(masks)} mask frames for {len(images)} image "
                f"frames in {main_path}; they must be the same frames"
            )
        common = images if common is None else common & images
    frames = sorted(f for f in (common or set()) if f < fits)
    if not frames:
        raise ValueError(f"{main_path}: the cameras {cameras} share no frame with the {fits} SMPL-X fits")
    return frames


def _calibration(annots: Any, camera: str, where: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    key = f"{int(camera):02d}"
    if "Camera_Parameter" not in annots or key not in annots["Camera_Parameter"]:
        raise ValueError(f"{where}: no Camera_Parameter/{key} for camera '{camera}'")
    group = annots["Camera_Parameter"][key]
    K = np.asarray(group["K"][()], np.float64).reshape(3, 3)
    D = np.asarray(group["D"][()], np.float64).reshape(-1)
    RT = np.asarray(group["RT"][()], np.float64)
    if RT.shape == (3, 4):
        RT = np.vstack([RT, [0, 0, 0, 1]])
    if RT.shape != (4, 4):
        raise ValueError(f"{where}: Camera_Parameter/{key}/RT has shape {RT.shape}, expected 4x4")
    return K, D, RT


def _decode(dataset: Any) -> np.ndarray:
    """An HDF5 dataset holding a JPEG/PNG byte array (as the .smc files store frames and masks) -> uint8
    RGB ``[H, W, 3]``; a located error when it is not an image."""
    try:
        with Image.open(io.BytesIO(np.asarray(dataset[()], np.uint8).tobytes())) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as error:  # PIL's UnidentifiedImageError and truncated files
        raise ValueError(
            f"{dataset.file.filename}: {dataset.name} is not a decodable image ({error})"
        ) from error
