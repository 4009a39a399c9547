"""A progress bar over the wall-clock budget instead of over steps."""

from __future__ import annotations

from transformers.trainer_callback import ProgressCallback
from transformers.utils import logging as hf_logging

from .duration import format_duration

tqdm = hf_logging.tqdm


class BudgetProgressCallback(ProgressCallback):
    """`ProgressCallback` whose training bar counts budget seconds and shows steps and time left."""

    def __init__(self, budget_callback, max_str_len: int = 100):
        super().__init__(max_str_len=max_str_len)
        self.budget = budget_callback

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar = tqdm(
                total=round(self.budget.budget_s), unit="s", dynamic_ncols=True, desc="budget", initial=0
            )
        self.current_step = state.global_step
        self._shown = 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            shown = min(round(self.budget.elapsed_s), round(self.budget.budget_s))
            self.training_bar.update(shown - self._shown)
            self._shown = shown
            left = format_duration(self.budget.budget_s - self.budget.elapsed_s)
            self.training_bar.set_postfix_str(f"step {state.global_step}, {left} left", refresh=False)
        self.current_step = state.global_step
