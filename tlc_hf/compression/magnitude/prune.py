from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..base import record_compression
from ..masks import apply_masks_, get_mask, lowest_k_masks, set_mask, sparsity_report
from ..sharding import local, shard_like
from ..targets import find_targets
from .config import MagnitudePruningConfig


@torch.no_grad()
def magnitude_step_(targets: dict[str, nn.Module], sparsity: float, scope: str) -> None:
    """Mask the lowest-|w| weights to `sparsity`; weights already masked stay masked (they are zero).
    Sharded weights (FSDP2) get one threshold across ranks, and masks the shape of their local shards."""
    scores = {}
    for name, module in targets.items():
        score = local(module.weight).detach().abs()
        previous = get_mask(module)
        if previous is not None:
            score = score.masked_fill(~previous, -1.0)  # keep earlier cuts: they rank lowest
        scores[name] = shard_like(score, module.weight)
    for name, mask in lowest_k_masks(scores, sparsity, scope).items():
        set_mask(targets[name], mask)
    apply_masks_(targets)


def prune_magnitude_(
    model: nn.Module,
    sparsity: float | None = None,
    scope: str | None = None,
    config: MagnitudePruningConfig | None = None,
) -> dict:
    """One-shot magnitude pruning in place: zero the `sparsity` fraction of smallest |w| in the target weights
    (per module with `scope="local"`, across all targets with `"global"`). Returns a sparsity report.

    Default targets: the Linear layers inside the transformer blocks; embeddings and heads are untouched.
    """
    overrides = {k: v for k, v in (("sparsity", sparsity), ("scope", scope)) if v is not None}
    config = dataclasses.replace(config or MagnitudePruningConfig(), **overrides)  # validates again
    targets = find_targets(model, config.target_modules, config.include_embeddings, config.include_head)
    magnitude_step_(targets, config.sparsity, config.scope)
    record_compression(model, config)
    return sparsity_report(model, targets)
