"""`TrainingArguments` with a wall-clock budget: any HF script gains `--time_budget 2h`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from transformers import Seq2SeqTrainingArguments, TrainingArguments

from ..budget.duration import parse_duration
from ..budget.intervals import parse_intervals

# Under a time budget the step limit must not win first: max_steps is raised to this.
from ..budget.schedules import (
    TIME_LR_SCHEDULES,
    UNBOUNDED_MAX_STEPS,  # noqa: F401  (re-exported)
    time_lr_lambda,
)

POSITIVE_SIZES = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")


def check_positive_sizes(values: dict) -> None:
    """Batch sizes and accumulation steps among `values` (TrainingArguments fields) are integers >= 1."""
    for name in POSITIVE_SIZES:
        value = values.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            what = "number of steps" if name.startswith("gradient") else "batch size"
            raise ValueError(
                f"{name}={value!r}: give a positive {what} (an integer >= 1; --{name} on the command line)"
            )


@dataclass
class BudgetArgumentsMixin:
    """The budget fields shared by `BudgetTrainingArguments` and `BudgetSeq2SeqTrainingArguments`."""

    time_budget: str | None = field(
        default=None,
        metadata={
            "help": 'Wall-clock budget for train(): seconds or "90s", "45m", "2h30m", "1d". train() returns within '
            "it, final evaluation and save included (see time_deadline). Epochs are then ignored (the data "
            "repeats); with max_steps as well, training ends at whichever limit comes first."
        },
    )
    time_lr_schedule: str = field(
        default="linear",
        metadata={
            "help": f"LR schedule keyed to budget progress p = elapsed / budget, one of {TIME_LR_SCHEDULES}. "
            "Replaces lr_scheduler_type when time_budget is set."
        },
    )
    time_warmup_ratio: float = field(
        default=0.0, metadata={"help": "Warmup as a fraction of the budget (for 'triangle': where the peak is)."}
    )
    time_deadline: bool = field(
        default=True,
        metadata={
            "help": "Stop early enough that the last step, evaluation and save end within the budget (from "
            "durations measured in this run). False: stop at the first optimizer step after the budget."
        },
    )
    time_count_evaluation: bool = field(
        default=True,
        metadata={"help": "Charge evaluation time to the budget (default). False pauses the clock while evaluating."},
    )
    eval_every: str | None = field(default=None, metadata={"help": 'Also evaluate every this much time, e.g. "10m".'})
    save_every: str | None = field(
        default=None, metadata={"help": 'Also save a checkpoint every this much time, e.g. "30m".'}
    )
    log_every: str | None = field(default=None, metadata={"help": 'Also log every this much time, e.g. "1m".'})

    def __post_init__(self):
        check_positive_sizes(vars(self))
        time_fields = {"eval_every": self.eval_every, "save_every": self.save_every, "log_every": self.log_every}
        if self.time_budget is None:
            given = [name for name, value in time_fields.items() if value is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} time_budget; set time_budget (e.g. '2h') or drop them"
                )
        else:
            budget_s = parse_duration(self.time_budget, "time_budget")
            parse_intervals(budget_s, f"time_budget={self.time_budget!r}", **time_fields)
            time_lr_lambda(self.time_lr_schedule, self.time_warmup_ratio)  # validates both
            overridden = [
                f"--{name} {getattr(self, name)}"
                for name, default in (("lr_scheduler_type", "linear"), ("warmup_steps", 0))
                if str(getattr(self, name)) not in (str(default), f"SchedulerType.{str(default).upper()}")
            ]
            if overridden:
                warnings.warn(
                    f"{', '.join(overridden)} {'is' if len(overridden) == 1 else 'are'} replaced by the time "
                    f"schedule under time_budget={self.time_budget!r}: use --time_lr_schedule "
                    f"({', '.join(TIME_LR_SCHEDULES)}) and --time_warmup_ratio instead",
                    stacklevel=3,
                )
            if self.max_steps <= 0:
                self.max_steps = UNBOUNDED_MAX_STEPS  # the budget decides; else whichever limit comes first
        super().__post_init__()

    @property
    def time_budget_s(self) -> float | None:
        return None if self.time_budget is None else parse_duration(self.time_budget, "time_budget")


@dataclass
class BudgetTrainingArguments(BudgetArgumentsMixin, TrainingArguments):
    """`TrainingArguments` plus `time_budget`, `time_lr_schedule`, `time_warmup_ratio`, `time_count_evaluation`,
    `eval_every`, `save_every` and `log_every`. Works with `HfArgumentParser`."""


@dataclass
class BudgetSeq2SeqTrainingArguments(BudgetArgumentsMixin, Seq2SeqTrainingArguments):
    """`Seq2SeqTrainingArguments` with the budget fields of `BudgetTrainingArguments`."""
