"""Registered names that core falls back on when the user names none.

Core never names a plugin's component in its code (the catalogue is the plugins' business); the few
defaults a command needs are named here, in one place, where a distribution can see and change them.
"""

DEFAULT_PIPELINE = "lca-tiny"
"""The pipeline ``lca train`` trains when given none (CPU-sized, synthetic data)."""

DEFAULT_IMPORTER = "transforms-json"
"""The importer ``lca data import`` uses without ``--format``."""

REGULARIZER_LOSS = "regularizer"
"""The loss component that weighs one ``ModelOutput.regularization`` key by name (its ``key`` param): the
objective's error about a key that no term weighs tells the user to add one of these."""

DEFAULT_LOSS_TERMS = {
    "l1": {"type": "l1", "weight": 1.0},
    "mask": {"type": "mask", "weight": 1.0},
    "acap": {"type": "acap", "weight": 1.0, "threshold": 0.02},
    "asap": {"type": "asap", "weight": 0.1, "threshold": 3.0},
    "kl": {"type": REGULARIZER_LOSS, "key": "kl", "weight": 1e-3},
}
"""The objective (``loss.terms``) of a pipeline that names no terms: the LCA method's (docs/architecture.md,
step 7). The mask weight is LHM's 1.0: at 0.1 the tiny model kept a halo of alpha 0.06-0.1 around the
person, which cost more held-out PSNR than anything it learned."""
