"""`BudgetTrainer`: `transformers.Trainer` trained to a wall-clock budget with time-keyed LR schedules.

Only small hooks are overridden (`create_scheduler`, `log`, `train`'s checkpoint resolution); the training
loop is transformers' own, and the budget itself lives in `WallClockBudgetCallback`.
"""

from __future__ import annotations

import logging

from torch.optim.lr_scheduler import LambdaLR
from transformers import Seq2SeqTrainer, Trainer
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import TrainOutput

from ..budget import clock as clock_module
from ..budget.callback import WallClockBudgetCallback
from ..budget.duration import format_duration
from ..budget.evaluation import BoundedEvalLoader, time_evaluation_batches
from ..budget.progress import BudgetProgressCallback
from ..budget.schedules import time_lr_lambda
from ..compression.base import CompressionCallback
from .checkpoints import find_resumable_checkpoint, read_trainer_state

logger = logging.getLogger(__name__)


class BudgetTrainerMixin:
    """The budget behaviour shared by `BudgetTrainer` and `BudgetSeq2SeqTrainer`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.budget_callback = self._attach_budget_callback()

    def _attach_budget_callback(self) -> WallClockBudgetCallback | None:
        existing = [cb for cb in self.callback_handler.callbacks if isinstance(cb, WallClockBudgetCallback)]
        budget = getattr(self.args, "time_budget", None)
        if len(existing) > 1 or (existing and budget is not None):
            raise ValueError(
                "Give the budget once: either args.time_budget or one WallClockBudgetCallback in callbacks, not both"
            )
        if budget is not None:
            callback = WallClockBudgetCallback(
                budget,
                count_evaluation=self.args.time_count_evaluation,
                deadline=self.args.time_deadline,
                eval_every=self.args.eval_every,
                save_every=self.args.save_every,
                log_every=self.args.log_every,
            )
            self.add_callback(callback)
        elif existing:
            callback = existing[0]
        else:
            return None
        if "eval_every" in callback.intervals and self.eval_dataset is None:
            raise ValueError("eval_every needs an eval_dataset; pass eval_dataset=... to the trainer")
        self._link_compression_callbacks(callback)
        callback.use_evaluation_probe(self._time_evaluation)
        if any(isinstance(cb, ProgressCallback) for cb in self.callback_handler.callbacks):
            self.remove_callback(ProgressCallback)
            self.add_callback(BudgetProgressCallback(callback))
        return callback

    def _link_compression_callbacks(self, budget_callback) -> None:
        """Compression schedules follow the budget's progress (time), not the unbounded step count."""
        for cb in self.callback_handler.callbacks:
            if isinstance(cb, CompressionCallback) and cb.budget is None:
                cb.budget = budget_callback

    def _time_evaluation(self) -> tuple[float, int] | None:
        """Seconds per evaluation batch, timed on a few batches, and the batches in one evaluation."""
        if self.eval_dataset is None:
            return None
        names = list(self.eval_dataset) if isinstance(self.eval_dataset, dict) else [None]
        loaders = [super(BudgetTrainerMixin, self).get_eval_dataloader(name) for name in names]
        model, loss_only = self.model, self.compute_metrics is None
        was_training = model.training
        model.eval()
        try:
            return time_evaluation_batches(loaders, lambda inputs: self.prediction_step(model, inputs, loss_only))
        finally:
            model.train(was_training)

    def get_eval_dataloader(self, eval_dataset=None):
        """During training under a budget: the loader ends an evaluation between batches when time is up."""
        loader = super().get_eval_dataloader(eval_dataset)
        if self.budget_callback is not None and self.is_in_train:
            return BoundedEvalLoader(loader, self.budget_callback)
        return loader

    def add_callback(self, callback):
        super().add_callback(callback)
        if getattr(self, "budget_callback", None) is not None:
            self._link_compression_callbacks(self.budget_callback)

    @property
    def time_lr_schedule(self) -> str | None:
        if self.budget_callback is None:
            return None
        return getattr(self.args, "time_lr_schedule", "linear")

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """Under a budget: LR = base LR x f(p), p the budget progress shared by all ranks."""
        if self.time_lr_schedule is None:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            multiplier = time_lr_lambda(self.time_lr_schedule, getattr(self.args, "time_warmup_ratio", 0.0))
            budget = self.budget_callback
            # A closure, not a callable object: LambdaLR then keeps it out of the checkpointed state dict.
            # Progress is that of the binding limit (time, or max_steps when it comes first), on every rank.
            self.lr_scheduler = LambdaLR(optimizer or self.optimizer, lambda _step: multiplier(budget.progress))
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.budget_callback is not None and self.is_in_train:
            logs = {**logs, **self.budget_callback.log_fields()}
        super().log(logs, start_time)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs) -> TrainOutput:
        """`Trainer.train`, resuming only from checkpoints written to the end (`resume_from_checkpoint=True`
        picks the newest complete one) and returning at once when the checkpoint's budget is spent."""
        entered_at = clock_module.monotonic()
        if resume_from_checkpoint is True:
            resume_from_checkpoint = find_resumable_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"No complete checkpoint to resume from in output_dir={self.args.output_dir!r}")
        if resume_from_checkpoint and self.budget_callback is not None:
            state = read_trainer_state(resume_from_checkpoint)
            elapsed = WallClockBudgetCallback.elapsed_in_state(state) if state else None
            if elapsed is not None and elapsed >= self.budget_callback.budget_s:
                logger.warning(
                    "The budget of %s was already spent (%s elapsed) at %s; loading it without training.",
                    format_duration(self.budget_callback.budget_s),
                    format_duration(elapsed),
                    resume_from_checkpoint,
                )
                self._load_from_checkpoint(resume_from_checkpoint)
                self.budget_callback.start_spent(elapsed)
                return TrainOutput(state["global_step"], float("nan"), {"train_runtime": 0.0, "elapsed_s": elapsed})
        if self.budget_callback is not None:
            self.budget_callback.count_setup_from(entered_at)
        if isinstance(resume_from_checkpoint, str):  # callbacks read their own state from it (movement scores)
            self.args.resume_from_checkpoint = resume_from_checkpoint
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)


class BudgetTrainer(BudgetTrainerMixin, Trainer):
    """`transformers.Trainer` with a wall-clock budget (`args = BudgetTrainingArguments(time_budget="2h")`).

    - stops at the first optimizer step after the budget, on every rank at once;
    - LR follows `args.time_lr_schedule` over budget progress (linear, cosine, constant, triangle);
    - evaluates / saves / logs every `args.eval_every` / `save_every` / `log_every` of wall-clock time;
    - resumes with the budget left at the checkpoint; SIGTERM saves a checkpoint and stops cleanly.

    Without a time budget it behaves exactly like `Trainer`.
    """


class BudgetSeq2SeqTrainer(BudgetTrainerMixin, Seq2SeqTrainer):
    """`Seq2SeqTrainer` (generation in evaluation, T5/mT5) with the budget behaviour of `BudgetTrainer`."""
