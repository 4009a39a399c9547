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
    resumed_file,
    set_mask,
    target_sparsity,
    zero_optimizer_state_,
)
from ..sharding import full, local, local_grad, shard_like, shard_of, standardized
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
        self._model = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        c = self.config
        self.check_engine(model, args)
        self.targets = find_targets(model, c.target_modules, c.include_embeddings, c.include_head)
        self._model = model
        # scores live like the weights: the shape of each local shard under FSDP2
        self.scores = {n: torch.zeros_like(local(m.weight), dtype=torch.float32) for n, m in self.targets.items()}
        if state.global_step > 0:
            restore_masks_from_zeros_(self.targets)
            self.current = target_sparsity(self.targets)
        path = resumed_file(args, state, SCORES_NAME, "movement scores", "the scores restart at zero")
        if path is not None:
            from safetensors.torch import load_file

            saved = load_file(path)
            for name, score in saved.items():
                if name in self.scores and score.shape == self.targets[name].weight.shape:
                    weight = self.targets[name].weight  # whole scores on disk; this rank keeps its shard
                    self.scores[name] = shard_of(score.to(self.scores[name].device), weight)

    def on_save(self, args, state, control, **kwargs):
        checkpoint = checkpoint_path(args, state)
        if not self.scores:
            return
        # whole scores (gathered from the shards on every rank: a collective), written by rank 0
        whole = {n: full(shard_like(s, self.targets[n].weight)) for n, s in self.scores.items()}
        if os.path.isdir(checkpoint) and state.is_world_process_zero:
            from safetensors.torch import save_file

            save_file(
                {n: s.detach().cpu().contiguous() for n, s in whole.items()}, os.path.join(checkpoint, SCORES_NAME)
            )

    def _find(self, model) -> None:
        """Targets through the model the Trainer passes; found again (scores kept by name) if it changes."""
        if model is None or model is self._model:
            return
        c = self.config
        self._model = model
        self.targets = find_targets(model, c.target_modules, c.include_embeddings, c.include_head)
        if self.current > 0:
            restore_masks_from_zeros_(self.targets)

    @torch.no_grad()
    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self._find(model)
        for name, module in self.targets.items():
            grad = local_grad(module.weight)  # the local shards of the (reduced) gradient and the weight
            if grad is not None:
                self.scores[name].sub_(grad.float().view_as(self.scores[name]) * local(module.weight).float())

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        self._find(model)
        apply_masks_(self.targets)

    def on_step_end(self, args, state, control, optimizer=None, model=None, **kwargs):
        self._find(model)
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
            scores[name] = shard_like(score, module.weight)
        if c.variant == "hard":
            sparsity = ramp_value(p, 0.0, c.sparsity, c.start, c.end, c.ramp)
            if sparsity <= 0:
                return
            finite = {n: shard_like(local(s).nan_to_num(neginf=-3.4e38), s) for n, s in scores.items()}
            masks = lowest_k_masks(finite, sparsity, "local")
        else:
            threshold = ramp_value(p, float("-inf"), c.threshold, c.start, c.end, c.ramp)
            if threshold == float("-inf"):
                return
            masks = {}
            for name, module in self.targets.items():
                # standardized over all weights of the module (all shards): stable across updates
                keep = standardized(shard_like(self.scores[name], module.weight)) > threshold
                previous = get_mask(module)
                masks[name] = keep if previous is None else keep & previous
        for name, mask in masks.items():
            set_mask(self.targets[name], mask)
        apply_masks_(self.targets)
        zero_optimizer_state_(optimizer, self.targets)
        self.current = target_sparsity(self.targets)
