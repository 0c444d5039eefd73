"""Synthetic people: determinism, CLI synth + check on both layouts, round trip through the dataset plugins
and plain zarr, masks against the rendered alpha, face boxes against the template's own posed mesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from lca.cameras import project_points
from lca.cli import main
from lca.contracts.template import TemplateParams
from lca.data.schema import SMPLX_POSE_DIMS, register_image_codecs
from lca.data.synth import synthesize
from lca.data.synth.config import SynthConfig
from lca.data.synth.generate import _rng, build_toolkit
from lca.data.synth.identity import make_identity
from lca.data.synth.motion import make_motion
from lca.data.synth.regions import HEAD, JAW
from lca.data.synth.render import MASK_THRESHOLD, pose_identity
from lca.registry import default_registry

TINY = {"identities": 2, "frames": 3, "resolution": 48}
LAYOUTS = ("wild-video", "studio")


def _tiny(layout: str, out: Path, seed: int = 0) -> Path:
    cameras = 2 if layout == "studio" else None
    return synthesize(layout, out, **TINY, cameras=cameras, seed=seed, progress=False)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both layouts at tiny size, written through the CLI; checked by the CLI as well."""
    root = tmp_path_factory.mktemp("synth")
    args = ["data", "synth", "--out", str(root), "--identities", "2", "--frames", "3", "--cameras", "2"]
    assert main([*args, "--resolution", "48", "--seed", "0", "--no-progress"]) == 0
    return {layout: root / f"{layout}.zarr" for layout in LAYOUTS}


def _arrays(path: Path) -> dict[str, np.ndarray]:
    register_image_codecs()
    root = zarr.open_group(str(path), mode="r")
    out = {}
    for name, group in root.groups():
        for key, array in group.arrays():
            out[f"{name}/{key}"] = array[...]
        for key, array in group["smplx"].arrays():
            out[f"{name}/smplx/{key}"] = array[...]
    return out


def test_cli_list_shows_groups_by_split(stores: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list", str(stores["studio"])]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [(row[0], row[1], row[2], row[4]) for row in rows] == [
        ("capture-0000", "studio-s0-0000", "train", "2"),
        ("capture-0001", "studio-s0-0001", "train", "2"),
    ]
    assert main(["data", "list", str(stores["studio"]), "--split", "test"]) == 0
    assert "capture-0000" not in capsys.readouterr().out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cli_check_passes(stores: dict[str, Path], layout: str) -> None:
    assert main(["data", "check", str(stores[layout])]) == 0


def test_cli_check_fails_on_corrupt_chunk(stores: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken.zarr"
    shutil.copytree(stores["wild-video"], broken)
    chunk = next(
        p for p in (broken / "clip-0000" / "frames").rglob("*") if p.is_file() and p.name != "zarr.json"
    )
    chunk.write_bytes(b"\x00" * 16)
    assert main(["data", "check", str(broken)]) == 1


def test_same_seed_same_arrays_other_seed_differs(stores: dict[str, Path], tmp_path: Path) -> None:
    again = _arrays(_tiny("wild-video", tmp_path / "again.zarr", seed=0))
    first = _arrays(stores["wild-video"])
    assert again.keys() == first.keys()
    for key in first:
        np.testing.assert_array_equal(again[key], first[key], err_msg=key)
    other = _arrays(_tiny("wild-video", tmp_path / "other.zarr", seed=1))
    assert not np.array_equal(other["clip-0000/frames"], first["clip-0000/frames"])
    assert not np.array_equal(other["clip-0000/smplx/body_pose"], first["clip-0000/smplx/body_pose"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_round_trip_dataset_plugin_equals_plain_zarr(stores: dict[str, Path], layout: str) -> None:
    register_image_codecs()
    dataset = default_registry().build(
        "dataset",
        layout,
        {"path": str(stores[layout]), "num_references": 2, "num_targets": 2, "image_size": 48},
    )
    root = zarr.open_group(str(stores[layout]), mode="r")
    sample = dataset[0]
    group = root[sample.group]
    targets = sample.targets
    for v in range(len(targets)):
        t, c = int(targets.frame[v]), int(targets.camera[v])
        index = (t, c) if layout == "studio" else (t,)
        # 48x48 images are read at 48x48, so the resize is exact: the pixels are the stored bytes.
        stored = torch.from_numpy(group["frames"][index]).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(targets.images[v], stored, atol=1e-6, rtol=0)
        mask = torch.from_numpy(group["masks"][index]).float() / 255
        torch.testing.assert_close(targets.masks[v, 0], mask, atol=1e-6, rtol=0)
        viewmats = group["viewmats"][c if layout == "studio" else t]
        np.testing.assert_array_equal(targets.viewmats[v].numpy(), viewmats)
        for key in SMPLX_POSE_DIMS:
            np.testing.assert_array_equal(targets.params[key][v].numpy(), group["smplx"][key][t])
    assert root[sample.group].attrs["split"] == "train"


def test_splits_are_by_identity_and_never_move_when_a_store_grows(tmp_path: Path) -> None:
    """A store of 20 and one of 40 people (same seed): every person of the small store is the same person,
    with the same split, in the big one; the first twenty's test people are the big store's test people."""
    splits = {}
    for count in (20, 40):
        out = tmp_path / str(count)
        args = ["data", "synth", "--layout", "wild-video", "--out", str(out), "--identities", str(count)]
        assert main([*args, "--frames", "1", "--resolution", "16", "--seed", "3", "--no-progress"]) == 0
        root = zarr.open_group(str(out / "wild-video.zarr"), mode="r")
        splits[count] = {
            name: (root[name].attrs["identity"], root[name].attrs["split"]) for name in root.group_keys()
        }
    small, big = splits[20], splits[40]
    assert {name: big[name] for name in small} == small
    assert sum(split == "test" for _, split in big.values()) == 13  # index % 3 == 2 for 40 people
    assert {split for _, split in small.values()} == {"train", "val", "test"}
    assert small["clip-0002"] == ("wild-s3-0002", "test")


def _person(layout: str, seed: int = 0):
    """The tiny store's first person, motion and cameras, rebuilt through the generator's own seeds."""
    config = SynthConfig(layout=layout, seed=seed, **TINY).resolved()  # type: ignore[arg-type]
    template, regions, rasterizer = build_toolkit(config)
    return template, regions, rasterizer, config


@pytest.mark.parametrize("layout", LAYOUTS)
def test_masks_are_the_thresholded_alpha(stores: dict[str, Path], layout: str) -> None:
    """Re-render the stored first frame from the stored SMPL-X params and cameras: mask == alpha >= 0.5."""
    template, regions, rasterizer, config = _person(layout)
    code = 1 if layout == "wild-video" else 2
    identity = make_identity(template, regions, [0, code, 0, 0], "x")
    root = zarr.open_group(str(stores[layout]), mode="r")
    group = root[sorted(n for n, _ in root.groups())[0]]
    motion_rng = _rng(config, 0, 1)
    motion = make_motion(
        motion_rng, 3, config.fps, identity.betas.numpy(), template.num_expression,
        yaw=float(motion_rng.uniform(-0.5, 0.5)), expressive=1.0 if layout == "studio" else 0.6,
    )  # fmt: skip
    for key in SMPLX_POSE_DIMS:  # the regenerated motion is the stored one
        np.testing.assert_array_equal(motion.params[key], group["smplx"][key][...])
    with torch.no_grad():
        gaussians, _, _, _ = pose_identity(template, identity, motion)
        frame = gaussians.map(lambda f: f[0])
        viewmat = torch.from_numpy(group["viewmats"][0])[None]
        K = torch.from_numpy(group["Ks"][0])[None]
        alpha = rasterizer(frame, viewmat, K, 48, 48).alpha[0, 0]
    stored = torch.from_numpy(group["masks"][(0, 0) if layout == "studio" else (0,)]) > 0
    person = alpha >= MASK_THRESHOLD
    # Back-facing Gaussians are skipped when the store is drawn; the full cloud covers the same pixels.
    disagree = (stored != person).float().mean()
    assert person.any() and disagree < 0.01
    assert bool(stored[alpha < 0.1].logical_not().all()), "mask set where nothing was drawn"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_face_boxes_contain_projected_face_vertices(stores: dict[str, Path], layout: str) -> None:
    """Pose the template's mesh (its own ``pose_vertices``, not the anchors) with the stored parameters and
    project the core of the face (eyes to mouth) with the stored cameras: inside every stored face box."""
    template, regions, _, _ = _person(layout)
    canon = template.canonical_vertices(torch.zeros(1, 10), torch.zeros(1, 10))[0]
    head = torch.isin(template.lbs_weights.argmax(-1), torch.tensor([HEAD, JAW]))
    eye_y = float(regions.eye_centres[:, 1].mean())
    core = head & (canon[:, 2] > 0.07) & (canon[:, 1] > eye_y - 0.07) & (canon[:, 1] < eye_y + 0.01)
    core &= canon[:, 0].abs() < 0.04
    assert int(core.sum()) > 10
    root = zarr.open_group(str(stores[layout]), mode="r")
    boxes_seen = 0
    for name, group in root.groups():
        smplx = {k: torch.from_numpy(a[...]) for k, a in group["smplx"].arrays()}
        frames = smplx["body_pose"].shape[0]
        smplx["betas"] = smplx["betas"].expand(frames, -1)
        with torch.no_grad():
            vertices = template.pose_vertices(TemplateParams(**smplx))[:, core]  # [T, F, 3]
        viewmats, Ks = torch.from_numpy(group["viewmats"][...]), torch.from_numpy(group["Ks"][...])
        boxes = torch.from_numpy(group["face_box"][...])
        if layout == "wild-video":
            uv, _ = project_points(vertices, viewmats[:, None], Ks[:, None])  # [T, 1, F, 2]
            boxes = boxes[:, None]
        else:
            uv, _ = project_points(
                vertices, viewmats[None].expand(frames, -1, -1, -1), Ks[None].expand(frames, -1, -1, -1)
            )
        present = boxes[..., 2] > boxes[..., 0]
        inside = (uv >= boxes[..., None, :2] - 0.5) & (uv <= boxes[..., None, 2:] + 0.5)
        assert bool(inside.all(-1).all(-1)[present].all()), f"{name}: face vertices outside the face box"
        boxes_seen += int(present.sum())
    assert boxes_seen > 0
