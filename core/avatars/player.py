"""The part of :class:`~lca.model.avatar.AvatarModel` that animates a finished avatar.

Animation needs the template (skinning), the drivers, the decoder's correction branch and the rasterizer,
never the encoder nor the backbone. :class:`AvatarPlayer` is an ``AvatarModel`` built with only those
parts, so its :meth:`drive` is the model's own (same code path as training and evaluation) while a
paper-scale encoder is never allocated. ``create_avatar`` and ``forward`` are refused.
"""

from __future__ import annotations

from typing import Any, NoReturn

import torch
from torch import Tensor

from lca.avatars.file import SKINNING_KEYS, WEIGHT_PARTS, AvatarFile, AvatarFileError
from lca.config import PipelineConfig
from lca.model.avatar import AvatarModel
from lca.registry import Registry


class AvatarPlayer(AvatarModel):
    """Template, drivers, decoder and rasterizer of a pipeline; animates avatars through ``drive``."""

    def __init__(self, config: PipelineConfig, registry: Registry | None = None) -> None:
        super().__init__(config, registry, feed_forward=False)

    def create_avatar(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("AvatarPlayer has no encoder: create avatars with AvatarModel (lca avatar create)")

    def forward(self, batch: Any) -> NoReturn:
        raise TypeError("AvatarPlayer only animates avatars (drive); train and evaluate with AvatarModel")

    def load_parts(self, weights: dict[str, Tensor]) -> None:
        """Load ``drivers.*`` and ``decoder.*`` weights (strict: every key present, none extra)."""
        for part in WEIGHT_PARTS:
            prefix = f"{part}."
            state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
            try:
                getattr(self, part).load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise AvatarFileError(
                    f"The avatar's {part} weights do not fit pipeline '{self.config.name}': {error}"
                ) from error

    def check_skinning(self, skinning: dict[str, Tensor]) -> None:
        """Refuse a rebuilt template whose anchors differ from the ones the avatar was made on."""
        for key in SKINNING_KEYS:
            ours, theirs = getattr(self.template, key).cpu(), skinning[key]
            same = ours.shape == theirs.shape and (
                torch.equal(ours, theirs)
                if not ours.is_floating_point()
                else torch.allclose(ours.to(theirs.dtype), theirs, atol=1e-5)
            )
            if not same:
                slot = self.config.slots["template"]
                raise AvatarFileError(
                    f"The '{slot.type}' template rebuilt from the avatar's config has other anchors than the "
                    f"avatar ({key} differs: {tuple(ours.shape)} vs stored {tuple(theirs.shape)}). Was it "
                    "made with other template files or settings?"
                )


def load_player(avatar: AvatarFile, device: torch.device | str = "cpu") -> AvatarPlayer:
    """An :class:`AvatarPlayer` with ``avatar``'s driver and decoder weights, its skinning checked."""
    player = AvatarPlayer(avatar.config())
    player.load_parts(avatar.weights)
    player.check_skinning(avatar.skinning)
    return player.to(device).eval()
