"""Compression on DeepSpeed ZeRO parameters: masks that reach the fp32 master partitions.

DeepSpeed's optimizer steps fp32 master weights that it keeps partitioned over the data-parallel ranks, then
copies them into the model's (low-precision) parameters. A mask applied to the model's parameter alone is undone
by the next step; here every write goes through DeepSpeed's documented API (`deepspeed.utils`):

- ZeRO-1 / ZeRO-2: each rank holds the whole model parameter; masks are whole (like DDP: every rank computes
  the same ones), the master is read with `safe_get_full_fp32_param` (a collective), masked, and written back
  with `safe_set_full_fp32_param`; optimizer state with `safe_get/set_full_optimizer_state`.
- ZeRO-3: a parameter is an empty placeholder (or, below `param_persistence_threshold`, a whole copy that
  DeepSpeed re-gathers only after its step: writes reach it too); its rank's part is a flat partition (`ds_tensor`). Masks and
  scores live like that partition (the flattened weight's contiguous chunk, padding dropped), are read and
  written with `safe_get/set_local_fp32_param`, `safe_get/set_local_optimizer_state` and `safe_get_local_grad`,
  and thresholds are taken across ranks with the same radix select as FSDP2 (the chunks form a `Shard(0)`
  DTensor of the flattened weight). `whole_state_dict` gathers with `deepspeed.zero.GatheredParameters`.

deepspeed is imported only when a ZeRO parameter is met (it is not a tlc_hf dependency).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

_MESHES = {}


def is_zero3(param) -> bool:
    """Whether `param` is partitioned by ZeRO-3 (an empty placeholder with a `ds_tensor` partition)."""
    return hasattr(param, "ds_id")


def is_zero12(param) -> bool:
    """Whether `param` is trained by a ZeRO-1 / ZeRO-2 optimizer (whole here, fp32 master partitioned)."""
    return hasattr(param, "_hp_mapping")


def is_zero(param) -> bool:
    """Whether a DeepSpeed ZeRO optimizer keeps `param`'s fp32 master weights."""
    return is_zero3(param) or is_zero12(param)


def _utils():
    import deepspeed.utils

    return deepspeed.utils


# ---- ZeRO-3 partitions ----------------------------------------------------------------------------------------
def _partition(param) -> tuple[int, int]:
    """(start, length) of this rank's chunk of the flattened weight (the partition without its padding)."""
    size = param.ds_tensor.ds_numel if hasattr(param.ds_tensor, "ds_numel") else param.ds_tensor.numel()
    start = dist.get_rank(group=param.ds_process_group) * size
    return start, max(0, min(size, param.ds_numel - start))


def local_fp32(param) -> torch.Tensor:
    """This rank's part of a ZeRO-3 parameter's fp32 master (flat, padding dropped; a copy)."""
    _, length = _partition(param)
    return _utils().safe_get_local_fp32_param(param).detach().flatten()[:length].clone()


def local_grad(param) -> torch.Tensor | None:
    """This rank's part of the reduced gradient: the partition's under ZeRO-3, the whole one under ZeRO-1/2
    (a collective there). Only between backward and the engine step."""
    if not param.requires_grad:
        return None
    if is_zero3(param):
        _, length = _partition(param)
        return _utils().safe_get_local_grad(param).flatten()[:length]
    return _utils().safe_get_full_grad(param)


def data_parallel_group(param):
    """The ranks over which DeepSpeed splits the data for `param`: its partition group under ZeRO-3,
    DeepSpeed's data-parallel group under ZeRO-1/2 (the one its engine reduces gradients over).

    Args:
        param: a parameter of a model inside a DeepSpeed engine (`is_zero(param)`).

    Example:
        ```python
        dist.all_reduce(loss_grad, group=data_parallel_group(next(engine.module.parameters())))
        ```
    """
    if is_zero3(param):
        return param.ds_process_group
    from deepspeed.utils import groups

    return groups._get_data_parallel_group()


def full_grad(param) -> torch.Tensor | None:
    """The whole reduced gradient, shaped like the weight (a collective). Only between backward and the step.

    Args:
        param: a parameter trained by a DeepSpeed ZeRO optimizer; every rank calls this for the same one.

    Example:
        ```python
        engine.backward(loss)
        grad = full_grad(engine.module.classifier.weight)  # before engine.step()
        ```
    """
    if not param.requires_grad:
        return None
    grad = _utils().safe_get_full_grad(param)
    return None if grad is None else grad.view(param.ds_shape if is_zero3(param) else param.shape)


def mesh_of(param):
    """A 1-D DeviceMesh over the ranks that partition `param` (cached per group)."""
    from torch.distributed.device_mesh import DeviceMesh

    group = param.ds_process_group
    if group not in _MESHES:
        _MESHES[group] = DeviceMesh.from_group(group, param.ds_tensor.device.type)
    return _MESHES[group]


def as_dtensor(tensor: torch.Tensor, param):
    """A flat local chunk (`local_fp32(param)`'s shape) as a DTensor of the flattened weight, `Shard(0)`:
    ZeRO-3 partitions are torch.chunk's chunks, so the FSDP2 selection code runs on them unchanged."""
    from torch.distributed.tensor import DTensor, Shard

    return DTensor.from_local(
        tensor.flatten(), mesh_of(param), [Shard(0)], run_check=False, shape=(param.ds_numel,), stride=(1,)
    )


def chunk_of(value: torch.Tensor, param) -> torch.Tensor:
    """This rank's chunk of a whole `value` shaped like the ZeRO-3 `param` (no communication)."""
    start, length = _partition(param)
    return value.flatten()[start : start + length]


def _padded(chunk: torch.Tensor, param) -> torch.Tensor:
    """A chunk padded with zeros to the partition's size (what the local setters take)."""
    out = torch.zeros(param.ds_tensor.numel(), dtype=chunk.dtype, device=chunk.device)
    out[: chunk.numel()] = chunk.flatten()
    return out


def _gathered(param) -> bool:
    """Whether a ZeRO-3 parameter holds its whole value right now. Parameters below DeepSpeed's
    `param_persistence_threshold` (default 1e5 entries) stay gathered between steps: DeepSpeed re-gathers them
    after its optimizer step only, so the next forward uses that copy, not the partition, and a write made
    after the step must reach it too."""
    return param.data.numel() == param.ds_numel


# ---- reads and writes that reach the masters ------------------------------------------------------------------
def full_fp32(param) -> torch.Tensor:
    """The whole fp32 master weight, shaped like the model's weight (a collective: every rank calls it)."""
    value = _utils().safe_get_full_fp32_param(param)
    return value.view(param.ds_shape if is_zero3(param) else param.shape)


@torch.no_grad()
def set_full_(param, value: torch.Tensor) -> None:
    """Write a whole `value` (the same on every rank) into the fp32 master and the model's parameter."""
    _utils().safe_set_full_fp32_param(param, value.float())
    if is_zero3(param):
        param.ds_tensor.data.flatten()[: _partition(param)[1]].copy_(chunk_of(value, param))
        if _gathered(param):
            param.data.copy_(value.view_as(param.data))
    else:
        param.data.copy_(value)


@torch.no_grad()
def mask_(param, mask: torch.Tensor) -> None:
    """Zero the masked entries of the fp32 master and of the model's parameter (`mask`: the whole weight's
    shape under ZeRO-1/2, the local chunk's under ZeRO-3). A collective under ZeRO-1/2."""
    if is_zero3(param):
        mask = mask.flatten()
        utils = _utils()
        master = utils.safe_get_local_fp32_param(param).detach().clone().flatten()
        master[: mask.numel()].mul_(mask)
        utils.safe_set_local_fp32_param(param, master)
        param.ds_tensor.data.flatten()[: mask.numel()].mul_(mask)  # the next forward gathers these
        # persistent parameters (small: below param_persistence_threshold) keep a gathered copy the next forward
        # uses; `ds_persist` is the same on every rank, so every rank joins this gather or none does
        if getattr(param, "ds_persist", False):
            whole = as_dtensor(mask.to(torch.uint8), param).full_tensor().bool()
            if _gathered(param):
                param.data.mul_(whole.view_as(param.data))
        return
    master = full_fp32(param) * mask
    _utils().safe_set_full_fp32_param(param, master)
    param.data.mul_(mask)


def _state_keys(optimizer) -> list[str]:
    """Optimizer state keys holding one value per weight (Adam's exp_avg, exp_avg_sq): the same on every rank."""
    while hasattr(optimizer, "optimizer"):  # accelerate's wrapper, DeepSpeed's ZeRO optimizer
        optimizer = optimizer.optimizer
    keys = set()
    for state in optimizer.state.values():
        keys |= {k for k, v in state.items() if torch.is_tensor(v) and v.numel() > 1}
    return sorted(keys)


@torch.no_grad()
def mask_optimizer_state_(optimizer, param, mask: torch.Tensor) -> None:
    """Zero the partitioned optimizer state (Adam moments) at masked entries. A collective under ZeRO-1/2."""
    utils = _utils()
    for key in _state_keys(optimizer):
        if is_zero3(param):
            value = utils.safe_get_local_optimizer_state(param, key).detach().clone().flatten()
            value[: mask.numel()].mul_(mask.flatten())
            utils.safe_set_local_optimizer_state(param, value, key)
        else:
            value = utils.safe_get_full_optimizer_state(param, key).view(param.shape) * mask
            utils.safe_set_full_optimizer_state(param, value, key)


def whole_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole state dict of a model trained under ZeRO (gathered with `GatheredParameters` under ZeRO-3), on
    CPU, on every rank. A collective."""
    params = [p for p in model.parameters() if is_zero3(p)]
    if not params:
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    import deepspeed

    with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def is_engine(model) -> bool:
    """Whether `model` is a `deepspeed.DeepSpeedEngine` (checked without importing deepspeed)."""
    return any(c.__name__ == "DeepSpeedEngine" for c in type(model).__mro__)


def zero_stage(model: nn.Module) -> int:
    """0 when no ZeRO optimizer trains `model`, else 3 for partitioned parameters and 2 for ZeRO-1/2."""
    params = list(model.parameters())
    if any(is_zero3(p) for p in params):
        return 3
    return 2 if any(is_zero12(p) for p in params) else 0
