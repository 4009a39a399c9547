"""Knowledge distillation: the student learns from a fine-tuned teacher while it trains (`DistillationTrainer`,
a `BudgetTrainer`, so pruning / QAT callbacks run in the same fine-tuning)."""

from __future__ import annotations

from ..base import CompressionMethod, register_method
from .config import AUGMENTATIONS, DistillationConfig
from .trainer import DistillationSeq2SeqTrainer, DistillationTrainer, DistillationTrainerMixin, kd_loss

__all__ = [
    "AUGMENTATIONS",
    "DistillationConfig",
    "DistillationSeq2SeqTrainer",
    "DistillationTrainer",
    "DistillationTrainerMixin",
    "kd_loss",
]


def _describe(record: dict) -> str:
    hidden = f", hidden-state MSE weight {record.get('hidden_weight')}" if record.get("hidden_weight") else ""
    return f"distilled from a teacher (alpha {record.get('alpha')}, temperature {record.get('temperature')}{hidden})"


def _trainer(config, context, seq2seq: bool):
    """The recipe's fine-tuning runs with the distillation trainer and the context's teacher."""
    trainer_class = DistillationSeq2SeqTrainer if seq2seq else DistillationTrainer
    return trainer_class, {"teacher_model": context.teacher_model(), "distillation": config}


# Recipes hold distillation under `distillation:`; it trains (the DistillationTrainer) and changes no weights.
register_method(
    CompressionMethod(
        config_class=DistillationConfig,
        trainer=_trainer,
        requires=lambda config: {"teacher"},
        describe=_describe,
        trains=lambda config: True,
        accepts=("float",),
    )
)
