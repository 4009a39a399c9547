"""Compression on sharded parameters: which engine runs the model, local-shard views, cross-rank selection.

Under FSDP2 (`fully_shard`) a weight is a DTensor whose rows are split over the ranks. Masks and scores
live like their local shards (plain tensors the shape of `weight.to_local()`), are applied in place on the
local shard, and every threshold is a reduction across ranks: the k lowest entries of a tensor (or of all
target tensors) are found by a radix select on all-reduced 256-bin histograms, never by a per-shard topk.
On one process (or DDP, where every rank holds the whole weight) nothing here changes the result.
DeepSpeed ZeRO parameters go through `zero` (DeepSpeed's fp32 master partitions): a ZeRO-3 weight's local
part is its flat partition, seen here as a `Shard(0)` DTensor of the flattened weight.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from . import zero

ENGINES = ("none", "ddp", "fsdp2", "fsdp1", "deepspeed")
WRAPPER_PREFIXES = ("module.", "_fsdp_wrapped_module.", "_orig_mod.", "_checkpoint_wrapped_module.")
# where each engine stands for tlc_hf's during-training methods (the ACCELERATE.md table)
SUPPORTED_ENGINES = ("none", "ddp", "fsdp2")
# the callbacks that reach DeepSpeed's fp32 master partitions (tests/test_deepspeed.py)
DEEPSPEED_CALLBACKS = (
    "MagnitudePruningCallback",
    "MovementPruningCallback",
    "QATCallback",
    "QuantNoiseCallback",
    "DropHeadCallback",
    "StructuredPruningCallback",
)
# ... and those that need the gradients before the engine's step, which accelerate's Trainer takes inside
# backward (before any callback event): they run under DeepSpeed through `tlc_hf.train_sharded(engine, ...)`
NEEDS_GRADIENTS = ("MovementPruningCallback",)


def _dtensor_class():
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch without distributed tensors
        return None
    return DTensor


def is_sharded(tensor) -> bool:
    """Whether `tensor` is a DTensor (a shard of a whole tensor held by several ranks)."""
    dtensor = _dtensor_class()
    return dtensor is not None and isinstance(tensor, dtensor)


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of `tensor`: the local shard of a DTensor (same storage), a copy of the flat fp32
    master partition of a ZeRO-3 parameter, the tensor itself otherwise."""
    if is_sharded(tensor):
        return tensor.to_local()
    return zero.local_fp32(tensor) if zero.is_zero3(tensor) else tensor


def full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor (a collective for a DTensor and a ZeRO parameter, whose fp32 master it gathers: every
    rank must call it, in the same order)."""
    if is_sharded(tensor):
        return tensor.full_tensor()
    return zero.full_fp32(tensor) if zero.is_zero(tensor) else tensor


def numel(tensor: torch.Tensor) -> int:
    """Entries of the whole tensor (a ZeRO-3 parameter is an empty placeholder: its `ds_numel`)."""
    return tensor.ds_numel if zero.is_zero3(tensor) else tensor.numel()


def full_grad(weight: torch.Tensor) -> torch.Tensor | None:
    """The whole reduced gradient of `weight` (None without one); a collective when sharded. ZeRO: DeepSpeed's
    gradient partitions gathered, readable only between backward and the engine's step.

    Args:
        weight: a parameter, plain, FSDP2-sharded (DTensor) or trained by a DeepSpeed ZeRO optimizer; every rank
            calls this for the same weight.

    Example:
        ```python
        grad = full_grad(model.bert.encoder.layer[0].output.dense.weight)  # whole shape on every rank
        ```
    """
    if zero.is_zero(weight):
        return zero.full_grad(weight)
    return None if weight.grad is None else full(weight.grad)


def local_grad(weight: torch.Tensor) -> torch.Tensor | None:
    """This rank's part of `weight`'s reduced gradient, shaped like `local(weight)` (None without one).
    ZeRO: DeepSpeed's gradient partitions, readable only between backward and the engine's step."""
    if zero.is_zero(weight):
        return zero.local_grad(weight)
    return None if weight.grad is None else local(weight.grad)


@torch.no_grad()
def mask_weight_(weight: torch.Tensor, mask: torch.Tensor) -> None:
    """Zero `weight` where the (local-shard) `mask` is False: in place on a DTensor's shard; in DeepSpeed's
    fp32 master and the model's copy for a ZeRO parameter (a collective under ZeRO-1/2)."""
    if zero.is_zero(weight):
        zero.mask_(weight, mask)
    else:
        local(weight).mul_(mask)


@torch.no_grad()
def mask_optimizer_state_(optimizer, weight: torch.Tensor, mask: torch.Tensor) -> None:
    """Zero the optimizer state (Adam moments, momentum) of `weight` where `mask` is False, so it cannot push
    pruned entries back; DeepSpeed's partitioned state for a ZeRO parameter."""
    if optimizer is None:
        return
    if zero.is_zero(weight):
        zero.mask_optimizer_state_(optimizer, weight, mask)
        return
    optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
    for value in (optimizer.state.get(weight) or {}).values():
        if torch.is_tensor(value) and local(value).shape == mask.shape:
            local(value).mul_(mask)


def strip_wrapper_prefixes(name: str) -> str:
    """A module name without the prefixes DDP, FSDP1, torch.compile and activation checkpointing add."""
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def data_parallel_group(model: nn.Module):
    """The process group over which `model`'s global batch is split: a DeepSpeed engine's data-parallel group,
    the mesh of FSDP2 (DTensor) parameters, the group of DeepSpeed ZeRO parameters (a model inside an engine),
    a DDP wrapper's group; None for a whole model.

    Args:
        model: the model as trained (a wrapper, an engine, or the module inside one).

    Example:
        ```python
        group = data_parallel_group(model)
        rank, ranks = (dist.get_rank(group), dist.get_world_size(group)) if group is not None else (0, 1)
        ```
    """
    if zero.is_engine(model):
        return model.optimizer.dp_process_group
    param = next((p for p in model.parameters() if is_sharded(p) or zero.is_zero(p)), None)
    if param is not None:
        return zero.data_parallel_group(param) if zero.is_zero(param) else param.device_mesh.get_group()
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return model.process_group
    return None


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DDP / DeepSpeed / torch.compile wrappers (FSDP2 shards in place: nothing to unwrap)."""
    while (
        isinstance(model, nn.parallel.DistributedDataParallel) or zero.is_engine(model) or hasattr(model, "_orig_mod")
    ):
        wrapped = isinstance(model, nn.parallel.DistributedDataParallel) or zero.is_engine(model)
        model = model.module if wrapped else model._orig_mod
    return model


def detect_engine(model: nn.Module | None = None, args=None) -> str:
    """Which engine trains `model`: "deepspeed", "fsdp2", "fsdp1", "ddp" or "none".

    Args:
        model: the model a callback receives (DTensor parameters mean FSDP2, flat parameters FSDP1).
        args: the run's `TrainingArguments` (a DeepSpeed config or FSDP settings, and the world size).

    Example:
        ```python
        detect_engine(model, trainer.args)  # "fsdp2" after fully_shard
        ```
    """
    if args is not None and (getattr(args, "deepspeed", None) or getattr(args, "hf_deepspeed_config", None)):
        return "deepspeed"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return "deepspeed"
    if model is not None:
        params = list(model.parameters())
        if any(zero.is_zero(p) for p in params):
            return "deepspeed"
        if any(is_sharded(p) for p in params):
            return "fsdp2"
        names = (name for name, _ in model.named_modules())
        if any("_fsdp_wrapped_module" in name for name in names) or any(
            type(p).__name__ == "FlatParameter" for p in params
        ):
            return "fsdp1"
    if args is not None and getattr(args, "fsdp", None):
        version = (getattr(args, "fsdp_config", None) or {}).get("version", 1)
        return "fsdp2" if int(version) == 2 else "fsdp1"
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return "ddp"
    if args is not None and getattr(args, "world_size", 1) > 1:
        return "ddp"
    return "none"


def check_engine(
    method: str, model: nn.Module | None, args=None, supported: tuple = SUPPORTED_ENGINES, needs_gradients=False
) -> str:
    """The detected engine; a one-line ValueError (the method, the engine, what works instead) when `method`
    cannot run under it (`needs_gradients`: this run reads gradients before the optimizer step, like
    `NEEDS_GRADIENTS`). Call at train begin, before any step."""
    engine = detect_engine(model, args)
    if engine in ("fsdp2", "fsdp1") and _sharded_final_save(args):
        raise ValueError(
            f"{method} under {engine} with a SHARDED_STATE_DICT final save: the saved model would have no whole "
            "weights for from_pretrained; set fsdp_state_dict_type: FULL_STATE_DICT (or save with tlc_hf.save_whole)"
        )
    if engine in supported:
        return engine
    reads_gradients = needs_gradients or method in NEEDS_GRADIENTS
    if engine == "deepspeed" and reads_gradients and trainer_steps_in_backward(args):
        raise ValueError(
            f"{method} cannot run under deepspeed through the Trainer: accelerate takes DeepSpeed's optimizer "
            "step inside backward, before the gradients reach the callback; train the DeepSpeed engine with "
            "tlc_hf.train_sharded(engine, ...) or shard with FSDP2 (examples/accelerate_fsdp2.yaml)"
        )
    if engine == "deepspeed" and method in DEEPSPEED_CALLBACKS:
        return engine
    if engine == "deepspeed":
        hint = (
            f"this method is not ported to DeepSpeed's fp32 master partitions ({DEEPSPEED_CALLBACKS} are); "
            "shard with FSDP2 instead "
            "(accelerate: fsdp_version: 2, see examples/accelerate_fsdp2.yaml)"
        )
    elif engine == "fsdp1":
        hint = "FSDP1 flattens parameters; use FSDP2 (fully_shard, accelerate fsdp_version: 2)"
    else:
        hint = f"supported engines: {supported}"
    raise ValueError(f"{method} cannot run under {engine}: {hint}")


def trainer_steps_in_backward(args) -> bool:
    """Whether a Trainer (through accelerate) drives DeepSpeed: it steps the engine inside backward."""
    if args is not None and (getattr(args, "deepspeed", None) or getattr(args, "hf_deepspeed_config", None)):
        return True
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def trainer_drives_sharding(args) -> bool:
    """Whether a Trainer (through accelerate) shards this run with DeepSpeed or FSDP, and so saves the final
    model itself (`Trainer.save_model`), not through `tlc_hf.save_whole`.

    Args:
        args: the run's `TrainingArguments` (or None: then only accelerate's environment is read).

    Example:
        ```python
        trainer_drives_sharding(TrainingArguments("out", fsdp=True))  # True
        ```
    """
    if trainer_steps_in_backward(args):
        return True
    if args is not None and (getattr(args, "fsdp", None) or getattr(args, "fsdp_config", None)):
        return True
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def _sharded_final_save(args) -> bool:
    """Whether accelerate / TrainingArguments ask for a sharded (DCP) final save."""
    config = getattr(args, "fsdp_config", None) or {}
    kind = (
        config.get("state_dict_type") or config.get("fsdp_state_dict_type") or os.environ.get("FSDP_STATE_DICT_TYPE")
    )
    return str(kind).upper().endswith("SHARDED_STATE_DICT")


def shard_group(tensor: torch.Tensor):
    """The process group over which `tensor`'s shards are spread (None for a whole tensor)."""
    if zero.is_zero3(tensor):
        return tensor.ds_process_group
    if not is_sharded(tensor):
        return None
    from torch.distributed.tensor import Shard

    mesh = tensor.device_mesh
    if mesh.ndim != 1 or not all(isinstance(p, Shard) for p in tensor.placements):
        raise ValueError(
            f"placements={tensor.placements} on a {mesh.ndim}-D mesh: tlc_hf compresses weights sharded on "
            "a 1-D mesh (FSDP2 fully_shard); HSDP and tensor parallelism are not supported"
        )
    return mesh.get_group()


def all_reduce_sum_(tensor: torch.Tensor, group) -> torch.Tensor:
    """Sum `tensor` over the ranks of `group` in place (nothing without a group)."""
    if group is not None:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group)
    return tensor


def count_zeros(weight: torch.Tensor) -> int:
    """Exact zeros in the whole `weight` (summed over its shards)."""
    count = torch.tensor([int((local(weight).detach() == 0).sum())], dtype=torch.int64)
    return int(all_reduce_sum_(count, shard_group(weight)).item())


def shard_of(value: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """This rank's part of a whole `value` shaped like `weight`: the local shard where `weight` is sharded
    (no communication: every rank holds `value`), `value` itself otherwise."""
    if zero.is_zero3(weight):
        return zero.chunk_of(value, weight)
    if not is_sharded(weight):
        return value
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(value, weight.device_mesh, weight.placements, src_data_rank=None).to_local()


def set_full_(param: torch.Tensor, value: torch.Tensor) -> None:
    """Write the whole `value` into `param` (each rank keeps its own shard of it; DeepSpeed's fp32 master too)."""
    if zero.is_zero(param):
        zero.set_full_(param, value)
        return
    with torch.no_grad():
        local(param).copy_(shard_of(value, param))


def shard_like(tensor: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A local tensor (the shape of `weight`'s local shard) as a DTensor placed like `weight`; a whole
    weight gives `tensor` back. A ZeRO-3 partition: a DTensor of the flattened weight."""
    if zero.is_zero3(weight):
        return zero.as_dtensor(tensor, weight)
    if not is_sharded(weight):
        return tensor
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(
        tensor, weight.device_mesh, weight.placements, run_check=False, shape=weight.shape, stride=weight.stride()
    )


def standardized(score: torch.Tensor) -> torch.Tensor:
    """(score - mean) / std over the whole tensor (over all shards of a DTensor); the local result."""
    group = shard_group(score)
    if group is None:
        return (score - score.mean()) / (score.std() + 1e-12)
    values = local(score).double()
    sums = torch.stack([values.sum(), values.pow(2).sum(), torch.tensor(float(values.numel()), dtype=torch.float64)])
    total, squares, n = all_reduce_sum_(sums, group).tolist()
    mean = total / n
    std = max((squares - n * mean * mean) / max(n - 1, 1), 0.0) ** 0.5
    return ((values - mean) / (std + 1e-12)).to(local(score).dtype)


WHOLE_FINALIZERS = "_tlc_whole_finalizers"


def defer_to_whole_(model: nn.Module, finalize) -> None:
    """Run `finalize(whole_model)` when the sharded `model` is gathered whole (`tlc_hf.training.gather_whole`,
    `save_whole`): a step that changes shapes (structured pruning) waits for the whole model."""
    model.__dict__.setdefault(WHOLE_FINALIZERS, []).append(finalize)


def finalize_whole_(sharded: nn.Module, whole: nn.Module) -> None:
    """Apply the steps `sharded` deferred (in order) to its gathered copy `whole`."""
    for finalize in sharded.__dict__.get(WHOLE_FINALIZERS, []):
        finalize(whole)


# ---- k lowest entries across ranks -----------------------------------------------------------------------
def _order_keys(values: torch.Tensor) -> torch.Tensor:
    """float32 values as int64 keys in [0, 2^32) with the same order (a radix select works on keys)."""
    bits = values.detach().float().contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    return torch.where(bits >= 2**31, 0xFFFFFFFF - bits, bits + 2**31)


def lowest_k_masks_sharded(scores: dict[str, torch.Tensor], sparsity: float, scope: str) -> dict[str, torch.Tensor]:
    """Keep-masks (local shards) that drop the round(sparsity * n) lowest scores per tensor ("local") or across
    all tensors ("global"), where scores may be DTensors sharded over the same 1-D mesh.

    The k-th lowest value is found with four all-reduced 256-bin histograms of the scores' 32-bit order keys;
    entries equal to it are dropped in the order of the whole flattened tensor (rank after rank), so every
    rank agrees and the count is exact.
    """
    names = list(scores)
    groups = {shard_group(s) for s in scores.values()} - {None}
    if len(groups) > 1:
        raise ValueError("scores are sharded over different process groups; shard every target on one mesh")
    group = groups.pop() if groups else None
    rank = dist.get_rank(group) if group is not None else 0
    world = dist.get_world_size(group) if group is not None else 1
    # a whole (replicated) tensor is counted once, as if rank 0 held it
    owned = {n: is_sharded(scores[n]) or rank == 0 for n in names}
    keys = {n: _order_keys(local(scores[n]).flatten()) for n in names}
    sets = [[n] for n in names] if scope == "local" else [names]
    ks = [round(sparsity * sum(scores[n].numel() for n in members)) for members in sets]

    prefix = [0] * len(sets)
    remaining = list(ks)
    for shift in (24, 16, 8, 0):
        hist = torch.zeros(len(sets), 256, dtype=torch.int64)
        for i, members in enumerate(sets):
            if remaining[i] <= 0:
                continue
            for n in (m for m in members if owned[m]):
                key = keys[n]
                key = key[(key >> (shift + 8)) == prefix[i]]
                hist[i] += torch.bincount((key >> shift) & 255, minlength=256)
        all_reduce_sum_(hist, group)
        for i in range(len(sets)):
            if remaining[i] <= 0:
                continue
            cumulative = hist[i].cumsum(0)
            digit = int(torch.searchsorted(cumulative, torch.tensor(remaining[i])).item())
            remaining[i] -= int(cumulative[digit - 1]) if digit > 0 else 0
            prefix[i] = (prefix[i] << 8) | digit

    # ties at the k-th value: drop the first `remaining` of them in (tensor, rank, position) order
    ties = torch.zeros(world, len(names), dtype=torch.int64)
    for j, n in enumerate(names):
        i = next(s for s, members in enumerate(sets) if n in members)
        if remaining[i] > 0 and owned[n]:
            ties[rank, j] = int((keys[n] == prefix[i]).sum())
    all_reduce_sum_(ties, group)
    masks, before = {}, [0] * len(sets)
    for j, n in enumerate(names):
        i = next(s for s, members in enumerate(sets) if n in members)
        key = keys[n]
        if ks[i] <= 0:
            keep = torch.ones_like(key, dtype=torch.bool)
        else:
            holder = rank if is_sharded(scores[n]) else 0
            offset = before[i] + int(ties[:holder, j].sum())
            tied = key == prefix[i]
            position = offset + tied.cumsum(0) - 1
            keep = ~((key < prefix[i]) | (tied & (position < remaining[i])))
            before[i] += int(ties[:, j].sum())
        masks[n] = keep.view(local(scores[n]).shape)
    return masks
