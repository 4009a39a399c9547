"""Unstructured masks: computed by magnitude or score, kept on the module, enforced after every step.

A mask lives on its module as a non-persistent buffer, so `state_dict()` and `save_pretrained` are
unchanged: pruned weights are stored as exact zeros.
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

from .sharding import (
    count_zeros,
    is_sharded,
    local,
    lowest_k_masks_sharded,
    mask_optimizer_state_,
    mask_weight_,
    numel,
)

logger = logging.getLogger(__name__)

MASK_BUFFER = "tlc_mask"  # unstructured masks (magnitude, movement)
STRUCTURED_MASK_BUFFER = "tlc_structured_mask"  # whole heads / neurons, until they are removed


def get_mask(module: nn.Module, buffer: str = MASK_BUFFER) -> torch.Tensor | None:
    return module._buffers.get(buffer)


def set_mask(module: nn.Module, mask: torch.Tensor, buffer: str = MASK_BUFFER) -> None:
    """Keep `mask` on `module`: the shape of its weight's local shard (the whole weight unless sharded).

    Stored dense (an expanded view made contiguous): DDP broadcasts buffers before each forward, and a
    broadcast cannot write into a view whose elements share memory."""
    mask = mask.to(device=module.weight.device, dtype=torch.bool).contiguous()
    if buffer in module._buffers:
        module._buffers[buffer] = mask
    else:
        module.register_buffer(buffer, mask, persistent=False)


def remove_mask(module: nn.Module, buffer: str = MASK_BUFFER) -> None:
    module._buffers.pop(buffer, None)


def lowest_k_masks(scores: dict[str, torch.Tensor], sparsity: float, scope: str = "local") -> dict[str, torch.Tensor]:
    """Masks that drop the round(sparsity * n) lowest-scoring entries, per tensor ("local") or across all
    tensors ("global"): the rule of torch.nn.utils.prune's `l1_unstructured` / `global_unstructured`.
    Scores sharded as DTensors get local-shard masks from one selection across ranks."""
    if any(is_sharded(score) for score in scores.values()):
        return lowest_k_masks_sharded(scores, sparsity, scope)
    if scope == "local":
        return {name: _lowest_k_mask(score.flatten(), sparsity).view_as(score) for name, score in scores.items()}
    flat = torch.cat([score.flatten() for score in scores.values()])
    mask = _lowest_k_mask(flat, sparsity)
    out, offset = {}, 0
    for name, score in scores.items():
        out[name] = mask[offset : offset + score.numel()].view_as(score)
        offset += score.numel()
    return out


def _lowest_k_mask(values: torch.Tensor, sparsity: float) -> torch.Tensor:
    k = round(sparsity * values.numel())
    mask = torch.ones_like(values, dtype=torch.bool)
    if k > 0:
        mask[torch.topk(values.float(), k, largest=False).indices] = False
    return mask


@torch.no_grad()
def apply_masks_(modules: dict[str, nn.Module], buffer: str = MASK_BUFFER) -> None:
    """Zero the masked weights (in place)."""
    for module in modules.values():
        mask = get_mask(module, buffer)
        if mask is not None:
            mask_weight_(module.weight, mask)  # DeepSpeed: its fp32 master as well


@torch.no_grad()
def zero_optimizer_state_(optimizer, modules: dict[str, nn.Module], buffer: str = MASK_BUFFER) -> None:
    """Zero optimizer state (Adam moments, momentum) at masked entries so it cannot push them back."""
    for module in modules.values():
        mask = get_mask(module, buffer)
        if mask is not None:
            mask_optimizer_state_(optimizer, module.weight, mask)


def target_sparsity(targets: dict[str, nn.Module]) -> float:
    """Fraction of exact zeros over all target weights (whole weights, also when sharded)."""
    total = sum(numel(module.weight) for module in targets.values())
    return sum(count_zeros(module.weight) for module in targets.values()) / total if total else 0.0


def sparsity_report(model: nn.Module, targets: dict[str, nn.Module]) -> dict:
    """Sparsity per target module and over all targets; parameter counts of the whole model."""
    per_module = {name: count_zeros(module.weight) / numel(module.weight) for name, module in targets.items()}
    total = sum(numel(module.weight) for module in targets.values())
    params = sum(numel(p) for p in model.parameters())
    nonzero = params - sum(count_zeros(p) for p in model.parameters())
    return {
        "target_sparsity": target_sparsity(targets),
        "target_params": total,
        "params_total": params,
        "params_nonzero": nonzero,
        "per_module": per_module,
    }


def restore_masks_from_zeros_(modules: dict[str, nn.Module], buffer: str = MASK_BUFFER) -> None:
    """After a resume (a new process has no masks): exact zeros in the weights are the pruned entries."""
    for module in modules.values():
        zeros = local(module.weight).detach() == 0
        if zeros.any():
            set_mask(module, ~zeros, buffer)


def checkpoint_path(args, state) -> str:
    """Where the Trainer writes the checkpoint of the current step (`output_dir/checkpoint-<step>`)."""
    return os.path.join(args.output_dir, f"checkpoint-{state.global_step}")


def resumed_checkpoint(args, state) -> str | None:
    """The checkpoint a resumed run started from, when training resumed: `args.resume_from_checkpoint` when it
    names a folder (HF scripts set it; `BudgetTrainer.train` records the one it was given), else the Trainer's
    own `output_dir/checkpoint-<step>`."""
    if state.global_step == 0:
        return None
    given = getattr(args, "resume_from_checkpoint", None)
    for path in (given if isinstance(given, str) else None, checkpoint_path(args, state)):
        if path and os.path.isdir(path):
            return path
    return None


def resumed_file(args, state, filename: str, what: str, otherwise: str) -> str | None:
    """On a resumed run, the path of `filename` in the checkpoint it resumed from (`resumed_checkpoint`); None on
    a fresh run, and None with a warning (`what` is missing, `otherwise` happens, how to point at the folder)
    when that checkpoint has no such file.

    Args:
        args, state: the Trainer's at train begin.
        filename: the callback's file in each checkpoint, e.g. "tlc_movement_scores.safetensors".
        what, otherwise: for the warning, e.g. "movement scores", "the scores restart at zero".

    Example:
        ```python
        path = resumed_file(args, state, SCORES_NAME, "movement scores", "the scores restart at zero")
        ```
    """
    if state.global_step == 0:
        return None
    checkpoint = resumed_checkpoint(args, state)
    if checkpoint is not None and os.path.exists(os.path.join(checkpoint, filename)):
        return os.path.join(checkpoint, filename)
    logger.warning(
        "resumed at step %d without %s (no %s in %s): %s. Resuming from a folder other than "
        "output_dir/checkpoint-<step>? Set TrainingArguments.resume_from_checkpoint to it (BudgetTrainer.train "
        "does this for you).",
        state.global_step,
        what,
        filename,
        checkpoint or checkpoint_path(args, state),
        otherwise,
    )
    return None


def measured_record(config, targets: dict[str, nn.Module]) -> dict:
    """The config's record with the sparsity the weights really have (after `load_best_model_at_end` the
    restored checkpoint may be less sparse than the schedule's end)."""
    record = config.to_dict()
    record["sparsity"] = round(target_sparsity(targets), 4)
    return record
