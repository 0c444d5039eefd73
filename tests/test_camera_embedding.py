"""The Plücker camera embedding of image tokens (``model.camera_embedding=plucker``): rays against closed
forms (a camera at a known centre, a point pushed along the ray projecting back onto its pixel, the moment
the same from any point of the ray, a face crop's intrinsics), patch centres in the encoder's token order,
the body-frame rays unchanged when the body and its camera move together (the rigid motion recovered by
a least-squares fit of the posed meshes, not from the template's own transforms), and the switch: a model
with it starts exactly where the same seed's model without it starts, and learns through it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from avatar_helpers import studio_batch

from lca.cameras import crop_intrinsics, intrinsics_from_focal, look_at, project_points
from lca.contracts.template import TemplateParams
from lca.errors import LcaError
from lca.model.avatar import AvatarModel, reference_poses
from lca.model.camera_embedding import body_frame_viewmats, patch_centers, plucker_rays
from lca.registry import default_registry


def test_ray_of_a_translated_camera_in_closed_form() -> None:
    center = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    viewmat = torch.eye(4, dtype=torch.float64)
    viewmat[:3, 3] = -center  # R = I: the camera looks down +z from `center`
    K = intrinsics_from_focal(100.0, 100.0, 100, 80).double()
    rays = plucker_rays(viewmat, K, torch.tensor([[50.0, 40.0], [150.0, 40.0]], dtype=torch.float64))
    # principal point: d = +z, moment = o x d = (2, -1, 0)
    torch.testing.assert_close(rays[0], torch.tensor([0.0, 0.0, 1.0, 2.0, -1.0, 0.0], dtype=torch.float64))
    # one focal length to the right: d = (1, 0, 1) / sqrt 2
    d = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64) / 2**0.5
    torch.testing.assert_close(rays[1, :3], d)
    torch.testing.assert_close(rays[1, 3:], torch.linalg.cross(center, d))


def test_rays_project_back_onto_their_pixels_and_moments_are_point_independent() -> None:
    viewmat = look_at(torch.tensor([0.7, 0.4, 2.6]).double(), torch.tensor([0.0, -0.1, 0.0]).double())
    K = intrinsics_from_focal(120.0, 110.0, 94, 106).double()
    pixels = torch.tensor([[3.0, 5.0], [47.0, 53.0], [90.5, 12.25]], dtype=torch.float64)
    rays = plucker_rays(viewmat, K, pixels)
    direction, moment = rays[:, :3], rays[:, 3:]
    torch.testing.assert_close(direction.norm(dim=-1), torch.ones(3, dtype=torch.float64))
    center = -(viewmat[:3, :3].T @ viewmat[:3, 3])
    for depth in (0.5, 3.0):
        points = center + depth * direction
        uv, z = project_points(points, viewmat[None], K[None])
        torch.testing.assert_close(uv[0], pixels)
        assert bool((z > 0).all())
        # any point p of the ray gives the same moment p x d
        torch.testing.assert_close(torch.linalg.cross(points, direction), moment)


def test_a_face_crop_sees_the_same_rays_through_its_own_pixels() -> None:
    viewmat = look_at(torch.tensor([0.0, 1.5, 2.0]).double(), torch.tensor([0.0, 1.5, 0.0]).double())
    K = intrinsics_from_focal(200.0, 200.0, 128, 128).double()
    crop = crop_intrinsics(K, 40.0, 30.0)
    full = plucker_rays(viewmat, K, torch.tensor([[52.0, 41.0]], dtype=torch.float64))
    cropped = plucker_rays(viewmat, crop, torch.tensor([[12.0, 11.0]], dtype=torch.float64))
    torch.testing.assert_close(cropped, full)


def test_patch_centres_follow_the_token_order() -> None:
    centres = patch_centers((2, 4), (8, 16))
    expected = [[u, v] for v in (2.0, 6.0) for u in (2.0, 6.0, 10.0, 14.0)]
    torch.testing.assert_close(centres, torch.tensor(expected))


def _kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rigid 4x4 transform taking ``source`` points onto ``target`` (least squares, via the SVD)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    u, _, vt = np.linalg.svd((source - mu_s).T @ (target - mu_t))
    sign = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, sign]) @ u.T
    transform = np.eye(4)
    transform[:3, :3], transform[:3, 3] = rotation, mu_t - rotation @ mu_s
    return transform


def test_body_frame_rays_move_with_the_body() -> None:
    template = default_registry().build("template", "mannequin", {"num_anchors": 64, "num_head_anchors": 16})
    params = TemplateParams.zeros(2, num_betas=template.num_betas, num_expression=template.num_expression)
    params.betas[:] = 0.3
    params.body_pose[:] = 0.1
    params.global_orient[1] = torch.tensor([0.3, -1.2, 0.5])
    params.transl[1] = torch.tensor([0.4, -0.2, 1.5])
    vertices = template.pose_vertices(params).double().numpy()
    motion = torch.from_numpy(_kabsch(vertices[0], vertices[1]))  # body 0 -> body 1
    viewmat = look_at(torch.tensor([0.5, 0.3, 2.5]).double(), torch.tensor([0.0, 0.0, 0.0]).double())
    # the same camera relative to each body: moved by the body's motion
    viewmats = torch.stack([viewmat, viewmat @ torch.linalg.inv(motion)])[:, None]
    framed = body_frame_viewmats(template, params.reshape(2, 1), viewmats.float())
    K = intrinsics_from_focal(80.0, 80.0, 64, 64)
    rays = plucker_rays(framed, K, patch_centers((4, 4), (64, 64)))
    torch.testing.assert_close(rays[1], rays[0], atol=2e-5, rtol=1e-4)
    # in world coordinates the two cameras' rays differ
    world = plucker_rays(viewmats.float(), K, patch_centers((4, 4), (64, 64)))
    assert not torch.allclose(world[1], world[0], atol=1e-2)


def test_the_switch_starts_from_the_model_without_it_and_learns(tiny_studio_store) -> None:
    off_config, batch = studio_batch(tiny_studio_store, [])
    on_config, _ = studio_batch(tiny_studio_store, ["model.camera_embedding=plucker"])
    torch.manual_seed(0)
    off = AvatarModel(off_config)
    torch.manual_seed(0)
    on = AvatarModel(on_config)
    extra = set(on.state_dict()) - set(off.state_dict())
    assert extra == {"camera_embedding.weight", "camera_embedding.bias"}
    for name, value in off.state_dict().items():
        torch.testing.assert_close(on.state_dict()[name], value, msg=name)
    refs = batch.references
    args = (refs.images, refs.valid, refs.params["betas"][:, 0], reference_poses(refs))
    with torch.no_grad():
        torch.testing.assert_close(on.create_avatar(*args).features, off.create_avatar(*args).features)
    # gradients reach the embedding; once it moves, the avatar depends on where the references were taken
    features = on.create_avatar(*args).features
    features.square().sum().backward()
    assert float(on.camera_embedding.weight.grad.abs().sum()) > 0
    with torch.no_grad():
        on.camera_embedding.weight.normal_()
        before = on.create_avatar(*args).features
        poses = reference_poses(refs)
        shifted = poses.viewmats.clone()
        shifted[..., :3, 3] += torch.tensor([0.0, 0.0, 0.5])
        moved = replace(poses, viewmats=shifted)
        after = on.create_avatar(*args[:3], moved).features
    assert not torch.allclose(before, after)
    # the depth groups of layer-wise decay place it with the token projections
    depths, _ = on.layer_depths()
    assert depths["camera_embedding.weight"] == depths["image_proj.weight"]


def test_the_switch_without_reference_cameras_is_a_clear_error(tiny_studio_store) -> None:
    config, batch = studio_batch(tiny_studio_store, ["model.camera_embedding=plucker", "tokenizer=fourier"])
    model = AvatarModel(config)
    refs = batch.references
    with pytest.raises(LcaError, match="camera_embedding='plucker' needs the reference views' cameras"):
        model.create_avatar(refs.images, refs.valid, refs.params["betas"][:, 0], None)
