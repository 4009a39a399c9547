"""Wall-clock budgets: parse a budget, keep one clock for all ranks, stop, resume, key schedules to time."""

from .callback import WallClockBudgetCallback
from .clock import BudgetClock
from .deadline import DeadlinePolicy, DurationEstimates
from .duration import parse_duration
from .intervals import TimedIntervals, parse_intervals
from .log import BUDGET_LOG_NAME, BudgetLog
from .preemption import StopSignals
from .schedules import TIME_LR_SCHEDULES, UNBOUNDED_MAX_STEPS, time_lr_lambda

__all__ = [
    "BUDGET_LOG_NAME",
    "TIME_LR_SCHEDULES",
    "UNBOUNDED_MAX_STEPS",
    "BudgetClock",
    "BudgetLog",
    "DeadlinePolicy",
    "DurationEstimates",
    "StopSignals",
    "TimedIntervals",
    "WallClockBudgetCallback",
    "parse_duration",
    "parse_intervals",
    "time_lr_lambda",
]
