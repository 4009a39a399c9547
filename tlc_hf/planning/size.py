"""The deployed size of a model shape, computed exactly from its parameter list: bits, scales, sparsity.

Built on the meta device (no memory, no weights). What each format stores, per tensor:
  - safetensors: every parameter (tied ones once) in its float dtype; sparse storage keeps the pruned Linear
    weights as a 1-bit mask + their nonzero values (`tlc_hf.compression.storage`);
  - onnx-int8 (ONNX Runtime `quantize_dynamic`): every matrix in 1 byte (embeddings through Gather, Linear
    weights through MatMul) with a 4-byte scale + 1-byte zero point per tensor, or per output column with
    per-channel scales; biases and norms stay float32; the int64 index buffers (position / token type ids)
    become initializers too.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .shape import Deployment

_SCALE_BYTES = 4 + 1  # float32 scale + int8/uint8 zero point


def build_meta_model(config, task: str) -> nn.Module:
    from ..modeling import build_model

    with torch.device("meta"):
        return build_model(config, task, num_labels=getattr(config, "num_labels", 2))


def deployed_weight_bytes(config, task: str, deployment: Deployment | None = None) -> dict:
    """Bytes of the weights a model of `config` (built for `task`) stores in `deployment`'s format.

    Args:
        config: the compressed shape (see `compressed_config`).
        task: "classification", "mlm" or "seq2seq" (the head counts too).
        deployment: the storage format (default: float safetensors).

    Returns:
        {"bytes": total, "params": parameters, "by_kind": {"matrices", "vectors", "scales", "buffers", "masks"}}.

    Example:
        ```python
        deployed_weight_bytes(scale_config("roberta-base", 6, 384), "classification", Deployment("onnx-int8"))
        ```
    """
    deployment = deployment or Deployment()
    model = build_meta_model(config, task)
    embedding_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    linear_outputs = {id(m.weight): m.out_features for m in model.modules() if isinstance(m, nn.Linear)}
    pruned = _pruned_weights(model, deployment)
    kinds = dict.fromkeys(("matrices", "vectors", "scales", "buffers", "masks"), 0)
    params = 0
    for parameter in model.parameters():  # tied parameters once
        numel = parameter.numel()
        params += numel
        if deployment.format == "onnx-int8":
            if parameter.dim() >= 2:
                kinds["matrices"] += numel
                per_channel = deployment.granularity == "per_channel" and id(parameter) not in embedding_weights
                columns = linear_outputs.get(id(parameter), parameter.shape[0]) if per_channel else 1
                kinds["scales"] += _SCALE_BYTES * columns
            else:
                kinds["vectors"] += 4 * numel
        elif id(parameter) in pruned:
            density = 1.0 - deployment.sparsity
            kinds["masks"] += math.ceil(numel / 8)
            kinds["matrices"] += parameter.element_size() * round(numel * density)
        else:
            kinds["matrices" if parameter.dim() >= 2 else "vectors"] += parameter.element_size() * numel
    if deployment.format == "onnx-int8":
        integer_buffers = [b for _, b in model.named_buffers() if not b.is_floating_point()]
        kinds["buffers"] = sum(b.numel() * b.element_size() for b in integer_buffers)
    return {"bytes": int(sum(kinds.values())), "params": int(params), "by_kind": kinds}


def _pruned_weights(model: nn.Module, deployment: Deployment) -> set[int]:
    if not deployment.sparse_storage:
        return set()
    from ..compression.targets import find_targets

    return {id(module.weight) for module in find_targets(model).values()}
