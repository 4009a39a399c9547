from __future__ import annotations

import logging

import torch

from ...logs import add_log_fields
from ..base import CompressionCallback, ramp_value
from ..masks import STRUCTURED_MASK_BUFFER, apply_masks_, remove_mask, set_mask, zero_optimizer_state_
from ..sharding import full, trainer_drives_sharding
from .config import StructuredPruningConfig
from .prune import (
    finish_plan_,
    magnitude_importance,
    plan_keep,
    taylor_importance_from_grads,
    unit_columns,
    unit_mask,
)
from .units import current_heads, current_neurons, get_module, model_units

logger = logging.getLogger(__name__)


class StructuredPruningCallback(CompressionCallback):
    """Prune heads and FFN neurons in `steps` rounds between progress `start` and `end`, fine-tuning between.

    During training a pruned unit is masked (its output column is held at zero, so it contributes
    nothing, exactly as if removed); at the end of training the masked units are physically removed
    and the layout is recorded on the model. With `importance="gradient"` the Taylor importance
    |grad * weight| is accumulated from the training steps themselves (no extra batches).
    """

    def __init__(self, config: StructuredPruningConfig | None = None, budget=None, **config_kwargs):
        super().__init__(budget)
        self.config = config or StructuredPruningConfig(**config_kwargs)
        self.rounds_done = 0
        self.head_keep = self.neuron_keep = None
        self.fraction = 0.0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        engine = self.check_engine(model, args, needs_gradients=self.config.importance == "gradient")
        if engine in ("fsdp2", "deepspeed") and trainer_drives_sharding(args):
            raise ValueError(
                f"StructuredPruningCallback under {engine} through the Trainer: its units are removed on the whole "
                "model that tlc_hf.save_whole gathers, and Trainer.save_model would save them only masked, uncut; "
                "train with tlc_hf.train_sharded(...) and save with tlc_hf.save_whole, or prune with "
                "prune_structured_ on the whole model before sharding"
            )
        if args.load_best_model_at_end:
            raise ValueError(
                "StructuredPruningCallback with load_best_model_at_end=True: the best checkpoint can have "
                "fewer units masked than the end of the schedule, and removing units then cuts weights it "
                "used. Set load_best_model_at_end=False (or prune one-shot with prune_structured_ afterwards)."
            )
        self.model = model
        self.attention, self.ffn = model_units(model)
        self.outputs = {u.o: get_module(model, u.o) for u in self.attention}
        self.outputs.update({u.output: get_module(model, u.output) for u in self.ffn})
        self.head_scores = [torch.zeros(current_heads(model, u)) for u in self.attention]
        self.neuron_scores = [torch.zeros(current_neurons(model, u)) for u in self.ffn]
        if state.global_step > 0:
            self._restore_from_zeros(state)

    def _restore_from_zeros(self, state) -> None:
        """Resumed in a new process: a unit whose output columns are all zero was masked; the rounds due
        by now were done."""
        c = self.config
        p = self.progress(state)
        self.rounds_done = sum(1 for r in range(c.steps) if p >= c.start + (c.end - c.start) * (r + 1) / c.steps)
        if self.rounds_done == 0:
            return
        due = c.start + (c.end - c.start) * self.rounds_done / c.steps
        self.fraction = ramp_value(due, 0.0, 1.0, c.start, c.end, c.ramp)

        def live(weight, size):
            weight = full(weight)  # whole columns of a sharded weight
            return (weight.detach().view(weight.shape[0], -1, size) != 0).any(dim=(0, 2)).nonzero().flatten().tolist()

        if c.heads > 0:
            self.head_keep = [live(get_module(self.model, u.o).weight, u.head_dim) for u in self.attention]
        if c.ffn > 0:
            self.neuron_keep = [live(get_module(self.model, u.output).weight, 1) for u in self.ffn]
        self._set_masks()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.config.importance == "gradient":
            heads, neurons = taylor_importance_from_grads(self.model, self.attention, self.ffn)
            self.head_scores = [a + b.cpu() for a, b in zip(self.head_scores, heads, strict=True)]
            self.neuron_scores = [a + b.cpu() for a, b in zip(self.neuron_scores, neurons, strict=True)]

    def on_optimizer_step(self, args, state, control, **kwargs):
        apply_masks_(self.outputs, STRUCTURED_MASK_BUFFER)

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        c = self.config
        p = self.progress(state)
        due = c.start + (c.end - c.start) * (self.rounds_done + 1) / c.steps
        if self.rounds_done < c.steps and p >= due:
            self.rounds_done += 1
            self.fraction = ramp_value(due, 0.0, 1.0, c.start, c.end, c.ramp)
            self._mask_round(optimizer)

    def on_log(self, args, state, control, logs=None, **kwargs):
        add_log_fields(state, logs, {"structured_fraction": round(self.fraction, 4)})

    def _mask_round(self, optimizer) -> None:
        c = self.config
        if c.importance == "gradient":
            heads, neurons = self.head_scores, self.neuron_scores
        else:
            heads, neurons = magnitude_importance(self.model, self.attention, self.ffn)
        heads, neurons = _pruned_rank_lowest(heads, self.head_keep), _pruned_rank_lowest(neurons, self.neuron_keep)
        groups = [u.group for u in self.attention]
        self.head_keep = plan_keep(heads, c.heads * self.fraction, c.uniform, groups) if c.heads > 0 else None
        self.neuron_keep = plan_keep(neurons, c.ffn * self.fraction, c.uniform) if c.ffn > 0 else None
        self._set_masks(optimizer)

    def _set_masks(self, optimizer=None) -> None:
        for units, keeps in ((self.attention, self.head_keep), (self.ffn, self.neuron_keep)):
            for unit, kept in zip(units, keeps or [], strict=False):
                module = get_module(self.model, unit.o if unit in self.attention else unit.output)
                columns = unit_columns(self.model, unit, kept)
                set_mask(module, unit_mask(module, columns), STRUCTURED_MASK_BUFFER)  # as this rank holds it
        apply_masks_(self.outputs, STRUCTURED_MASK_BUFFER)
        zero_optimizer_state_(optimizer, self.outputs, STRUCTURED_MASK_BUFFER)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.rounds_done < self.config.steps and self.progress(state) >= self.config.end:
            self.rounds_done, self.fraction = self.config.steps, 1.0
            self._mask_round(kwargs.get("optimizer"))
        for module in self.outputs.values():
            remove_mask(module, STRUCTURED_MASK_BUFFER)
        if self.head_keep is None and self.neuron_keep is None:
            return
        before = sum(p.numel() for p in model.parameters())
        if finish_plan_(model, self.config, self.head_keep, self.neuron_keep) is None:
            logger.info("Structured pruning: masked units are removed when the sharded model is saved whole")
            return
        logger.info("Structured pruning removed %d parameters", before - sum(p.numel() for p in model.parameters()))


def _pruned_rank_lowest(scores: list[torch.Tensor], keep: list[list[int]] | None) -> list[torch.Tensor]:
    """Units cut in an earlier round stay cut: they score below every live unit."""
    if keep is None:
        return scores
    out = []
    for score, kept in zip(scores, keep, strict=True):
        score = score.clone().float().clamp_min(0)
        dropped = torch.ones_like(score, dtype=torch.bool)
        dropped[kept] = False
        out.append(score.masked_fill(dropped, -1.0))
    return out
