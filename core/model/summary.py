"""Parameter counts per slot and FLOPs of the feed-forward pass, computed on the meta device, so a
paper-scale pipeline is summarised without allocating its weights (``lca model summary``).

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` (PyTorch's own counter, which
knows matrix products and ``scaled_dot_product_attention``) on meta tensors: shapes flow, no arithmetic
runs. "Attention" FLOPs are those of the attention kernels themselves (``QK^T`` and ``AV``): on the meta
device PyTorch runs ``scaled_dot_product_attention`` as its math decomposition, batched matrix products
(``bmm``), while linear layers are ``mm``/``addmm``; so attention = ``bmm`` + any fused attention op.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from lca.config import PipelineConfig
from lca.model.avatar import AvatarModel
from lca.registry import Registry


@dataclass(frozen=True)
class SlotSummary:
    """Parameters of one part of the model (a slot, a driver, or core glue such as token projections)."""

    name: str
    type: str
    parameters: int


@dataclass(frozen=True)
class ModelSummary:
    """What ``lca model summary`` prints."""

    pipeline: str
    slots: list[SlotSummary]
    views: int
    patches_per_view: int
    anchors: int
    encoder_flops: int
    attention_flops: int
    backbone_flops: int

    @property
    def parameters(self) -> int:
        return sum(slot.parameters for slot in self.slots)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _attention_flops(counter: FlopCounterMode) -> int:
    totals = counter.get_flop_counts().get("Global", {})
    return int(
        sum(flops for op, flops in totals.items() if "scaled_dot_product" in str(op) or "bmm" in str(op))
    )


def summarize(
    config: PipelineConfig,
    registry: Registry | None = None,
    *,
    views: int | None = None,
    image_size: int = 512,
) -> ModelSummary:
    """Summarise a pipeline per sample: ``views`` reference views (default: the ``num_references`` of the
    first stage's data slot plus the face close-up) of ``image_size`` pixels (encoders resize to their own
    working resolution, so this only matters for encoders that do not)."""
    model = AvatarModel(config, registry, device="meta")
    if views is None:
        first = config.data[config.schedule[0].data].config.num_references if config.schedule else 1
        views = first + 1
    slot_types = {name: slot.type for name, slot in config.slots.items()}
    slots = [
        SlotSummary("template", slot_types["template"], _count(model.template)),
        SlotSummary("encoder", slot_types["encoder"], _count(model.encoder)),
        SlotSummary("tokenizer", slot_types["tokenizer"], _count(model.tokenizer)),
        SlotSummary("image tokens", "core (projection to the model width)", _count(model.image_proj)),
        SlotSummary("backbone", f"{config.model.depth} x {slot_types['block']}", _count(model.backbone)),
        *(
            SlotSummary(f"drivers.{name}", config.drivers[name].type, _count(driver))
            for name, driver in model.drivers.items()
        ),
        SlotSummary("decoder", slot_types["decoder"], _count(model.decoder)),
        SlotSummary("rasterizer", slot_types["rasterizer"], _count(model.rasterizer)),
    ]
    anchors = model.template.num_anchors
    with torch.device("meta"), torch.no_grad():
        images = torch.empty(1, views, 3, image_size, image_size)
        with FlopCounterMode(display=False) as encoder_counter:
            tokens = model.image_proj(model.encoder(images).tokens)
        geometry = torch.empty(1, anchors, config.model.width)
        with FlopCounterMode(display=False) as backbone_counter:
            model.backbone(tokens, geometry, torch.ones(1, views, dtype=torch.bool))
    return ModelSummary(
        pipeline=config.name,
        slots=slots,
        views=views,
        patches_per_view=int(tokens.shape[2]),
        anchors=anchors,
        encoder_flops=encoder_counter.get_total_flops(),
        attention_flops=_attention_flops(backbone_counter),
        backbone_flops=backbone_counter.get_total_flops(),
    )
