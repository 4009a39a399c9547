from __future__ import annotations

import os

import torch

from ...logs import add_log_fields
from ..base import CompressionCallback, ramp_value, record_compression
from ..masks import (
    apply_masks_,
    checkpoint_path,
    get_mask,
    lowest_k_masks,
    measured_record,
    remove_mask,
    restore_masks_from_zeros_,
    resumed_checkpoint,
    set_mask,
    target_sparsity,
    zero_optimizer_state_,
)
from ..targets import find_targets
from .config import MovementPruningConfig

SCORES_NAME = "tlc_movement_scores.safetensors"


class MovementPruningCallback(CompressionCallback):
    """Movement pruning during fine-tuning, for a stock `Trainer` or `BudgetTrainer` (see
    `MovementPruningConfig`). Pruned weights stay exactly zero; logs `sparsity`.

    Checkpoints carry the scores (`tlc_movement_scores.safetensors`); a run resumed from one in a new
    process rebuilds the masks from the zeros in the weights and continues with the saved scores.
    """

    # A pruned weight's score stops moving (its gradient term w * dL/dw is zero), so soft thresholds
    # standardize over all scores of a module and the kept set only shrinks.

    def __init__(self, config: MovementPruningConfig | None = None, budget=None, **config_kwargs):
        super().__init__(budget)
        self.config = config or MovementPruningConfig(**config_kwargs)
        self.targets, self.scores = {}, {}
        self.current = 0.0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        c = self.config
        self.targets = find_targets(model, c.target_modules, c.include_embeddings, c.include_head)
        self.scores = {name: torch.zeros_like(m.weight, dtype=torch.float32) for name, m in self.targets.items()}
        checkpoint = resumed_checkpoint(args, state)
        if state.global_step > 0:
            restore_masks_from_zeros_(self.targets)
            self.current = target_sparsity(self.targets)
        if checkpoint is not None and os.path.exists(os.path.join(checkpoint, SCORES_NAME)):
            from safetensors.torch import load_file

            saved = load_file(os.path.join(checkpoint, SCORES_NAME))
            for name, score in saved.items():
                if name in self.scores and score.shape == self.scores[name].shape:
                    self.scores[name] = score.to(self.scores[name].device)

    def on_save(self, args, state, control, **kwargs):
        checkpoint = checkpoint_path(args, state)
        if self.scores and os.path.isdir(checkpoint) and state.is_world_process_zero:
            from safetensors.torch import save_file

            save_file(
                {n: s.detach().cpu().contiguous() for n, s in self.scores.items()},
                os.path.join(checkpoint, SCORES_NAME),
            )

    @torch.no_grad()
    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        for name, module in self.targets.items():
            if module.weight.grad is not None:
                self.scores[name].sub_(module.weight.grad.float() * module.weight.float())

    def on_optimizer_step(self, args, state, control, **kwargs):
        apply_masks_(self.targets)

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        if state.global_step % self.config.update_every == 0:
            self._update(self.progress(state), optimizer)

    def on_log(self, args, state, control, logs=None, **kwargs):
        add_log_fields(state, logs, {"sparsity": round(self.current, 6)})

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._update(self.progress(state), kwargs.get("optimizer"))
        apply_masks_(self.targets)
        for module in self.targets.values():
            remove_mask(module)  # baked: the zeros are in the weights
        self.scores = {}
        if self.current > 0:
            record_compression(model, measured_record(self.config, self.targets))

    def _update(self, p: float, optimizer) -> None:
        c = self.config
        scores = {}
        for name, module in self.targets.items():
            score = self.scores[name].clone()
            previous = get_mask(module)
            if previous is not None:
                score.masked_fill_(~previous, float("-inf"))  # pruned weights stay pruned
            scores[name] = score
        if c.variant == "hard":
            sparsity = ramp_value(p, 0.0, c.sparsity, c.start, c.end, c.ramp)
            if sparsity <= 0:
                return
            masks = lowest_k_masks({n: s.nan_to_num(neginf=-3.4e38) for n, s in scores.items()}, sparsity, "local")
        else:
            threshold = ramp_value(p, float("-inf"), c.threshold, c.start, c.end, c.ramp)
            if threshold == float("-inf"):
                return
            masks = {}
            for name, module in self.targets.items():
                keep = _standardized(self.scores[name]) > threshold  # over all weights: stable across updates
                previous = get_mask(module)
                masks[name] = keep if previous is None else keep & previous
        for name, mask in masks.items():
            set_mask(self.targets[name], mask)
        apply_masks_(self.targets)
        zero_optimizer_state_(optimizer, self.targets)
        self.current = target_sparsity(self.targets)


def _standardized(score: torch.Tensor) -> torch.Tensor:
    return (score - score.mean()) / (score.std() + 1e-12)
