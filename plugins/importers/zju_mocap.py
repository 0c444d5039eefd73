"""``zju-mocap`` importer: one ZJU-MoCap sequence (``CoreView_<id>/``) into a ``studio`` capture.

Layout read (as Neural Body's ``multi_view_dataset.py`` reads it):

- ``annots.npy``: a pickled dict ``{cams: {K, D, R, T}, ims: [{ims: [path per camera]} per frame]}``;
  ``R``/``T`` map world to camera (OpenCV axes), ``T`` **in millimetres**; ``D`` the distortion
  ``k1, k2, p1, p2, k3``. Read without running pickled code (:mod:`lca_plugins.importers.safe_npy`).
- Images ``<camera folder>/<frame>.jpg`` as ``ims`` names them; masks ``mask_cihp/<same path>.png``
  (CIHP part labels: the person where non-zero; ``mask_dir`` names another folder, e.g. ``mask``).
- ``params/<i>.npy``: ZJU-MoCap's fits are **SMPL** (72 pose values), not SMPL-X, so they are not read.
  The SMPL-X parameters come from per-frame files in the toolkit's own format
  (:mod:`lca_plugins.importers.smplx_files`, one per frame named after the image, ``smplx/000012.npz``),
  which you fit (e.g. with SMPLify-X on the images, or by converting the SMPL fits with the smplx
  repository's ``transfer_model``); without them the importer says so and where to put them.

Conversions: ``T`` / 1000 to metres, ``[R | T]`` as the world-to-camera matrix; frames whose images,
masks and SMPL-X files all exist, in the order of ``ims``. Distorted cameras need OpenCV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from pydantic import Field

from lca.contracts.importer import Importer
from lca.data.writer import StoreWriter
from lca_plugins.importers.safe_npy import load_pickled_npy
from lca_plugins.importers.smplx_files import load_smplx_file
from lca_plugins.importers.studio_config import StudioImportConfig
from lca_plugins.importers.undistort import distorted, opencv, undistort

MM_PER_M = 1000.0


class ZjuMocapConfig(StudioImportConfig):
    smplx_dir: str | None = None
    """Folder of per-frame SMPL-X files in the toolkit's format (default: SOURCE/smplx)."""
    mask_dir: str = "mask_cihp"
    """Mask folder under SOURCE, mirroring the image paths (``mask`` in some releases)."""
    cameras: list[int] | None = None
    """Camera indices (positions in ``annots.npy``) to import (default: all)."""
    fps: float = Field(50.0, gt=0)
    """Frame rate stored with the capture (the release's cameras ran at 50 fps)."""


class ZjuMocapImporter(Importer):
    """One ZJU-MoCap sequence folder (``annots.npy``, images, masks) + SMPL-X files -> one studio capture."""

    Config: ClassVar[type[ZjuMocapConfig]] = ZjuMocapConfig
    config: ZjuMocapConfig

    def import_into(self, source: str | Path, store: str) -> list[str]:
        cfg = self.config
        root = Path(source)
        annots_path = root / "annots.npy"
        if not annots_path.is_file():
            raise FileNotFoundError(f"ZJU-MoCap sequence {root}: no annots.npy at {annots_path}")
        annots = load_pickled_npy(annots_path)
        cams, frames = _layout(annots, annots_path)
        count = len(cams["K"])
        cameras = cfg.cameras if cfg.cameras is not None else list(range(count))
        for c in cameras:
            if not 0 <= c < count:
                raise ValueError(
                    f"{annots_path}: camera {c} is not among its {count} cameras (0..{count - 1})"
                )
        smplx_dir = Path(cfg.smplx_dir) if cfg.smplx_dir else root / "smplx"
        if not smplx_dir.is_dir():
            raise FileNotFoundError(_no_smplx_message(root, smplx_dir))
        paths = cfg.select([[root / frame[c] for c in cameras] for frame in frames])
        viewmats, Ks, Ds = [], [], []
        for c in cameras:
            R = np.asarray(cams["R"][c], np.float64).reshape(3, 3)
            T = np.asarray(cams["T"][c], np.float64).reshape(3) / MM_PER_M
            viewmat = np.eye(4)
            viewmat[:3, :3], viewmat[:3, 3] = R, T
            viewmats.append(viewmat)
            Ks.append(np.asarray(cams["K"][c], np.float64).reshape(3, 3))
            Ds.append(np.asarray(cams["D"][c], np.float64).reshape(-1) if "D" in cams else np.zeros(5))
        if any(distorted(D) for D in Ds):  # refused before a byte is written
            opencv(annots_path, next(D for D in Ds if distorted(D)))
        first = _image(paths[0][0])
        params0 = load_smplx_file(smplx_dir, paths[0][0].stem, annots_path, 0)
        name = cfg.group or root.name
        identity = cfg.identity or name
        with StoreWriter(store, "studio", **cfg.writer_options()) as writer:
            capture = writer.add_capture(
                name,
                identity=identity,
                split=cfg.split_for(identity),
                num_frames=len(paths),
                height=first.shape[0],
                width=first.shape[1],
                viewmats=np.stack(viewmats),
                Ks=np.stack(Ks),
                camera_ids=[Path(frames[0][c]).parent.name or str(c) for c in cameras],
                fps=cfg.fps,
                source=f"import:zju-mocap:{root}",
                num_betas=params0["betas"].shape[0],
                num_expression=params0["expression"].shape[0],
            )
            for index, views in enumerate(paths):
                images, masks = [], []
                for path, K, D in zip(views, Ks, Ds, strict=True):
                    image = undistort(_image(path), K, D, path)
                    if image.shape != first.shape:
                        raise ValueError(
                            f"{path}: image of {image.shape[:2]}, the first is {first.shape[:2]}"
                        )
                    mask_path = root / cfg.mask_dir / path.relative_to(root).with_suffix(".png")
                    images.append(image)
                    masks.append(undistort(_mask(mask_path), K, D, mask_path))
                params = load_smplx_file(smplx_dir, views[0].stem, annots_path, index)
                capture.append(
                    image=np.stack(images),
                    mask=np.stack(masks),
                    smplx=params,
                    face_box=np.broadcast_to(params.get("face_box", np.zeros(4)), (len(views), 4)),
                )
        return [name]


def _layout(annots: Any, where: Path) -> tuple[dict[str, Any], list[list[str]]]:
    """``cams`` and, per frame, the image path of each camera, checked for the shapes the format has."""
    if not isinstance(annots, dict) or "cams" not in annots or "ims" not in annots:
        raise ValueError(f"{where}: expected a dict with 'cams' and 'ims' (ZJU-MoCap's annots.npy)")
    cams = annots["cams"]
    missing = [k for k in ("K", "R", "T") if k not in cams]
    if missing:
        raise ValueError(f"{where}: cams lacks {missing}")
    count = len(cams["K"])
    if any(len(cams[k]) != count for k in ("R", "T")):
        raise ValueError(
            f"{where}: cams K, R and T have {count}, {len(cams['R'])} and {len(cams['T'])} entries"
        )
    frames = []
    for t, entry in enumerate(annots["ims"]):
        views = list(entry["ims"]) if isinstance(entry, dict) and "ims" in entry else None
        if views is None or len(views) != count:
            got = "no 'ims' list" if views is None else f"{len(views)} images"
            raise ValueError(f"{where}: frame {t} has {got}, expected one image per camera ({count})")
        frames.append([str(v) for v in views])
    if not frames:
        raise ValueError(f"{where}: 'ims' lists no frame")
    far = max(float(np.abs(np.asarray(T)).max()) for T in cams["T"])
    if far < 50.0:  # a studio camera stands metres away: in millimetres T is in the thousands
        raise ValueError(
            f"{where}: camera translations reach only {far:.2f}; ZJU-MoCap's T is in millimetres (the "
            "importer divides by 1000): are these already metres? Multiply them by 1000 or use another format"
        )
    return cams, frames


def _no_smplx_message(root: Path, smplx_dir: Path) -> str:
    smpl = " (its params/ are SMPL fits: 72 pose values, not SMPL-X)" if (root / "params").is_dir() else ""
    return (
        f"ZJU-MoCap sequence {root}: no SMPL-X files at {smplx_dir}{smpl}. This toolkit needs SMPL-X: fit it "
        "per frame (e.g. SMPLify-X on the images, or the smplx repository's transfer_model from the SMPL "
        f"fits) and write one file per frame named after the image ({smplx_dir}/000000.npz, keys betas, "
        "global_orient, body_pose, transl, ...; docs/data.md), or set smplx_dir"
    )


def _image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"image {path} (named in annots.npy) does not exist")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _mask(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"mask {path} does not exist (masks mirror the image paths; see mask_dir)")
    with Image.open(path) as image:
        labels = np.asarray(image.convert("L"))
    return np.where(labels > 0, 255, 0).astype(np.uint8)
