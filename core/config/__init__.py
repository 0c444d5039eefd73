"""Typed, validated configs: core sections, component slots, overrides and pipeline resolution."""

from lca.config.defaults import DEFAULT_IMPORTER, DEFAULT_PIPELINE
from lca.config.overrides import SECTIONS, SLOT_GROUPS, SLOTS, Override, apply_overrides
from lca.config.pipeline import PipelineConfig, SlotConfig, resolve_pipeline, resolve_raw
from lca.config.sections import LossOptions, ModelOptions, RunOptions, StageConfig

__all__ = [
    "DEFAULT_IMPORTER",
    "DEFAULT_PIPELINE",
    "SECTIONS",
    "SLOTS",
    "SLOT_GROUPS",
    "LossOptions",
    "ModelOptions",
    "Override",
    "PipelineConfig",
    "RunOptions",
    "SlotConfig",
    "StageConfig",
    "apply_overrides",
    "resolve_pipeline",
    "resolve_raw",
]
