"""The avatar file: one person's feed-forward result, self-contained for animation (safetensors).

Tensors (``N`` anchors, ``K`` Gaussians per anchor, ``C`` feature width, ``J`` joints, ``S`` betas):

- ``anchors [N, 3]``, ``features [N, C]``, ``betas [S]``;
- ``canonical.offsets [N, K, 3]``, ``canonical.quats [N, K, 4]`` (wxyz), ``canonical.scales [N, K, 3]``
  (metres), ``canonical.opacities [N, K]``, ``canonical.colors [N, K, 3]`` (the decoder's canonical branch);
- ``skinning.anchor_weights [N, J]``, ``skinning.anchor_part_labels [N]``, ``skinning.anchor_face_idx [N]``,
  ``skinning.anchor_bary [N, 3]``: where the anchors sit on the template and how they are skinned;
- ``weights.drivers.*`` and ``weights.decoder.*``: the drivers' and the decoder's weights, so that
  :func:`lca.avatars.player.load_player` animates the avatar without the checkpoint (self-contained).

Metadata (strings): ``format`` (``lca-avatar``), ``format_version``, ``config_yaml`` (the pipeline config
the avatar was made with), ``template`` (type) and ``template_config`` (JSON), ``source_checkpoint``,
``source`` (what the reference images were), ``lca_version``, ``created``.

The template itself is *referenced*, not embedded: the body model of ``smplx`` is licensed and must not
travel inside avatar files, and ``mannequin`` regenerates deterministically. The player rebuilds the template
from its config and refuses it when its anchors' skinning data differ from the stored ones (another model
file, another anchor sampling).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from lca.config import PipelineConfig
from lca.contracts.decoder import AnchorGaussians
from lca.errors import LcaError
from lca.finite import non_finite_names
from lca.gaussians import Gaussians
from lca.paths import not_a_file

FORMAT = "lca-avatar"
FORMAT_VERSION = 1
SKINNING_KEYS = ("anchor_weights", "anchor_part_labels", "anchor_face_idx", "anchor_bary")
WEIGHT_PARTS = ("drivers", "decoder")


class AvatarFileError(LcaError):
    """An avatar file that is missing, unreadable, or does not fit the template it references."""


def toolkit_version() -> str:
    try:
        return importlib.metadata.version("lca-toolkit")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class AvatarFile:
    """An unbatched avatar with everything :func:`save_avatar` writes (see the module doc)."""

    anchors: Tensor
    features: Tensor
    canonical: AnchorGaussians
    betas: Tensor
    skinning: dict[str, Tensor]
    weights: dict[str, Tensor]
    config_yaml: str
    source_checkpoint: str = ""
    source: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def num_gaussians(self) -> int:
        """``N * K``."""
        return int(self.canonical.opacities.numel())

    def config(self) -> PipelineConfig:
        """The pipeline config the avatar was made with (validated against the current registry)."""
        import tempfile

        from lca.config import resolve_pipeline

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "avatar-config.yaml"
            path.write_text(self.config_yaml, encoding="utf-8")
            return resolve_pipeline(path)

    def batched(self, device: torch.device | str = "cpu") -> Any:
        """The :class:`lca.model.avatar.Avatar` (batch of one) that :meth:`AvatarModel.drive` takes."""
        from lca.model.avatar import Avatar

        canonical = AnchorGaussians(
            **{f.name: getattr(self.canonical, f.name)[None].to(device) for f in fields(AnchorGaussians)}
        )
        return Avatar(
            self.anchors[None].to(device),
            self.features[None].to(device),
            canonical,
            self.betas[None].to(device),
        )

    def canonical_gaussians(self) -> Gaussians:
        """Unbatched canonical (Da-pose) Gaussians ``[N*K]``: anchor + offset and their attributes."""
        batched = self.batched()
        return batched.canonical.to_gaussians(batched.anchors).map(lambda t: t[0])


def from_model(model: Any, avatar: Any, *, source_checkpoint: str = "", source: str = "") -> AvatarFile:
    """An :class:`AvatarFile` from an :class:`lca.model.avatar.AvatarModel` and the first person of its
    :class:`~lca.model.avatar.Avatar` (the output of ``create_avatar``)."""
    template = model.template
    state = model.state_dict()
    weights = {
        f"{name}": value.detach().cpu().contiguous()
        for name, value in state.items()
        if name.split(".", 1)[0] in WEIGHT_PARTS
    }
    return AvatarFile(
        anchors=avatar.anchors[0].detach().cpu(),
        features=avatar.features[0].detach().cpu(),
        canonical=AnchorGaussians(
            **{f.name: getattr(avatar.canonical, f.name)[0].detach().cpu() for f in fields(AnchorGaussians)}
        ),
        betas=avatar.betas[0].detach().cpu(),
        skinning={key: getattr(template, key).detach().cpu() for key in SKINNING_KEYS},
        weights=weights,
        config_yaml=model.config.to_yaml(),
        source_checkpoint=source_checkpoint,
        source=source,
    )


def save_avatar(path: str | Path, avatar: AvatarFile) -> Path:
    """Write ``avatar`` to ``path`` (safetensors; see the module doc for the keys). Returns the path."""
    tensors = {
        "anchors": avatar.anchors,
        "features": avatar.features,
        "betas": avatar.betas,
        **{f"canonical.{f.name}": getattr(avatar.canonical, f.name) for f in fields(AnchorGaussians)},
        **{f"skinning.{k}": v for k, v in avatar.skinning.items()},
        **{f"weights.{k}": v for k, v in avatar.weights.items()},
    }
    bad = non_finite_names(tensors)
    if bad:
        raise AvatarFileError(
            f"Refusing to write avatar {path}: {', '.join(bad)} hold non-finite values (NaN or infinity); "
            "the model that made it is broken (check its checkpoint with `lca eval`)."
        )
    config = avatar.config()
    template = config.slots["template"]
    metadata = {
        **avatar.metadata,
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config_yaml": avatar.config_yaml,
        "pipeline": config.name,
        "template": template.type,
        "template_config": json.dumps(template.config.model_dump(mode="json")),
        "source_checkpoint": avatar.source_checkpoint,
        "source": avatar.source,
        "lca_version": toolkit_version(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(partial), metadata)
    partial.replace(path)
    return path


def load_avatar(path: str | Path) -> AvatarFile:
    """Read an avatar file written by :func:`save_avatar`; precise errors for anything else."""
    path = Path(path)
    reason = not_a_file(path)
    if reason:
        raise AvatarFileError(f"Avatar file {path} {reason} (create one with `lca avatar create`).")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError) as error:
        raise AvatarFileError(f"{path} is not a readable safetensors file: {error}") from error
    if metadata.get("format") != FORMAT:
        raise AvatarFileError(
            f"{path} is not an LCA avatar file (metadata 'format' is {metadata.get('format')!r}, "
            f"expected {FORMAT!r})."
        )
    if int(metadata.get("format_version", "0")) > FORMAT_VERSION:
        raise AvatarFileError(
            f"{path} has avatar format version {metadata['format_version']}; this toolkit reads up to "
            f"{FORMAT_VERSION}. Update the toolkit."
        )
    required = ["anchors", "features", "betas", *(f"canonical.{f.name}" for f in fields(AnchorGaussians))]
    required += [f"skinning.{k}" for k in SKINNING_KEYS]
    missing = [key for key in required if key not in tensors]
    if missing:
        raise AvatarFileError(f"{path} lacks the avatar tensors {missing}.")

    def group(prefix: str) -> dict[str, Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    own = {"format", "format_version", "config_yaml", "source_checkpoint", "source"}
    return AvatarFile(
        anchors=tensors["anchors"],
        features=tensors["features"],
        canonical=AnchorGaussians(**group("canonical.")),
        betas=tensors["betas"],
        skinning=group("skinning."),
        weights=group("weights."),
        config_yaml=metadata.get("config_yaml", ""),
        source_checkpoint=metadata.get("source_checkpoint", ""),
        source=metadata.get("source", ""),
        metadata={k: v for k, v in metadata.items() if k not in own},
    )
