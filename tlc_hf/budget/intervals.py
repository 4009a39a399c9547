"""Timed intervals: evaluate / save / log every so much wall-clock time, next to the step-based strategies."""

from __future__ import annotations

from transformers import TrainerControl, TrainingArguments

from .duration import format_duration, parse_duration

INTERVAL_NAMES = ("eval_every", "save_every", "log_every")
_FLAGS = {"eval_every": "should_evaluate", "save_every": "should_save", "log_every": "should_log"}


def parse_intervals(budget_s: float, budget_words: str = "the budget", **intervals) -> dict[str, float]:
    """Seconds of each interval given (`None` ones are left out); one longer than the budget is refused.

    Args:
        budget_s: the budget in seconds.
        budget_words: how the error names the budget, e.g. `"time_budget='1m'"`.
        intervals: `eval_every`, `save_every`, `log_every` as durations ("10m", 600) or `None`.

    Example:
        ```python
        parse_intervals(3600, eval_every="10m", save_every=None)  # {"eval_every": 600.0}
        ```
    """
    seconds = {}
    for name, value in intervals.items():
        if name not in INTERVAL_NAMES:
            raise TypeError(f"{name!r} is not a timed interval; allowed: {INTERVAL_NAMES}")
        if value is None:
            continue
        seconds[name] = parse_duration(value, name)
        if seconds[name] > budget_s:
            raise ValueError(
                f"{name}={value!r} is longer than {budget_words} ({format_duration(budget_s)}); it would never fire"
            )
    return seconds


class TimedIntervals:
    """Which timed evaluation / save / log is due at a step end (elapsed time agreed by every rank).

    Args:
        seconds: interval name -> seconds, as `parse_intervals` returns them.
    """

    def __init__(self, seconds: dict[str, float]):
        self.seconds = dict(seconds)
        self._next_due: dict[str, float] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.seconds

    def start(self, elapsed: float) -> None:
        """Each interval next fires at its first multiple after `elapsed` (a resumed run keeps the grid)."""
        self._next_due = {name: (elapsed // every + 1) * every for name, every in self.seconds.items()}

    def fire_due(self, elapsed: float, args: TrainingArguments, control: TrainerControl) -> None:
        """Set the control flags of every interval due at `elapsed`."""
        for name, due in self._next_due.items():
            if elapsed >= due:
                setattr(control, _FLAGS[name], True)
                if name == "eval_every" and args.load_best_model_at_end and args.save_strategy != "no":
                    control.should_save = True  # the best evaluation must have a checkpoint to load
                every = self.seconds[name]
                self._next_due[name] = (elapsed // every + 1) * every
