"""Moved to `tlc_hf.compression.distillation` (the method's folder); these names stay importable from here."""

from ..compression.distillation.config import DistillationConfig
from ..compression.distillation.hidden import _layer_map_for
from ..compression.distillation.trainer import (
    DistillationSeq2SeqTrainer,
    DistillationTrainer,
    DistillationTrainerMixin,
    default_layer_map,
    kd_loss,
)

__all__ = [
    "DistillationConfig",
    "DistillationSeq2SeqTrainer",
    "DistillationTrainer",
    "DistillationTrainerMixin",
    "_layer_map_for",
    "default_layer_map",
    "kd_loss",
]
