"""Pretrained-weight loading: the Sapiens name mapping (checked against an independent forward pass written
with the official names), DINOv2 local round trips, and the missing-file error."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from lca.errors import WeightsMismatchError, WeightsNotFoundError
from lca_plugins.encoders.dinov2_vit import DinoV2ViT, DinoV2ViTConfig
from lca_plugins.encoders.sapiens_vit import SapiensViT, SapiensViTConfig

C, DEPTH, HEADS, PRETRAIN_GRID = 64, 2, 2, 4  # the "tiny" variant; pretraining grid 4x4 (64x64 pixels)


def official_sapiens_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """An MAE checkpoint as facebookresearch/sapiens writes it (mmpretrain names and shapes), tiny size."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.2  # noqa: E731
    sd = {
        "backbone.cls_token": r(1, 1, C),
        "backbone.pos_embed": r(1, 1 + PRETRAIN_GRID**2, C),
        "backbone.patch_embed.projection.weight": r(C, 3, 16, 16),
        "backbone.patch_embed.projection.bias": r(C),
        "backbone.ln1.weight": 1 + r(C),
        "backbone.ln1.bias": r(C),
        "neck.mask_token": r(1, 1, 32),  # the MAE decoder: not part of the encoder, ignored
        "neck.decoder_embed.weight": r(32, C),
    }
    for i in range(DEPTH):
        p = f"backbone.layers.{i}."
        sd |= {
            p + "ln1.weight": 1 + r(C), p + "ln1.bias": r(C),
            p + "attn.qkv.weight": r(3 * C, C), p + "attn.qkv.bias": r(3 * C),
            p + "attn.proj.weight": r(C, C), p + "attn.proj.bias": r(C),
            p + "ln2.weight": 1 + r(C), p + "ln2.bias": r(C),
            p + "ffn.layers.0.0.weight": r(4 * C, C), p + "ffn.layers.0.0.bias": r(4 * C),
            p + "ffn.layers.1.weight": r(C, 4 * C), p + "ffn.layers.1.bias": r(C),
        }  # fmt: skip
    return sd


def reference_sapiens_forward(
    sd: dict[str, torch.Tensor], x: torch.Tensor, grid: tuple[int, int]
) -> torch.Tensor:
    """Sapiens' ViT forward (no class token, as its downstream models run) from the official names."""
    w = lambda name: sd["backbone." + name]  # noqa: E731
    t = F.conv2d(x, w("patch_embed.projection.weight"), w("patch_embed.projection.bias"), stride=16)
    t = t.flatten(2).transpose(1, 2)
    pos = w("pos_embed")[:, 1:].reshape(1, PRETRAIN_GRID, PRETRAIN_GRID, C).permute(0, 3, 1, 2)
    pos = F.interpolate(pos, size=grid, mode="bicubic", align_corners=False)
    t = t + pos.flatten(2).transpose(1, 2)
    for i in range(DEPTH):
        p = f"layers.{i}."
        h = F.layer_norm(t, (C,), w(p + "ln1.weight"), w(p + "ln1.bias"), eps=1e-6)
        q, k, v = (
            F.linear(h, w(p + "attn.qkv.weight"), w(p + "attn.qkv.bias"))
            .unflatten(-1, (3, HEADS, -1))
            .unbind(2)
        )
        a = torch.softmax(
            q.transpose(1, 2) @ k.transpose(1, 2).transpose(-1, -2) / (C // HEADS) ** 0.5, dim=-1
        )
        a = (a @ v.transpose(1, 2)).transpose(1, 2).flatten(2)
        t = t + F.linear(a, w(p + "attn.proj.weight"), w(p + "attn.proj.bias"))
        h = F.layer_norm(t, (C,), w(p + "ln2.weight"), w(p + "ln2.bias"), eps=1e-6)
        h = F.gelu(F.linear(h, w(p + "ffn.layers.0.0.weight"), w(p + "ffn.layers.0.0.bias")))
        t = t + F.linear(h, w(p + "ffn.layers.1.weight"), w(p + "ffn.layers.1.bias"))
    return F.layer_norm(t, (C,), w("ln1.weight"), w("ln1.bias"), eps=1e-6)


def test_sapiens_checkpoint_maps_onto_timm(tmp_path: Path) -> None:
    sd = official_sapiens_state_dict()
    path = tmp_path / "sapiens_tiny_epoch_1.pth"
    torch.save({"meta": {"epoch": 1}, "state_dict": sd}, path)
    encoder = SapiensViT(SapiensViTConfig(variant="tiny", image_size=(64, 48), weights=str(path))).eval()
    vit = encoder.vit
    for i in range(DEPTH):
        p = f"backbone.layers.{i}."
        assert torch.equal(vit.blocks[i].attn.qkv.weight, sd[p + "attn.qkv.weight"])
        assert torch.equal(vit.blocks[i].mlp.fc1.weight, sd[p + "ffn.layers.0.0.weight"])
        assert torch.equal(vit.blocks[i].mlp.fc2.bias, sd[p + "ffn.layers.1.bias"])
        assert torch.equal(vit.blocks[i].norm2.weight, sd[p + "ln2.weight"])
    assert torch.equal(vit.patch_embed.proj.weight, sd["backbone.patch_embed.projection.weight"])
    assert torch.equal(vit.norm.bias, sd["backbone.ln1.bias"])
    # the whole encoder agrees with a forward pass written from the official names
    images = torch.rand(1, 1, 3, 64, 48, generator=torch.Generator().manual_seed(3))
    normalised = (images[0] - encoder.mean) / encoder.std
    expected = reference_sapiens_forward(sd, normalised, (4, 3))
    torch.testing.assert_close(encoder(images).tokens[0], expected, atol=1e-4, rtol=1e-4)


def test_sapiens_unknown_parameter_is_an_error(tmp_path: Path) -> None:
    sd = official_sapiens_state_dict() | {"backbone.layers.0.attn.gamma1.weight": torch.ones(C)}
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(
        WeightsMismatchError, match=r"unrecognised checkpoint parameters: layers\.0\.attn\.gamma1"
    ):
        SapiensViT(SapiensViTConfig(variant="tiny", image_size=(64, 48), weights=str(tmp_path / "w.pth")))


def test_sapiens_wrong_size_names_the_mismatch(tmp_path: Path) -> None:
    torch.save(official_sapiens_state_dict(), tmp_path / "w.pth")
    with pytest.raises(WeightsMismatchError, match=r"shape mismatch .*blocks\.0\.attn\.proj\.weight"):
        SapiensViT(SapiensViTConfig(variant="0.3b", image_size=(64, 48), weights=str(tmp_path / "w.pth")))


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_dinov2_local_weights_round_trip(tmp_path: Path, suffix: str) -> None:
    config = DinoV2ViTConfig(variant="tiny", image_size=(28, 28))
    torch.manual_seed(0)
    source = DinoV2ViT(config)
    state = {k: v.clone().contiguous() for k, v in source.vit.state_dict().items()}
    path = tmp_path / f"dinov2_tiny{suffix}"
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    torch.manual_seed(1)
    loaded = DinoV2ViT(config.model_copy(update={"weights": str(path)}))
    for key, value in loaded.vit.state_dict().items():
        assert torch.equal(value, state[key]), key
    images = torch.rand(1, 2, 3, 28, 28)
    torch.testing.assert_close(loaded.eval()(images).tokens, source.eval()(images).tokens)


def test_dinov2_official_checkpoint_layout_loads(tmp_path: Path) -> None:
    """facebookresearch/dinov2 files carry a ``mask_token`` and a 37x37 position grid; timm's filter
    adapts them."""
    official = timm.create_model(
        "vit_small_patch14_dinov2", pretrained=False, embed_dim=32, depth=2, num_heads=2
    )
    state = dict(official.state_dict()) | {"mask_token": torch.zeros(1, 32)}
    torch.save(state, tmp_path / "dinov2_vits14_pretrain.pth")
    encoder = DinoV2ViT(
        DinoV2ViTConfig(
            variant="tiny", image_size=(28, 28), weights=str(tmp_path / "dinov2_vits14_pretrain.pth")
        )
    )
    assert torch.equal(encoder.vit.blocks[1].attn.qkv.weight, state["blocks.1.attn.qkv.weight"])
    assert encoder.vit.pos_embed.shape == (1, 1 + 4, 32)


@pytest.mark.parametrize(
    ("cls", "config"),
    [
        (SapiensViT, SapiensViTConfig(variant="tiny")),
        (DinoV2ViT, DinoV2ViTConfig(variant="tiny", image_size=(28, 28))),
    ],
)
def test_missing_weights_file_is_a_clear_error(tmp_path: Path, cls, config) -> None:
    missing = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(WeightsNotFoundError) as info:
        cls(config.model_copy(update={"weights": str(missing)}))
    text = str(info.value)
    assert str(missing) in text and "never downloads" in text
    assert "download" in text.split("never downloads")[1]  # says where to get the file
