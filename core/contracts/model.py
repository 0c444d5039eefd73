"""The one interface between the trainer and a model, and the structure a model's forward returns.

The trainer never looks at a component's type. It builds the model through a :data:`ModelFactory`,
calls ``model(batch)`` to get a :class:`ModelOutput`, hands that output to :class:`lca.losses.Objective`
(which reads only the fields documented here), asks ``model.layer_depths()`` for layer-wise lr decay,
and draws preview grids from the output's renders. Anything that honours this protocol trains: the
assembled :class:`AvatarModel`, a toy model in a test, a third-party architecture.

Shapes (``B`` batch, ``M`` target views, ``H x W`` the target image size, ``N`` anchors, ``K`` Gaussians
per anchor), matching the ``targets`` of :class:`lca.contracts.sample.Batch`:

- ``driven [B, M, 3, H, W]``: canonical + correction, skinned to each target pose, rendered at each
  target camera over a black background; ``driven_alpha [B, M, 1, H, W]`` its accumulated opacity.
- ``canonical [B, M, 3, H, W]`` / ``canonical_alpha``: the canonical branch alone (no correction),
  skinned and rendered the same way; ``None`` if the model has no canonical branch.
- ``offsets [B, N, K, 3]``: canonical offsets of each Gaussian from its anchor (metres), for ACAP;
  ``scales [B, N, K, 3]``: activated canonical scales (metres), for ASAP; ``part_labels [N]`` long,
  each anchor's body part, an index into :data:`lca.contracts.template.PART_NAMES`.
- ``regularization``: named scalar terms the model computed itself (a driver's ``{"kl": ...}``); each
  name must be weighed by a term of ``loss.terms`` (a ``regularizer`` term with that ``key``), or the
  objective refuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from lca.config import PipelineConfig
from lca.contracts.sample import Batch
from lca.registry import Registry


@dataclass
class ModelOutput:
    """What ``TrainableModel.forward`` returns (shapes in the module docstring)."""

    driven: Tensor
    driven_alpha: Tensor
    offsets: Tensor
    scales: Tensor
    part_labels: Tensor
    canonical: Tensor | None = None
    canonical_alpha: Tensor | None = None
    regularization: dict[str, Tensor] = field(default_factory=dict)


@runtime_checkable
class TrainableModel(Protocol):
    """What the trainer needs of a model. It is a ``torch.nn.Module`` (parameters, state_dict, train/eval)
    with two more promises: a forward from a batch to a :class:`ModelOutput`, and the depth of every
    parameter for layer-wise lr decay."""

    def __call__(self, batch: Batch) -> ModelOutput:
        """``forward(batch)``: a batch already on the model's device -> renders."""
        ...

    def layer_depths(self) -> tuple[dict[str, int], int]:
        """``({parameter name: depth}, top_depth)`` for every parameter of ``named_parameters()``.

        Depth grows from the input: e.g. encoder patch embedding 0, encoder block i at ``1 + i``,
        backbone block j after the encoder's, heads at ``top_depth``. A parameter at depth ``d`` trains
        at ``lr * layer_decay ** (top_depth - d)``, so early layers move least (LCA post-training)."""
        ...

    def named_parameters(self) -> Any: ...

    def state_dict(self) -> dict[str, Tensor]: ...


# Optional: a model may offer ``fsdp_units() -> list[nn.Module]``, the submodules that ``run.parallel=fsdp``
# shards as their own units (e.g. every attention block); without it the model is sharded as one unit.

ModelFactory = Callable[[PipelineConfig, Registry], nn.Module]
"""Builds the (untrained) model of a pipeline. It must return an ``nn.Module`` honouring
:class:`TrainableModel`, freshly initialised from the global torch seed."""
