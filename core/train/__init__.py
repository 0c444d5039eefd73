"""Training: optimizer and schedule, checkpoints, the shared stage loop and its callbacks, and the
accelerate trainer that runs a pipeline's schedule."""

from lca.train.trainer import TrainingError, TrainingInterrupted, end_process, train

__all__ = ["TrainingError", "TrainingInterrupted", "end_process", "train"]
