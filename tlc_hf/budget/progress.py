"""A progress bar over the wall-clock budget instead of over steps."""

from __future__ import annotations

from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import has_length

from ..logs import is_terminal, progress_bar
from .duration import format_duration


class BudgetProgressCallback(ProgressCallback):
    """`ProgressCallback` whose training bar counts budget seconds and shows steps and time left."""

    def __init__(self, budget_callback, max_str_len: int = 100):
        super().__init__(max_str_len=max_str_len)
        self.budget_callback = budget_callback

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar = progress_bar(
                total=round(self.budget_callback.budget_s), unit="s", dynamic_ncols=True, desc="budget", initial=0
            )
        self.current_step = state.global_step
        self._shown = 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Log records as lines; in a file they are printed without redrawing the bar (tqdm.write would)."""
        if self.training_bar is None or is_terminal():
            return super().on_log(args, state, control, logs=logs, **kwargs)
        bar, self.training_bar = self.training_bar, _PlainLines
        try:
            return super().on_log(args, state, control, logs=logs, **kwargs)
        finally:
            self.training_bar = bar

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        """The evaluation bar, under the same rule (not shown in a file when a training bar runs)."""
        if state.is_world_process_zero and has_length(eval_dataloader):
            if self.prediction_bar is None:
                nested = self.training_bar is not None
                self.prediction_bar = progress_bar(
                    total=len(eval_dataloader), leave=not nested, dynamic_ncols=True, nested=nested
                )
            self.prediction_bar.update(1)

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            shown = min(round(self.budget_callback.elapsed_s), round(self.budget_callback.budget_s))
            self.training_bar.update(shown - self._shown)
            self._shown = shown
            left = format_duration(self.budget_callback.budget_s - self.budget_callback.elapsed_s)
            self.training_bar.set_postfix_str(f"step {state.global_step}, {left} left", refresh=False)
        self.current_step = state.global_step


class _PlainLines:
    """Stands in for the bar's `write` in a file: a plain line, no bar redraw."""

    @staticmethod
    def write(text: str) -> None:
        print(text, flush=True)
