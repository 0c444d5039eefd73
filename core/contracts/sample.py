"""The structure the trainer consumes: one :class:`Sample` per dataset index, a :class:`Batch` from
:func:`collate`, which pads the variable numbers of reference views (V) and target views (M) and marks
real views in boolean ``valid`` masks.

Shapes (unbatched; a Batch adds a leading B and pads V and M to the largest in the batch):

- ``Views.images [V,3,H,W]`` float in [0,1]; ``masks [V,1,H,W]`` float in [0,1]; ``viewmats [V,4,4]``
  world-to-camera (OpenCV, metres); ``Ks [V,3,3]`` pixels of the resized image; ``params`` SMPL-X
  parameters of each view's frame, each ``[V,d]``; ``frame``/``camera [V]`` long indices into the
  store group; ``is_face [V]`` bool for face close-up crops; ``valid [V]`` bool (False for padding
  and for face views of frames without a visible face).
- ``Driving.face [M,3,h,w]`` face crop of each target frame for an expression encoder,
  ``face_valid [M]``; ``blendshapes [M,52]`` and ``gaze [M,2,3]`` when the store has them, else None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

import torch

from lca.finite import is_finite


@dataclass
class Views:
    """A set of views (references or targets), all of one size."""

    images: torch.Tensor
    masks: torch.Tensor
    viewmats: torch.Tensor
    Ks: torch.Tensor
    params: dict[str, torch.Tensor]
    frame: torch.Tensor
    camera: torch.Tensor
    is_face: torch.Tensor
    valid: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[-4])


@dataclass
class Driving:
    """Driving signals aligned with the target views."""

    face: torch.Tensor
    face_valid: torch.Tensor
    blendshapes: torch.Tensor | None = None
    gaze: torch.Tensor | None = None


@dataclass
class Sample:
    """One training example: a person's reference views, target views to render, and driving signals.

    ``skipped`` lists the errors of dataset indices that were skipped (``on_error: skip``) to produce
    this sample; it travels with the sample so DataLoader workers and accelerate processes report them.
    """

    references: Views
    targets: Views
    driving: Driving
    identity: str
    group: str
    index: int
    skipped: list[str] = field(default_factory=list)

    def non_finite(self) -> list[str]:
        """Names of the floating-point fields holding a NaN or an infinity (``targets.images``,
        ``references.params.body_pose``, ...): data that would poison a whole batch's step."""
        found = []
        for part in ("references", "targets", "driving"):
            for name, value in vars(getattr(self, part)).items():
                values = value.items() if isinstance(value, dict) else [("", value)]
                for key, tensor in values:
                    if isinstance(tensor, torch.Tensor) and not is_finite(tensor):
                        found.append(".".join(p for p in (part, name, key) if p))
        return found


@dataclass
class Batch:
    """Samples collated along a leading batch axis B; V and M padded, see ``valid``."""

    references: Views
    targets: Views
    driving: Driving
    identity: list[str]
    group: list[str]
    index: torch.Tensor
    skipped: list[str]

    def to(self, device: torch.device | str) -> Batch:
        """A copy with every tensor on ``device``."""
        return _map_tensors(self, lambda t: t.to(device))


def _map_tensors(obj: object, fn: Callable[[torch.Tensor], torch.Tensor]) -> object:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, Views | Driving | Batch):
        return replace(obj, **{f.name: _map_tensors(getattr(obj, f.name), fn) for f in fields(obj)})
    return obj


def _pad_stack(tensors: Sequence[torch.Tensor], fill: torch.Tensor | float | bool = 0) -> torch.Tensor:
    """Stack ``[n_i, ...]`` tensors into ``[B, max n, ...]``; padding rows take ``fill``."""
    longest = max(t.shape[0] for t in tensors)
    first = tensors[0]
    out = torch.empty((len(tensors), longest, *first.shape[1:]), dtype=first.dtype)
    out[:] = fill
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    return out


def _collate_views(views: Sequence[Views]) -> Views:
    keys = views[0].params.keys()
    for v in views[1:]:
        if v.params.keys() != keys:
            raise ValueError(f"cannot collate views with SMPL-X keys {sorted(keys)} and {sorted(v.params)}")
    return Views(
        images=_pad_stack([v.images for v in views]),
        masks=_pad_stack([v.masks for v in views]),
        viewmats=_pad_stack([v.viewmats for v in views], torch.eye(4)),  # identity keeps padding invertible
        Ks=_pad_stack([v.Ks for v in views], torch.eye(3)),
        params={k: _pad_stack([v.params[k] for v in views]) for k in keys},
        frame=_pad_stack([v.frame for v in views], -1),
        camera=_pad_stack([v.camera for v in views], -1),
        is_face=_pad_stack([v.is_face for v in views], False),
        valid=_pad_stack([v.valid for v in views], False),
    )


def _collate_optional(values: Sequence[torch.Tensor | None], name: str) -> torch.Tensor | None:
    present = [v is not None for v in values]
    if not any(present):
        return None
    if not all(present):
        raise ValueError(f"cannot collate samples where only some have driving signal '{name}'")
    return _pad_stack(values)  # type: ignore[arg-type]


def collate(samples: Sequence[Sample]) -> Batch:
    """Collate samples into a :class:`Batch` (use as ``DataLoader(..., collate_fn=collate)``)."""
    if not samples:
        raise ValueError("collate needs at least one sample")
    driving = [s.driving for s in samples]
    return Batch(
        references=_collate_views([s.references for s in samples]),
        targets=_collate_views([s.targets for s in samples]),
        driving=Driving(
            face=_pad_stack([d.face for d in driving]),
            face_valid=_pad_stack([d.face_valid for d in driving], False),
            blendshapes=_collate_optional([d.blendshapes for d in driving], "blendshapes"),
            gaze=_collate_optional([d.gaze for d in driving], "gaze"),
        ),
        identity=[s.identity for s in samples],
        group=[s.group for s in samples],
        index=torch.tensor([s.index for s in samples], dtype=torch.long),
        skipped=[message for s in samples for message in s.skipped],
    )
