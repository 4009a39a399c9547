from __future__ import annotations

import logging

from ...logs import add_log_fields
from ..base import CompressionCallback, ramp_value, record_compression
from ..masks import (
    apply_masks_,
    measured_record,
    restore_masks_from_zeros_,
    sparsity_report,
    target_sparsity,
    zero_optimizer_state_,
)
from ..targets import find_targets
from .config import MagnitudePruningConfig
from .prune import magnitude_step_

logger = logging.getLogger(__name__)


class MagnitudePruningCallback(CompressionCallback):
    """Gradual magnitude pruning for a stock `Trainer` or `BudgetTrainer`.

    Every `update_every` steps the sparsity is set to the scheduled value at progress p; after every
    optimizer step the masks are re-applied, so pruned weights stay exactly zero whatever the optimizer's
    momentum says. Logs `sparsity`. At the end of training the final sparsity is applied if p reached
    `end`, and the config is recorded in the model's config with the sparsity the weights really have
    (with `load_best_model_at_end`, the restored checkpoint's). Resumed in a new process, the masks are
    rebuilt from the zeros in the weights and the schedule goes on as if it had not stopped.
    """

    def __init__(self, config: MagnitudePruningConfig | None = None, budget=None, **config_kwargs):
        super().__init__(budget)
        self.config = config or MagnitudePruningConfig(**config_kwargs)
        self.targets = {}
        self.current_sparsity = 0.0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.check_engine(model, args)
        self._find(model)
        if state.global_step > 0:  # resumed in a new process: the zeros in the weights are the masks
            restore_masks_from_zeros_(self.targets)
            self.current_sparsity = target_sparsity(self.targets)
        # a fresh run starts at `initial_sparsity`; a resumed one waits for its next update step, as the
        # uninterrupted run does (a checkpoint between two updates must not prune early)
        self._update(state, kwargs.get("optimizer"), force=state.global_step == 0)

    def _find(self, model) -> None:
        """Targets through the model the Trainer passes (after wrapping); found again if that model changes."""
        if model is None or model is getattr(self, "_model", None):
            return
        self._model = model
        self.targets = find_targets(
            model, self.config.target_modules, self.config.include_embeddings, self.config.include_head
        )
        if self.current_sparsity > 0:  # other modules now: their zeros are the masks
            restore_masks_from_zeros_(self.targets)

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        self._find(model)
        apply_masks_(self.targets)

    def on_step_end(self, args, state, control, optimizer=None, model=None, **kwargs):
        self._find(model)
        self._update(state, optimizer, force=state.global_step % self.config.update_every == 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.targets:
            add_log_fields(state, logs, {"sparsity": round(self.current_sparsity, 6)})

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._update(state, kwargs.get("optimizer"), force=True)
        report = sparsity_report(model, self.targets)
        logger.info("Magnitude pruning ended at %.2f%% target sparsity", 100 * report["target_sparsity"])
        if self.current_sparsity > 0:
            record_compression(model, measured_record(self.config, self.targets))

    def _update(self, state, optimizer, force: bool) -> None:
        p = self.progress(state)
        c = self.config
        target = ramp_value(p, c.initial_sparsity, c.sparsity, c.start, c.end, c.ramp)
        reached_end = p >= c.end and self.current_sparsity < c.sparsity
        if (force or reached_end) and target > self.current_sparsity:
            magnitude_step_(self.targets, target, c.scope)
            zero_optimizer_state_(optimizer, self.targets)
            self.current_sparsity = target
