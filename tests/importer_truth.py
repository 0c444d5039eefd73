"""What the importer tests share: a synthetic studio person whose cameras and parameters are known (the
truth a fixture in a dataset's layout is written from), images encoded as datasets store them, and the
round-trip check that the template posed by imported parameters lands on the imported masks; one tiny
training step on an imported store; and a pickle payload that would run a command, for the tests that
pickled metadata is refused, not run."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lca.data.reader import StoreReader


def synthetic_truth(folder: Path, frames: int, cameras: int, size: int) -> tuple[StoreReader, str]:
    """One synthetic person in a studio store under ``folder``: its reader and group name."""
    from lca.data.synth import synthesize

    url = synthesize(
        "studio", folder / "truth.zarr", identities=1, frames=frames, cameras=cameras, resolution=size,
        progress=False,
    )  # fmt: skip
    reader = StoreReader(str(url))
    return reader, reader.group_names()[0]


def jpeg(array: np.ndarray) -> np.ndarray:
    """An image as JPEG bytes in a uint8 array (how .smc files hold frames; ``.tobytes()`` for a file)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=98)
    return np.frombuffer(buffer.getvalue(), np.uint8)


def silhouette_iou(
    reader: StoreReader, group: str, viewmats: np.ndarray, Ks: np.ndarray | None = None
) -> float:
    """Mean IoU between the imported masks and the template posed by the imported SMPL-X parameters,
    drawn as small Gaussians at its anchors through ``viewmats`` with ``Ks`` (default: the imported
    intrinsics): per camera ``[C,4,4]`` for a studio store, per frame ``[T,4,4]`` for a wild-video one."""
    from lca.contracts.template import TemplateParams
    from lca.data.synth import SynthConfig
    from lca.data.synth.generate import build_toolkit
    from lca.gaussians import Gaussians

    template, _, rasterizer = build_toolkit(SynthConfig(layout="studio"))
    meta = reader.meta(group)
    Ks = meta.Ks if Ks is None else Ks
    studio = reader.layout == "studio"
    ious = []
    for t in range(meta.num_frames):
        params = TemplateParams(**{k: torch.from_numpy(v).float()[None] for k, v in meta.params(t).items()})
        anchors = template.shaped_anchors(params.betas, params.expression)
        points = template.pose_points(anchors, template.anchor_weights, template.joint_transforms(params))[0]
        n = points.shape[0]
        blobs = Gaussians(
            points, torch.tensor([1.0, 0, 0, 0]).expand(n, 4), torch.full((n, 3), 0.03), torch.ones(n),
            torch.ones(n, 3),
        )  # fmt: skip
        for c in range(meta.num_cameras if studio else 1):
            i = c if studio else t
            view, K = torch.from_numpy(viewmats[i]).float()[None], torch.from_numpy(Ks[i]).float()[None]
            drawn = rasterizer(blobs, view, K, meta.width, meta.height).alpha[0, 0] > 0.5
            mask = torch.from_numpy(reader.read_mask(group, t, c)) > 127
            ious.append(float((drawn & mask).sum() / (drawn | mask).sum().clamp(min=1)))
    return float(np.mean(ious))


class RunsCode:
    """Pickles to a call of ``touch MARKER``: a file that names code, which no importer may run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        import os

        return (os.system, (f"touch {self.marker}",))


def trains_one_step(store: Path | str, run: Path, *extra: str) -> bool:
    """Whether ``lca train`` runs one tiny post-training step on the studio ``store`` and writes its final
    checkpoint (no gaze driver: the public studio formats carry no gaze); ``extra`` overrides are added."""
    from avatar_helpers import TINY_OVERRIDES

    from lca.cli import main

    tiny = [o for o in TINY_OVERRIDES if not o.startswith("drivers.gaze.")]
    data = [f"data.studio.path={store}", "data.studio.samples_per_group=2", "drivers.gaze=null"]
    steps = ["schedule.posttrain.steps=1", "schedule.posttrain.init_from=null", "--stage", "posttrain"]
    code = main(["train", "lca-tiny", *tiny, *data, *extra, *steps, "--run-dir", str(run)])
    return code == 0 and (run / "checkpoints" / "posttrain" / "final").is_dir()
