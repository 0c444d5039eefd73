"""``mvhumannet`` importer: one MVHumanNet outfit folder (``<outfit id>/``, e.g. ``100001/``) into a
``studio`` capture.

Layout read (as the dataset's own ``visual_smpl`` scripts and its released folders have it):

- ``camera_extrinsics.json``: per camera, keyed ``"1_<camera>.png"``, a ``rotation [3,3]`` and
  ``translation [3]`` of the **world-to-camera** transform (OpenCV axes), the translation in millimetres
  of a scaled rig; ``camera_scale.pkl`` holds that scale (a pickled float, ``120/65`` or ``100/65``), so
  the translation in metres is ``translation / 1000 * camera_scale`` (the dataset's ``read_camera``).
- ``camera_intrinsics.json``: ``{"intrinsics": K [3,3], "dist": [...]}``, one ``K`` for every camera, in
  pixels of the **full-size** frames (4096x3000 where ``camera_scale`` is ``120/65``, otherwise 2448x2048,
  as the dataset's scripts decide; an ``image_center`` of four values ``[cx, cy, W, H]`` in the
  extrinsics names the size itself).
- ``images_lr/<camera>/<tick:04d>_img.jpg`` (the release's half-size frames; ``images/`` is read where
  ``images_lr/`` is absent) and ``fmask_lr/<camera>/<tick:04d>_img_fmask.png`` (the person where > 127).
- ``smplx/smpl/<fit:06d>.json``: EasyMocap's SMPL-X output for the frame of tick ``5 * (fit + 1)``: a
  list of people, each ``{"Rh" [1,3], "Th" [1,3], "poses" [1,87], "shapes" [1,10], "expression" [1,10]}``
  with ``poses`` = 22 body joints (the root slot, normally zero), then **6 PCA coefficients per hand**
  (left, right), then jaw, left eye, right eye; ``[1,165]`` full poses (SMPL-X joint order) are read too.

Conversions: the translation to metres as above; ``K`` scaled from the full-size frames to the stored
ones (and by ``image_size``); PCA hands to full axis-angle with the SMPL-X model file's
``hands_components`` and mean hand (EasyMocap adds the mean); and EasyMocap's global transform, a
rotation ``Rh`` about the body model's **origin** then ``Th``, to SMPL-X's ``global_orient`` about the
**pelvis** and ``transl``: ``transl = Th + R j0 - j0`` with ``j0`` the pelvis of the shaped rest body
(regressed from the model file's ``v_template``, ``shapedirs`` and ``J_regressor``). So ``smplx_model``
(``SMPLX_NEUTRAL.npz``) is required. The first person of each fit file is the capture's person. Frames
are the ticks every chosen camera has an image of and that have a fit; ticks without a fit are skipped
and counted in a warning.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from pydantic import Field

from lca.contracts.importer import Importer
from lca.data.json_file import read_json_object
from lca.data.schema import MAX_TRANSLATION_M
from lca.data.smplx_model_file import load_smplx_model_arrays
from lca.data.writer import StoreWriter
from lca_plugins.importers.frame_files import read_frame_file, resize_frame
from lca_plugins.importers.safe_npy import load_pickle_file
from lca_plugins.importers.studio_config import StudioImportConfig
from lca_plugins.importers.undistort import distorted, opencv, undistort

FULL_SIZE_120_65 = (4096, 3000)
FULL_SIZE_OTHER = (2448, 2048)
FRAMES = "the first camera's first frame"
MODEL_KEYS = ("v_template", "shapedirs", "J_regressor", "hands_componentsl", "hands_componentsr",
              "hands_meanl", "hands_meanr")  # fmt: skip


class MvHumanNetConfig(StudioImportConfig):
    smplx_model: str | None = None
    """SMPL-X model file (``SMPLX_NEUTRAL.npz``): its hand PCA basis turns the 6 coefficients per hand into
    full poses and its rest body gives the pelvis the global transform turns about. Required."""
    cameras: list[str] | None = None
    """Camera names to import (default: every camera of ``camera_extrinsics.json``)."""
    image_size: int | None = Field(None, ge=8)
    """Resize so that the longer image side has this many pixels (intrinsics scaled with it)."""
    ticks_per_fit: int = Field(5, ge=1)
    """Image ticks per SMPL-X fit: fit ``k`` is of tick ``ticks_per_fit * (k + 1)`` (5 in the release)."""
    fps: float = Field(5.0, gt=0)
    """Frame rate stored with the capture (used for playback only; the release does not state one)."""


class MvHumanNetImporter(Importer):
    """One MVHumanNet outfit folder (cameras, images_lr/, fmask_lr/, smplx/smpl/) -> one studio capture."""

    Config: ClassVar[type[MvHumanNetConfig]] = MvHumanNetConfig
    config: MvHumanNetConfig

    def import_into(self, source: str | Path, store: str) -> list[str]:
        cfg = self.config
        root = Path(source)
        if not root.is_dir():
            raise FileNotFoundError(f"MVHumanNet outfit folder {root} does not exist")
        body = _SmplxModel(cfg.smplx_model)
        scale = _camera_scale(root / "camera_scale.pkl")
        cameras_path = root / "camera_extrinsics.json"
        cameras = read_json_object(cameras_path, "MVHumanNet camera file")
        K_full, D, full_size = _intrinsics(root, scale, cameras)
        extrinsics = _extrinsics(cameras, cameras_path, scale)
        names = cfg.cameras or sorted(extrinsics)
        unknown = [n for n in names if n not in extrinsics]
        if unknown:
            raise ValueError(
                f"{root / 'camera_extrinsics.json'}: no camera {unknown} "
                f"(cameras: {', '.join(sorted(extrinsics))})"
            )
        if distorted(D):  # refused before a byte is written
            opencv(root / "camera_intrinsics.json", D)
        images_dir, masks_dir = _folder(root, "images"), _folder(root, "fmask")
        ticks = _ticks(root, images_dir, names, cfg.ticks_per_fit)
        fits = {t: root / "smplx" / "smpl" / f"{t // cfg.ticks_per_fit - 1:06d}.json" for t in ticks}
        unfitted = [t for t in ticks if not fits[t].is_file()]
        if len(unfitted) == len(ticks):
            raise FileNotFoundError(
                f"MVHumanNet outfit {root}: no SMPL-X fit for any frame (looked for {fits[ticks[0]]}, ...)"
            )
        if unfitted:
            warnings.warn(
                f"MVHumanNet outfit {root}: {len(unfitted)} of {len(ticks)} frames have no SMPL-X fit in "
                f"smplx/smpl/ and are skipped (first: tick {unfitted[0]})",
                stacklevel=2,
            )
        ticks = cfg.select([t for t in ticks if t not in unfitted])
        width, height = _size(images_dir / names[0] / f"{ticks[0]:04d}_img.jpg")
        if not math.isclose(width / full_size[0], height / full_size[1], rel_tol=0.01):
            raise ValueError(
                f"{images_dir / names[0]}: frames of {width}x{height} are not a scaled copy of the "
                f"{full_size[0]}x{full_size[1]} frames the intrinsics are for"
            )
        resize = 1.0 if cfg.image_size is None else cfg.image_size / max(width, height)
        size = (round(width * resize), round(height * resize))
        K_stored = np.diag([width / full_size[0], height / full_size[1], 1.0]) @ K_full
        K = np.diag([size[0] / width, size[1] / height, 1.0]) @ K_stored
        name = cfg.group or root.name
        identity = cfg.identity or name
        first = _read_fit(fits[ticks[0]], body)
        with StoreWriter(store, "studio", **cfg.writer_options()) as writer:
            capture = writer.add_capture(
                name,
                identity=identity,
                split=cfg.split_for(identity),
                num_frames=len(ticks),
                height=size[1],
                width=size[0],
                viewmats=np.stack([extrinsics[n] for n in names]),
                Ks=np.repeat(K[None], len(names), axis=0),
                camera_ids=names,
                fps=cfg.fps,
                source=f"import:mvhumannet:{root}",
                num_betas=first["betas"].shape[0],
                num_expression=first["expression"].shape[0],
            )
            for tick in ticks:
                images, masks = [], []
                for camera in names:
                    image = read_frame_file(
                        images_dir / camera / f"{tick:04d}_img.jpg", "RGB", (width, height), FRAMES
                    )
                    mask = read_frame_file(
                        masks_dir / camera / f"{tick:04d}_img_fmask.png", "L", (width, height), FRAMES
                    )
                    image = undistort(image, K_stored, D, root / "camera_intrinsics.json")
                    mask = undistort(mask, K_stored, D, root / "camera_intrinsics.json")
                    images.append(resize_frame(image, size))
                    masks.append(resize_frame(mask, size))
                capture.append(
                    image=np.stack(images),
                    mask=np.stack(masks),
                    smplx=_read_fit(fits[tick], body),
                    face_box=np.zeros((len(names), 4), np.float32),
                )
        return [name]


class _SmplxModel:
    """What the conversion needs of the SMPL-X model file: the hand PCA bases and means, and the pelvis of
    the shaped rest body (numpy only; the toolkit's template is not needed to import)."""

    def __init__(self, model: str | None) -> None:
        arrays = load_smplx_model_arrays(
            model,
            MODEL_KEYS,
            "MVHumanNet's SMPL-X fits store PCA hands and turn the body about the model's origin",
        )
        self.hands = {side: (arrays[f"hands_components{side}"], arrays[f"hands_mean{side}"].reshape(45))
                      for side in "lr"}  # fmt: skip
        pelvis = arrays["J_regressor"][0]
        self.pelvis_rest = pelvis @ arrays["v_template"]
        self.pelvis_dirs = np.einsum("v,vcb->cb", pelvis, arrays["shapedirs"])  # [3, betas + expression]

    def pelvis(self, betas: np.ndarray) -> np.ndarray:
        """The pelvis joint of the rest body shaped by ``betas`` (the first shape columns)."""
        return self.pelvis_rest + self.pelvis_dirs[:, : betas.shape[0]] @ betas

    def full_hand(self, side: str, coefficients: np.ndarray) -> np.ndarray:
        components, mean = self.hands[side]
        return coefficients @ components[: coefficients.shape[0]] + mean


def _read_fit(path: Path, body: _SmplxModel) -> dict[str, np.ndarray]:
    """One EasyMocap SMPL-X fit file -> the schema's SMPL-X parameters (first person)."""
    from scipy.spatial.transform import Rotation

    try:
        people = json.loads(path.read_text(encoding="utf-8"))
        person = people[0]
        poses = np.asarray(person["poses"], np.float64).reshape(-1)
        Rh, Th = (np.asarray(person[k], np.float64).reshape(3) for k in ("Rh", "Th"))
        betas = np.asarray(person["shapes"], np.float64).reshape(-1)
        expression = np.asarray(person.get("expression", np.zeros(10)), np.float64).reshape(-1)
    except (json.JSONDecodeError, UnicodeDecodeError, IndexError, KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{path}: not an EasyMocap SMPL-X fit (a list of people with Rh, Th, poses, shapes): {error!r}"
        ) from error
    params = _split_poses(poses, path, body)
    rotation = Rotation.from_rotvec(Rh) * Rotation.from_rotvec(params["global_orient"])
    j0 = body.pelvis(betas)
    params["global_orient"] = rotation.as_rotvec()
    params["transl"] = Th + Rotation.from_rotvec(Rh).as_matrix() @ j0 - j0
    far = float(np.abs(params["transl"]).max())
    if far > MAX_TRANSLATION_M:
        raise ValueError(
            f"{path}: Th reaches {far:.0f}, beyond {MAX_TRANSLATION_M:.0f} m: is it in millimetres? The "
            "fits are in metres"
        )
    params["betas"], params["expression"] = betas, expression
    return {k: v.astype(np.float32) for k, v in params.items()}


def _split_poses(poses: np.ndarray, where: Path, body: _SmplxModel) -> dict[str, np.ndarray]:
    """EasyMocap's flat ``poses`` -> SMPL-X's pose arrays with full hands."""
    n = poses.shape[0]
    if n == 165:  # full poses, SMPL-X joint order
        parts = {"global_orient": poses[:3], "body_pose": poses[3:66], "jaw_pose": poses[66:69],
                 "leye_pose": poses[69:72], "reye_pose": poses[72:75], "left_hand_pose": poses[75:120],
                 "right_hand_pose": poses[120:165]}  # fmt: skip
        return parts
    pca = (n - 75) // 2
    if n < 77 or (n - 75) % 2 or pca > 45:
        smpl = " (72 values is SMPL, which needs a SMPL-X fit)" if n == 72 else ""
        raise ValueError(
            f"{where}: poses has {n} values{smpl}; EasyMocap SMPL-X fits have 66 body + 2 x k hand PCA "
            "+ 9 face values (87 for k = 6) or 165 full values"
        )
    return {
        "global_orient": poses[:3],
        "body_pose": poses[3:66],
        "left_hand_pose": body.full_hand("l", poses[66 : 66 + pca]),
        "right_hand_pose": body.full_hand("r", poses[66 + pca : 66 + 2 * pca]),
        "jaw_pose": poses[66 + 2 * pca : 69 + 2 * pca],
        "leye_pose": poses[69 + 2 * pca : 72 + 2 * pca],
        "reye_pose": poses[72 + 2 * pca : 75 + 2 * pca],
    }


def _camera_scale(path: Path) -> float:
    if not path.is_file():
        raise FileNotFoundError(f"MVHumanNet camera scale {path} does not exist")
    value = load_pickle_file(path)
    try:
        scale = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: holds {type(value).__name__}, expected one number") from error
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"{path}: camera scale {scale} must be a positive number")
    return scale


def _intrinsics(
    root: Path, scale: float, cameras: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The full-size ``K``, the distortion and the full image size ``(W, H)`` (from an ``image_center`` of
    four values in the extrinsics ``cameras``, else the dataset's rule)."""
    path = root / "camera_intrinsics.json"
    data = read_json_object(path, "MVHumanNet camera file")
    try:
        K = np.asarray(data["intrinsics"], np.float64).reshape(3, 3)
        D = np.asarray(data.get("dist") or np.zeros(5), np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: expected {{'intrinsics': [[3x3]], 'dist': [...]}} ({error!r})") from error
    centre = next(iter(cameras.values()), {}).get("image_center", [])
    if len(centre) >= 4:
        return K, D, (int(centre[2]), int(centre[3]))
    return K, D, FULL_SIZE_120_65 if math.isclose(scale, 120 / 65) else FULL_SIZE_OTHER


def _extrinsics(cameras: dict[str, Any], path: Path, scale: float) -> dict[str, np.ndarray]:
    """Per camera name, the world-to-camera matrix in metres (``cameras``: the JSON of ``path``)."""
    viewmats = {}
    for key, entry in cameras.items():
        camera = key.rsplit(".", 1)[0].split("_")[-1]
        try:
            R = np.asarray(entry["rotation"], np.float64).reshape(3, 3)
            T = np.asarray(entry["translation"], np.float64).reshape(3)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{path}: camera {key!r} needs 'rotation' [3x3] and 'translation' [3] ({error!r})"
            ) from error
        viewmat = np.eye(4)
        viewmat[:3, :3], viewmat[:3, 3] = R, T / 1000.0 * scale
        viewmats[camera] = viewmat
    if not viewmats:
        raise ValueError(f"{path}: no cameras")
    return viewmats


def _folder(root: Path, kind: str) -> Path:
    """``<kind>_lr/`` (the release's half-size frames) or ``<kind>/``."""
    for folder in (root / f"{kind}_lr", root / kind):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"MVHumanNet outfit {root}: no {kind}_lr/ or {kind}/ folder")


def _ticks(root: Path, images: Path, cameras: list[str], step: int) -> list[int]:
    """The ticks every camera has an image of, in order (the others counted in a warning)."""
    common: set[int] | None = None
    seen: set[int] = set()
    for camera in cameras:
        found = set()
        for path in (images / camera).glob("*_img.jpg"):
            tick = path.name.split("_", 1)[0]
            if not tick.isdigit() or int(tick) % step or int(tick) < step:
                raise ValueError(
                    f"{path}: MVHumanNet frames are named <tick>_img.jpg with the tick a multiple of "
                    f"{step} (ticks_per_fit)"
                )
            found.add(int(tick))
        if not found:
            raise ValueError(
                f"MVHumanNet outfit {root}: camera '{camera}' has no frames in {images / camera}/"
            )
        common = found if common is None else common & found
        seen |= found
    if not common:
        raise ValueError(f"MVHumanNet outfit {root}: the cameras {cameras} share no frame")
    partial = sorted(seen - common)
    if partial:
        warnings.warn(
            f"MVHumanNet outfit {root}: {len(partial)} frames are not seen by every chosen camera and are "
            f"skipped (first: tick {partial[0]})",
            stacklevel=3,
        )
    return sorted(common)


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size
