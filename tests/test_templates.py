"""The template kind: the procedural mannequin file, the SMPL-X template over it, anchors and posing.

References are independent: ``smplx.create`` / ``smplx.lbs.lbs`` for the body model, barycentric
interpolation of smplx's own output for anchors.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch
from smplx.lbs import lbs
from smplx.vertex_ids import vertex_ids

from lca import skinning
from lca.contracts.template import PART_NAMES, TemplateParams
from lca.mesh import face_areas
from lca.rotations import quat_to_matrix
from lca_plugins.templates.mannequin import MannequinConfig, MannequinTemplate
from lca_plugins.templates.mannequin_model import GROUND_Y, SMPLX_PARENTS, mannequin_model_dir
from lca_plugins.templates.smplx_model import SmplxTemplate, SmplxTemplateConfig, TemplateFileError


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lca-cache")


@pytest.fixture(scope="module")
def template(cache: Path) -> MannequinTemplate:
    return MannequinTemplate(MannequinConfig(cache_dir=str(cache), num_anchors=1500, num_head_anchors=500))


def _random_params(batch: int, seed: int, scale: float = 0.5) -> TemplateParams:
    g = torch.Generator().manual_seed(seed)
    p = TemplateParams.zeros(batch, dtype=torch.float64)
    for name in ("betas", "expression", "global_orient", "body_pose", "left_hand_pose", "right_hand_pose"):
        value = getattr(p, name)
        value.copy_(
            (1.0 if name in ("betas", "expression") else scale)
            * torch.randn(value.shape, generator=g, dtype=torch.float64)
        )
    for name in ("jaw_pose", "leye_pose", "reye_pose", "transl"):
        getattr(p, name).copy_(0.2 * torch.randn(batch, 3, generator=g, dtype=torch.float64))
    return p


def test_mannequin_file_loads_with_plain_smplx_create(cache: Path) -> None:
    root = mannequin_model_dir(cache)
    data = np.load(root / "smplx" / "SMPLX_NEUTRAL.npz")
    np.testing.assert_array_equal(data["kintree_table"][0, 1:], SMPLX_PARENTS[1:])
    assert data["v_template"].shape[0] > max(vertex_ids["smplx"].values())
    for model_path in (root, root / "smplx" / "SMPLX_NEUTRAL.npz"):
        body = smplx.create(str(model_path), model_type="smplx")  # defaults: PCA hands, 10+10 coefficients
        g = torch.Generator().manual_seed(0)
        out = body(
            betas=torch.randn(3, 10, generator=g),
            expression=torch.randn(3, 10, generator=g),
            global_orient=torch.randn(3, 3, generator=g),
            body_pose=torch.randn(3, 63, generator=g),
            left_hand_pose=torch.randn(3, 6, generator=g),
            right_hand_pose=torch.randn(3, 6, generator=g),
            jaw_pose=torch.randn(3, 3, generator=g),
            leye_pose=torch.randn(3, 3, generator=g),
            reye_pose=torch.randn(3, 3, generator=g),
            transl=torch.randn(3, 3, generator=g),
        )
        assert out.vertices.shape == (3, data["v_template"].shape[0], 3)
        assert out.joints.shape == (3, 127, 3)
        assert torch.isfinite(out.vertices).all() and torch.isfinite(out.joints).all()


def test_mannequin_proportions_and_keypoint_vertices(cache: Path) -> None:
    data = np.load(mannequin_model_dir(cache) / "smplx" / "SMPLX_NEUTRAL.npz")
    v = data["v_template"]
    joints = data["J_regressor"] @ v
    assert 1.6 < v[:, 1].max() - v[:, 1].min() < 1.8 and abs(v[:, 1].min() - GROUND_Y) < 0.01
    np.testing.assert_allclose(data["weights"].sum(1), 1.0, atol=1e-12)
    assert joints[16, 0] > 0 > joints[17, 0]  # left shoulder on +x, as in SMPL-X
    ids = vertex_ids["smplx"]
    assert v[ids["nose"], 2] > v[ids["leye"], 2] > joints[15, 2]  # nose tip in front of the eyes
    assert v[ids["leye"], 0] > 0 > v[ids["reye"], 0] and v[ids["leye"], 1] > v[ids["nose"], 1]
    for finger in ("thumb", "index", "middle", "ring", "pinky"):
        assert (
            v[ids[f"l{finger}"], 0] > joints[20, 0] + 0.05 and v[ids[f"r{finger}"], 0] < joints[21, 0] - 0.05
        )
    for side in "LR":
        assert v[ids[f"{side}BigToe"], 2] > 0.15 and v[ids[f"{side}Heel"], 2] < -0.05


def test_mannequin_bytes_are_deterministic(tmp_path: Path, cache: Path) -> None:
    reference = (mannequin_model_dir(cache) / "smplx" / "SMPLX_NEUTRAL.npz").read_bytes()
    again = (mannequin_model_dir(tmp_path) / "smplx" / "SMPLX_NEUTRAL.npz").read_bytes()
    assert again == reference


def test_pose_vertices_equal_smplx_lbs_float64(template: MannequinTemplate) -> None:
    t = template.double()
    try:
        p = _random_params(3, seed=1)
        ours = t.pose_vertices(p)
        rotmats = skinning.pose_to_rotmats(p.full_pose())
        # Random pose correctives, to exercise that path too (the mannequin's own posedirs are zero).
        posedirs = 1e-3 * torch.randn(
            t.posedirs.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64
        )
        ref, _ = lbs(torch.cat([p.betas, p.expression], -1), rotmats, t.v_template, t.shapedirs, t.posedirs,
                     t.j_regressor, t.parents, t.lbs_weights, pose2rot=False)  # fmt: skip
        torch.testing.assert_close(ours, ref + p.transl[:, None], rtol=0, atol=1e-10)
        t.posedirs, saved = posedirs, t.posedirs
        ref2, _ = lbs(torch.cat([p.betas, p.expression], -1), rotmats, t.v_template, t.shapedirs, posedirs,
                      t.j_regressor, t.parents, t.lbs_weights, pose2rot=False)  # fmt: skip
        torch.testing.assert_close(t.pose_vertices(p), ref2 + p.transl[:, None], rtol=0, atol=1e-10)
        assert (ref2 - ref).abs().max() > 1e-4
        t.posedirs = saved
    finally:
        template.float()


def test_template_matches_the_smplx_module(template: MannequinTemplate, cache: Path) -> None:
    body = smplx.create(
        str(mannequin_model_dir(cache)), model_type="smplx", use_pca=False, flat_hand_mean=True, batch_size=2
    )
    p = _random_params(2, seed=3).to(torch.float32)
    out = body(**{f.name: getattr(p, f.name) for f in dataclasses.fields(p)})  # same names as smplx
    torch.testing.assert_close(template.pose_vertices(p), out.vertices, rtol=0, atol=2e-5)
    # Canonical space: smplx's own mesh in the Da-pose, and anchors interpolated on it.
    da = TemplateParams.zeros(2)
    da.betas, da.expression = p.betas, p.expression
    da.body_pose = template.da_pose[1:22].reshape(1, -1).expand(2, -1)
    canon = body(betas=p.betas, expression=p.expression, body_pose=da.body_pose).vertices
    torch.testing.assert_close(template.canonical_vertices(p.betas, p.expression), canon, rtol=0, atol=2e-5)
    tri = canon[:, template.faces[template.anchor_face_idx]]
    expected = (template.anchor_bary[None, :, :, None] * tri).sum(2)
    torch.testing.assert_close(template.shaped_anchors(p.betas, p.expression), expected, rtol=0, atol=2e-5)


def test_joint_transforms_repose_the_canonical_mesh(template: MannequinTemplate) -> None:
    """Da-pose -> target by the relative joint transforms equals posing from the zero pose exactly wherever
    a vertex's weights do not mix joints with different Da-pose transforms (everything but the hip seam),
    and within a few millimetres at the seam."""
    t = template.double()
    saved = t.lbs_weights
    # An exact partition of unity in float64 (the weights are stored as float32).
    t.lbs_weights = saved / saved.sum(-1, keepdim=True)
    try:
        p = _random_params(2, seed=4)
        transforms = t.joint_transforms(p)
        assert transforms.shape == (2, 55, 4, 4)
        got = t.pose_points(t.canonical_vertices(p.betas, p.expression), t.lbs_weights, transforms)
        want = t.pose_vertices(p)
        groups = torch.zeros(55, 3, dtype=torch.float64)
        left_leg, right_leg = [1, 4, 7, 10], [2, 5, 8, 11]
        groups[left_leg, 0] = groups[right_leg, 1] = 1.0
        groups[[j for j in range(55) if j not in left_leg + right_leg], 2] = 1.0
        pure = ((t.lbs_weights @ groups) > 1 - 1e-12).any(-1)
        assert pure.float().mean() > 0.9
        torch.testing.assert_close(got[:, pure], want[:, pure], rtol=0, atol=1e-10)
        assert (got - want).norm(dim=-1).max() < 0.01
    finally:
        t.lbs_weights = saved
        template.float()


def test_anchor_quats_follow_the_posed_anchor_frames(template: MannequinTemplate) -> None:
    p = _random_params(1, seed=5).to(torch.float32)
    transforms = template.joint_transforms(p)
    quats = torch.nn.functional.normalize(torch.randn(1, template.num_anchors, 2, 4), dim=-1)
    posed = template.pose_quats(quats, template.anchor_weights, transforms)
    assert posed.shape == quats.shape and torch.isfinite(posed).all()
    torch.testing.assert_close(posed.norm(dim=-1), torch.ones(1, template.num_anchors, 2))
    single = (template.anchor_weights.max(-1).values > 1 - 1e-6).nonzero()[:, 0]
    joint = template.anchor_weights[single].argmax(-1)
    expected = transforms[0, joint, :3, :3] @ quat_to_matrix(quats[0, single, 0])
    torch.testing.assert_close(quat_to_matrix(posed[0, single, 0]), expected, rtol=0, atol=1e-5)


def test_anchors_deterministic_dense_on_head_and_hands(template: MannequinTemplate, cache: Path) -> None:
    cfg = template.config.model_copy()
    same = MannequinTemplate(cfg)
    torch.testing.assert_close(same.anchor_bary, template.anchor_bary, rtol=0, atol=0)
    assert torch.equal(same.anchor_face_idx, template.anchor_face_idx)
    other = MannequinTemplate(cfg.model_copy(update={"seed": 1}))
    assert not torch.equal(other.anchor_face_idx, template.anchor_face_idx)

    labels = template.anchor_part_labels
    assert set(labels.tolist()) == set(range(len(PART_NAMES)))
    head = PART_NAMES.index("head")
    assert (labels[-500:] == head).all() and (labels[:-500] != head).all()  # [body | head]
    zeros = torch.zeros(1, 10)
    canon = template.canonical_vertices(zeros, zeros)[0]
    area = face_areas(canon, template.faces)
    face_label = template.vertex_part_labels[template.faces].mode(dim=1).values
    density = {k: float((labels == k).sum() / area[face_label == k].sum()) for k in range(len(PART_NAMES))}
    body = (density[2] + density[3]) / 2
    assert density[head] > 2 * body and density[PART_NAMES.index("hands")] > 2 * body
    torch.testing.assert_close(template.anchor_weights.sum(-1), torch.ones(template.num_anchors))


def test_shaped_anchors_follow_the_blendshapes(template: MannequinTemplate) -> None:
    zeros = torch.zeros(1, 10)
    base = template.shaped_anchors(zeros, zeros)[0]
    tall = zeros.clone()
    tall[0, 0] = 2.0
    taller = template.shaped_anchors(tall, zeros)[0]
    assert taller[:, 1].max() - taller[:, 1].min() > 1.08 * (base[:, 1].max() - base[:, 1].min())
    smile = zeros.clone()
    smile[0, 1] = 2.0
    moved = (template.shaped_anchors(zeros, smile)[0] - base).norm(dim=-1) > 1e-5
    head = PART_NAMES.index("head")
    assert moved.any() and (template.anchor_part_labels[moved] == head).all()
    # The inherited blend-shape rows reproduce the rest-space displacement of the anchor.
    coeffs = torch.cat([tall, smile], -1)
    rest_v = template.v_template + skinning.blend_shapes(coeffs, template.shapedirs)[0]
    tri = rest_v[template.faces[template.anchor_face_idx]]
    tri0 = template.v_template[template.faces[template.anchor_face_idx]]
    delta = (template.anchor_bary[..., None] * (tri - tri0)).sum(1)
    torch.testing.assert_close(
        skinning.blend_shapes(coeffs[0], template.anchor_shapedirs), delta, rtol=0, atol=1e-6
    )


def test_smplx_template_reads_any_smplx_folder_and_explains_a_missing_file(
    tmp_path: Path, cache: Path
) -> None:
    with pytest.raises(TemplateFileError) as err:
        SmplxTemplate(SmplxTemplateConfig(model_path=str(tmp_path)))
    text = str(err.value)
    assert str(tmp_path / "smplx" / "SMPLX_NEUTRAL.npz") in text and "https://smpl-x.is.tue.mpg.de" in text
    assert "licen" in text and "mannequin" in text
    with pytest.raises(TemplateFileError, match="model_path"):
        SmplxTemplate(SmplxTemplateConfig())
    real = SmplxTemplate(
        SmplxTemplateConfig(model_path=str(mannequin_model_dir(cache)), num_anchors=64, num_head_anchors=16)
    )
    assert real.num_anchors == 80 and real.faces.shape[1] == 3


def test_template_params_helpers() -> None:
    p = TemplateParams.zeros(2, 3)
    assert p.batch_shape == (2, 3) and p.full_pose().shape == (2, 3, 55, 3)
    flat = p.flatten()
    assert flat.betas.shape == (6, 10) and flat.reshape(2, 3).body_pose.shape == (2, 3, 63)
    assert p.to(torch.float64).transl.dtype == torch.float64
    with pytest.raises(ValueError, match="body_pose"):
        TemplateParams(
            **{**{k: getattr(flat, k) for k in flat.__dataclass_fields__}, "body_pose": torch.zeros(6, 60)}
        )
