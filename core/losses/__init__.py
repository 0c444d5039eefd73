"""Training losses: pure functions on tensors (:mod:`~lca.losses.terms`) and the objective that weighs
them from a :class:`lca.contracts.model.ModelOutput` and the loss config (:mod:`~lca.losses.objective`)."""

from lca.losses.objective import LossTerms, Objective
from lca.losses.terms import (
    acap_loss,
    asap_loss,
    linear_ramp,
    lpips_loss,
    mask_loss,
    masked_l1,
    part_weight_vector,
)

__all__ = [
    "LossTerms",
    "Objective",
    "acap_loss",
    "asap_loss",
    "linear_ramp",
    "lpips_loss",
    "mask_loss",
    "masked_l1",
    "part_weight_vector",
]
