"""Trainer subclasses and their arguments: budgeted training (and, in later modules, distillation)."""

from .arguments import BudgetSeq2SeqTrainingArguments, BudgetTrainingArguments
from .checkpoints import find_resumable_checkpoint
from .trainer import BudgetSeq2SeqTrainer, BudgetTrainer

__all__ = [
    "BudgetSeq2SeqTrainer",
    "BudgetSeq2SeqTrainingArguments",
    "BudgetTrainer",
    "BudgetTrainingArguments",
    "find_resumable_checkpoint",
]
