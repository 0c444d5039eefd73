"""``actorshq`` importer: one ActorsHQ sequence (``Actor<NN>/Sequence<N>/<scale>x/``) into a ``studio``
capture.

Layout read (as humanrf's ``actorshq/dataset`` reads it):

- ``calibration.csv``: one row per camera, ``name, w, h, rx, ry, rz, tx, ty, tz, fx, fy, px, py``. The
  rotation ``(rx, ry, rz)`` is axis-angle **camera-to-world** and ``(tx, ty, tz)`` the camera's position
  (metres), in right-down-forward camera axes (OpenCV's); ``fx, fy, px, py`` are **normalised** by the
  image width and height.
- ``rgbs/<camera>/<camera>_rgb<frame:06d>.jpg`` and ``masks/<camera>/<camera>_mask<frame:06d>.png``.
- ActorsHQ ships no SMPL-X fits: they come from per-frame files in the toolkit's own format
  (:mod:`lca_plugins.importers.smplx_files`, ``smplx/<frame:06d>.npz``), which you fit.

Conversions: the camera-to-world matrix from the axis-angle rotation (scipy) and position is inverted to
world-to-camera; intrinsics are multiplied by the image size. ActorsHQ mixes landscape and portrait
cameras; a capture holds one image size, so the cameras chosen must share one (the error lists the
groups). Frames are those whose images exist for every chosen camera.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from lca.contracts.importer import Importer
from lca.data.writer import StoreWriter
from lca_plugins.importers.frame_files import read_frame_file
from lca_plugins.importers.smplx_files import load_smplx_file
from lca_plugins.importers.studio_config import StudioImportConfig

CALIBRATION = "calibration.csv"
COLUMNS = ("name", "w", "h", "rx", "ry", "rz", "tx", "ty", "tz", "fx", "fy", "px", "py")


class ActorsHqConfig(StudioImportConfig):
    smplx_dir: str | None = None
    """Folder of per-frame SMPL-X files in the toolkit's format (default: SOURCE/smplx)."""
    cameras: list[str] | None = None
    """Camera names to import (default: every camera of the calibration; they must share one image size)."""
    fps: float = Field(25.0, gt=0)
    """Frame rate stored with the capture (the release's cameras ran at 25 fps)."""


class ActorsHqImporter(Importer):
    """One ActorsHQ sequence folder (calibration.csv, rgbs/, masks/) + SMPL-X files -> one studio capture."""

    Config: ClassVar[type[ActorsHqConfig]] = ActorsHqConfig
    config: ActorsHqConfig

    def import_into(self, source: str | Path, store: str) -> list[str]:
        cfg = self.config
        root = Path(source)
        calibration = _read_calibration(root / "calibration.csv")
        names = cfg.cameras or list(calibration)
        unknown = [n for n in names if n not in calibration]
        if unknown:
            raise ValueError(
                f"{root / 'calibration.csv'}: no camera {unknown} (cameras: {', '.join(calibration)})"
            )
        sizes: dict[tuple[int, int], list[str]] = {}
        for name in names:
            sizes.setdefault(calibration[name]["size"], []).append(name)
        if len(sizes) > 1:
            groups = "; ".join(f"{w}x{h}: {', '.join(c)}" for (w, h), c in sizes.items())
            raise ValueError(
                f"{root / 'calibration.csv'}: the cameras have {len(sizes)} image sizes ({groups}); a "
                "capture holds one: choose cameras of one size (--set cameras=[...])"
            )
        ((width, height),) = sizes
        smplx_dir = Path(cfg.smplx_dir) if cfg.smplx_dir else root / "smplx"
        if not smplx_dir.is_dir():
            raise FileNotFoundError(
                f"ActorsHQ sequence {root}: no SMPL-X files at {smplx_dir} (ActorsHQ ships none): fit SMPL-X "
                f"per frame and write one file per frame ({smplx_dir}/000000.npz, keys betas, global_orient, "
                "body_pose, transl, ...; docs/data.md), or set smplx_dir"
            )
        frames = cfg.select(_frames(root, names))
        params0 = load_smplx_file(smplx_dir, f"{frames[0]:06d}", root, 0)
        actor, sequence = root.parent.parent.name, root.parent.name  # Actor01/Sequence1/1x
        name = cfg.group or (f"{actor}-{sequence}" if actor and sequence else root.name)
        identity = cfg.identity or actor or name
        with StoreWriter(store, "studio", **cfg.writer_options()) as writer:
            capture = writer.add_capture(
                name,
                identity=identity,
                split=cfg.split_for(identity),
                num_frames=len(frames),
                height=height,
                width=width,
                viewmats=np.stack([calibration[n]["viewmat"] for n in names]),
                Ks=np.stack([calibration[n]["K"] for n in names]),
                camera_ids=names,
                fps=cfg.fps,
                source=f"import:actorshq:{root}",
                num_betas=params0["betas"].shape[0],
                num_expression=params0["expression"].shape[0],
            )
            for index, frame in enumerate(frames):
                images = [
                    read_frame_file(
                        root / "rgbs" / n / f"{n}_rgb{frame:06d}.jpg", "RGB", (width, height), CALIBRATION
                    )
                    for n in names
                ]
                masks = [
                    read_frame_file(
                        root / "masks" / n / f"{n}_mask{frame:06d}.png", "L", (width, height), CALIBRATION
                    )
                    for n in names
                ]
                params = load_smplx_file(smplx_dir, f"{frame:06d}", root, index)
                capture.append(
                    image=np.stack(images),
                    mask=np.stack(masks),
                    smplx=params,
                    face_box=np.broadcast_to(params.get("face_box", np.zeros(4)), (len(names), 4)),
                )
        return [name]


def _read_calibration(path: Path) -> dict[str, dict[str, Any]]:
    """Per camera name: image ``size (w, h)``, world-to-camera ``viewmat [4,4]`` and pixel ``K [3,3]``."""
    from scipy.spatial.transform import Rotation

    if not path.is_file():
        raise FileNotFoundError(f"ActorsHQ calibration {path} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = [c for c in COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise ValueError(
            f"{path}: expected a header with {', '.join(COLUMNS)}" + (f" (missing {missing})" if rows else "")
        )
    cameras = {}
    for line, row in enumerate(rows, start=2):
        try:
            w, h = int(row["w"]), int(row["h"])
            values = {k: float(row[k]) for k in COLUMNS[3:]}
        except ValueError as error:
            raise ValueError(f"{path}, line {line} (camera {row['name']!r}): {error}") from error
        c2w = np.eye(4)
        c2w[:3, :3] = Rotation.from_rotvec([values["rx"], values["ry"], values["rz"]]).as_matrix()
        c2w[:3, 3] = [values["tx"], values["ty"], values["tz"]]
        K = np.array(
            [[values["fx"] * w, 0, values["px"] * w], [0, values["fy"] * h, values["py"] * h], [0, 0, 1]]
        )
        cameras[row["name"]] = {"size": (w, h), "viewmat": np.linalg.inv(c2w), "K": K}
    return cameras


def _frames(root: Path, cameras: list[str]) -> list[int]:
    """Frame numbers whose image exists for every camera, in order."""
    common: set[int] | None = None
    for camera in cameras:
        prefix = f"{camera}_rgb"
        found = {int(p.stem[len(prefix) :]) for p in (root / "rgbs" / camera).glob(f"{prefix}*.jpg")}
        if not found:
            raise ValueError(f"ActorsHQ sequence {root}: camera '{camera}' has no frames in rgbs/{camera}/")
        common = found if common is None else common & found
    if not common:
        raise ValueError(f"ActorsHQ sequence {root}: the cameras {cameras} share no frame")
    return sorted(common)
