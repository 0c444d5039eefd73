"""Training: the model protocol, optimizer and schedule, checkpoints and the accelerate trainer.

``from lca.train import train`` is resolved lazily, so importing :mod:`lca.train.protocol` (as the losses
do) stays light and free of import cycles.
"""

from typing import Any

__all__ = ["TrainingError", "TrainingInterrupted", "end_process", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lca.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'lca.train' has no attribute {name!r}")
