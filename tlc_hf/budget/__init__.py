"""Wall-clock budgets: parse a budget, keep one clock for all ranks, stop, resume, key schedules to time."""

from .callback import BUDGET_LOG_NAME, WallClockBudgetCallback
from .clock import BudgetClock
from .duration import parse_duration
from .schedules import TIME_LR_SCHEDULES, time_lr_lambda

__all__ = [
    "BUDGET_LOG_NAME",
    "TIME_LR_SCHEDULES",
    "BudgetClock",
    "WallClockBudgetCallback",
    "parse_duration",
    "time_lr_lambda",
]
