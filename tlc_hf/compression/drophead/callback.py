"""Scheduled DropHead: a regularizer that drops whole attention heads while training.

Each training forward pass keeps each head with probability 1 - rate (per example), and rescales the kept
heads by heads / kept, as in Zhou et al. (2020), so the expected output is unchanged. Works through a
pre-hook on the attention output projection (its input is the concatenated heads), for BERT, RoBERTa,
XLM-R, T5 and mT5. Nothing changes at evaluation or inference. A seeded generator's state goes into
checkpoints (`tlc_drophead_generator.safetensors`), so a resumed run drops the heads the uninterrupted one would.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.distributed as dist
from torch import nn

from ...logs import add_log_fields
from ..base import CompressionCallback
from ..generators import restore_generator, save_generator
from ..record import record_compression
from ..sharding import data_parallel_group
from ..structured.units import get_module, model_units
from .config import DropHeadConfig, drophead_rate


class DropHeadCallback(CompressionCallback):
    """Drop whole heads during training on a schedule over progress p (see `DropHeadConfig`).

    Args:
        config: a `DropHeadConfig` (or give `rate`, `schedule`, `seed`).
        budget: a `WallClockBudgetCallback` for progress under a time budget (BudgetTrainer links it).

    Example:
        ```python
        trainer = BudgetTrainer(model, args, callbacks=[DropHeadCallback(rate=0.2)], ...)
        ```
    """

    def __init__(
        self,
        config: DropHeadConfig | None = None,
        budget=None,
        *,
        rate: float | None = None,
        schedule: str | None = None,
        seed: int | None = None,
    ):
        super().__init__(budget)
        if isinstance(config, (int, float)):  # DropHeadCallback(0.2): the rate, as before configs
            config, rate = None, config
        overrides = {k: v for k, v in (("rate", rate), ("schedule", schedule), ("seed", seed)) if v is not None}
        self.config = dataclasses.replace(config or DropHeadConfig(), **overrides)
        self.rate, self.schedule, seed = self.config.rate, self.config.schedule, self.config.seed
        self.current_rate = 0.0
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self._handles = []
        self._part = (0, 1)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.check_engine(model, args)
        restore_generator(self.generator, args, state, "drophead")
        self._part = _batch_part(model)
        attention, _ = model_units(model)
        for unit in attention:
            module = get_module(model, unit.o)
            self._handles.append(module.register_forward_pre_hook(self._hook(unit.head_dim)))
        self.current_rate = drophead_rate(self.progress(state), self.rate, self.schedule)

    def on_step_begin(self, args, state, control, **kwargs):
        self.current_rate = drophead_rate(self.progress(state), self.rate, self.schedule)

    def on_save(self, args, state, control, **kwargs):
        save_generator(self.generator, args, state, "drophead")

    def on_log(self, args, state, control, logs=None, **kwargs):
        add_log_fields(state, logs, {"drophead_rate": round(self.current_rate, 4)})

    def on_train_end(self, args, state, control, model=None, **kwargs):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if model is not None and self.rate > 0:
            record_compression(model, self.config)

    def _hook(self, head_dim: int):
        def drop_heads(module, inputs):
            if not module.training or self.current_rate <= 0:
                return None
            (context, *rest) = inputs
            heads = context.shape[-1] // head_dim
            rank, world = _ddp_part() or self._part
            batch = context.shape[0]
            shape = (batch * world, *([1] * (context.dim() - 2)), heads, 1)
            # FSDP2 or DDP: draw for the global batch and take this rank's rows (one process draws the same)
            draws = torch.rand(shape, generator=self.generator)[rank * batch : (rank + 1) * batch]
            keep = draws.to(context.device) >= self.current_rate
            kept = keep.sum(dim=-2, keepdim=True).clamp_min(1)
            scale = keep.to(context.dtype) * (heads / kept.to(context.dtype))
            dropped = (context.unflatten(-1, (heads, head_dim)) * scale).flatten(-2)
            return (dropped, *rest)

        return drop_heads


def _ddp_part() -> tuple[int, int] | None:
    """(rank, ranks) of the DDP forward running now, or None. DDP splits the global batch but hands callbacks
    the module inside it, so the hook asks DDP itself: it records its wrapper while its forward runs (the
    class attribute `_active_ddp_module`, torch 2.x; a torch without it falls back to drawing per rank)."""
    ddp = getattr(nn.parallel.DistributedDataParallel, "_active_ddp_module", None)
    if ddp is None:
        return None
    return dist.get_rank(ddp.process_group), dist.get_world_size(ddp.process_group)


def _batch_part(model) -> tuple[int, int]:
    """(rank, ranks) over which a sharded model's global batch is split (FSDP2, DeepSpeed ZeRO); (0, 1) for a
    whole model."""
    group = data_parallel_group(model)
    return (0, 1) if group is None else (dist.get_rank(group), dist.get_world_size(group))
