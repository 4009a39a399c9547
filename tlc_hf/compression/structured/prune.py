"""Rank attention heads and FFN neurons, and physically remove the least important ones."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable

import torch
from torch import nn

from ..record import record_compression
from ..sharding import defer_to_whole_, detect_engine, full, full_grad, local, mask_weight_, numel, shard_of
from .config import StructuredPruningConfig
from .t5 import make_pruned_t5_attention, unprune_t5_attention_
from .units import AttentionUnit, FFNUnit, current_heads, current_neurons, get_module, model_units, set_module


# ---- importance ----------------------------------------------------------------------------------------
def _rows(weight: torch.Tensor, size: int) -> torch.Tensor:
    """Per-unit L2 norm over groups of `size` output rows (of the whole weight, gathered when sharded)."""
    weight = full(weight).detach().float()  # whole: a ZeRO-3 parameter is an empty placeholder
    return weight.view(-1, size, weight.shape[1]).pow(2).sum(dim=(1, 2))


def _cols(weight: torch.Tensor, size: int) -> torch.Tensor:
    weight = full(weight).detach().float()
    return weight.view(weight.shape[0], -1, size).pow(2).sum(dim=(0, 2))


def magnitude_importance(model: nn.Module, attention: list[AttentionUnit], ffn: list[FFNUnit]):
    """L2 norm of each head's q/k/v rows and o columns; of each neuron's input rows and output column."""
    heads = [
        (
            sum(_rows(get_module(model, p).weight, u.head_dim) for p in (u.q, u.k, u.v))
            + _cols(get_module(model, u.o).weight, u.head_dim)
        ).sqrt()
        for u in attention
    ]
    neurons = [
        (
            sum(_rows(get_module(model, p).weight, 1) for p in u.inputs) + _cols(get_module(model, u.output).weight, 1)
        ).sqrt()
        for u in ffn
    ]
    return heads, neurons


def taylor_importance_from_grads(model: nn.Module, attention: list[AttentionUnit], ffn: list[FFNUnit]):
    """|dL/dm| for a mask m scaling each head's / neuron's output (Michel et al. 2019), from the current
    .grad of the output projections: sum over the unit's o columns of grad * weight."""

    def unit_sums(path: str, size: int) -> torch.Tensor:
        module = get_module(model, path)
        grad = full_grad(module.weight)  # DeepSpeed keeps its gradients itself (`.grad` is None there)
        if grad is None:
            return torch.zeros(module.in_features // size)
        product = grad.detach().float() * full(module.weight).detach().float()
        return product.view(module.out_features, -1, size).sum(dim=(0, 2)).abs()

    return [unit_sums(u.o, u.head_dim) for u in attention], [unit_sums(u.output, 1) for u in ffn]


def gradient_importance(model: nn.Module, batches: Iterable[dict], num_batches: int, attention, ffn):
    """Taylor importance accumulated over `num_batches` batches (each a dict with labels)."""
    was_training = model.training
    model.eval()
    heads = [torch.zeros(current_heads(model, u)) for u in attention]
    neurons = [torch.zeros(current_neurons(model, u)) for u in ffn]
    seen = 0
    device = next(model.parameters()).device
    for batch in batches:
        if seen == num_batches:
            break
        model.zero_grad(set_to_none=True)
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        loss = model(**batch).loss
        if loss is None:
            raise ValueError("importance='gradient' needs batches with labels (the model returned no loss)")
        loss.backward()
        batch_heads, batch_neurons = taylor_importance_from_grads(model, attention, ffn)
        heads = [a + b for a, b in zip(heads, batch_heads, strict=True)]
        neurons = [a + b for a, b in zip(neurons, batch_neurons, strict=True)]
        seen += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    if seen == 0:
        raise ValueError("importance='gradient' got no batches; pass a dataloader with at least one batch")
    return heads, neurons


# ---- which units to keep ---------------------------------------------------------------------------------
def plan_keep(scores: list[torch.Tensor], fraction: float, uniform: bool, groups: list[str | None] | None = None):
    """Indices to keep per unit after removing `fraction` of all units (at least one kept per layer).

    Non-uniform: one global ranking of per-layer-normalized scores, so layers lose different counts.
    Uniform: every layer loses the same count; units sharing a group (a T5 stack's self-attention, which
    shares one relative-position bias) keep the same indices, so a config can describe the result.
    """
    sizes = [len(s) for s in scores]
    total_drop = round(fraction * sum(sizes))
    if uniform:
        drops = [min(round(fraction * n), n - 1) for n in sizes]
        keep = [
            torch.topk(s, n - d).indices.sort().values.tolist() for s, n, d in zip(scores, sizes, drops, strict=True)
        ]
        for group in {g for g in groups or [] if g is not None}:
            members = [i for i, g in enumerate(groups) if g == group]
            if len({sizes[i] for i in members}) == 1:
                summed = sum(scores[i] / (scores[i].norm() + 1e-12) for i in members)
                shared = torch.topk(summed, sizes[members[0]] - drops[members[0]]).indices.sort().values.tolist()
                for i in members:
                    keep[i] = shared
        return keep
    normalized = [s / (s.norm() + 1e-12) for s in scores]
    flat = torch.cat(normalized)
    order = torch.argsort(flat).tolist()  # lowest first
    owner = [i for i, n in enumerate(sizes) for _ in range(n)]
    offsets = [0, *itertools.accumulate(sizes)]
    dropped = [set() for _ in sizes]
    budget = total_drop
    for position in order:
        if budget == 0:
            break
        unit = owner[position]
        if len(dropped[unit]) < sizes[unit] - 1:
            dropped[unit].add(position - offsets[unit])
            budget -= 1
    return [[j for j in range(n) if j not in dropped[i]] for i, n in enumerate(sizes)]


# ---- physical removal ------------------------------------------------------------------------------------
def _slice_linear(model: nn.Module, path: str, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None):
    old = get_module(model, path)
    weight = old.weight.detach()
    if rows is not None:
        weight = weight.index_select(0, rows.to(weight.device))
    if cols is not None:
        weight = weight.index_select(1, cols.to(weight.device))
    new = nn.Linear(
        weight.shape[1], weight.shape[0], bias=old.bias is not None, device=weight.device, dtype=weight.dtype
    )
    with torch.no_grad():
        new.weight.copy_(weight)
        if old.bias is not None:
            bias = old.bias.detach()
            new.bias.copy_(bias.index_select(0, rows.to(bias.device)) if rows is not None else bias)
    new.requires_grad_(old.weight.requires_grad)
    set_module(model, path, new)


def _head_rows(kept: list[int], head_dim: int) -> torch.Tensor:
    return torch.tensor([h * head_dim + j for h in kept for j in range(head_dim)], dtype=torch.long)


def remove_heads_(model: nn.Module, unit: AttentionUnit, kept: list[int]) -> None:
    rows = _head_rows(kept, unit.head_dim)
    for path in (unit.q, unit.k, unit.v):
        _slice_linear(model, path, rows=rows)
    _slice_linear(model, unit.o, cols=rows)
    module = get_module(model, unit.name)
    if hasattr(module, "key_value_proj_dim"):  # T5: bias columns must follow the kept heads
        already = getattr(module, "kept_head_indices", None) or list(range(unit.original_heads))
        make_pruned_t5_attention(module, [already[h] for h in kept], unit.original_heads)


def remove_neurons_(model: nn.Module, unit: FFNUnit, kept: list[int]) -> None:
    index = torch.tensor(kept, dtype=torch.long)
    for path in unit.inputs:
        _slice_linear(model, path, rows=index)
    _slice_linear(model, unit.output, cols=index)


def make_native_if_possible_(model: nn.Module, attention: list[AttentionUnit], ffn: list[FFNUnit]) -> bool:
    """Where the config can describe the pruned shapes, make it so (plain `from_pretrained` then works).

    BERT-like: equal FFN width in every layer and no head removed -> `intermediate_size`.
    T5/mT5: equal heads everywhere with each stack's self-attention keeping the same head indices, and
    equal FFN width -> `num_heads`, `d_ff`, and the relative-position bias sliced to the kept heads.
    """
    config = model.config
    widths = {current_neurons(model, u) for u in ffn}
    heads = {current_heads(model, u) for u in attention}
    if len(widths) != 1 or len(heads) != 1:
        return False
    if config.model_type in ("t5", "mt5"):
        for group in {u.group for u in attention if u.group}:
            kept = {
                tuple(get_module(model, u.name).kept_head_indices)
                for u in attention
                if u.group == group and hasattr(get_module(model, u.name), "kept_head_indices")
            }
            if len(kept) > 1:
                return False
        (n_heads,) = heads
        for module in (get_module(model, u.name) for u in attention):
            if hasattr(module, "kept_head_indices"):
                if module.has_relative_attention_bias:
                    bias = module.relative_attention_bias
                    new = nn.Embedding(
                        bias.num_embeddings, n_heads, device=bias.weight.device, dtype=bias.weight.dtype
                    )
                    with torch.no_grad():
                        new.weight.copy_(bias.weight.index_select(1, module.kept_heads))
                    module.relative_attention_bias = new
                unprune_t5_attention_(module, n_heads)
        (config.d_ff,) = widths
        config.num_heads = n_heads
        return True
    if heads != {attention[0].original_heads}:
        return False  # BERT derives head size from hidden_size / num_heads: fewer heads is not expressible
    (config.intermediate_size,) = widths
    return True


def _base_relative(model: nn.Module, path: str) -> str:
    """`path` relative to the base model (e.g. "encoder.layer.0..." for "bert.encoder.layer.0..."), so the
    layout fits every head class built on the same base (AutoModel, ...ForSequenceClassification, ...)."""
    prefix = getattr(model, "base_model_prefix", "")
    if prefix and getattr(model, "base_model", model) is not model and path.startswith(prefix + "."):
        return path[len(prefix) + 1 :]
    return path


def layout_of(model: nn.Module, attention: list[AttentionUnit], ffn: list[FFNUnit]) -> dict:
    """What `restore_layout_` needs to rebuild the shapes: Linear shapes and T5 kept heads, by module
    path relative to the base model. Only modules whose shape changed are listed."""
    shapes = {}
    for unit in attention:
        for path in (unit.q, unit.k, unit.v, unit.o):
            shapes[_base_relative(model, path)] = list(get_module(model, path).weight.shape)
    for unit in ffn:
        for path in (*unit.inputs, unit.output):
            shapes[_base_relative(model, path)] = list(get_module(model, path).weight.shape)
    kept, originals = {}, {}
    for unit in attention:
        module = get_module(model, unit.name)
        if hasattr(module, "kept_head_indices"):
            kept[_base_relative(model, unit.name)] = list(module.kept_head_indices)
            originals[_base_relative(model, unit.name)] = unit.original_heads
    return {"linear_shapes": shapes, "t5_kept_heads": kept, "original_heads": originals}


def restore_layout_(model: nn.Module, layout: dict) -> None:
    """Give a freshly built model the pruned shapes of `layout` (weights are loaded afterwards).

    Paths are resolved against the model's base model; paths the model does not have (the decoder of a
    T5 stack being built, the encoder-only half of a seq2seq checkpoint) are skipped. Idempotent.
    """
    root = getattr(model, "base_model", model)
    for path, shape in layout.get("linear_shapes", {}).items():
        old = _find(root, path)
        if old is None:
            continue
        if not isinstance(old, nn.Linear):
            raise ValueError(f"layout path {path!r} is a {type(old).__name__}, not a Linear layer")
        out_features, in_features = _checked_shape(path, shape, old)
        if tuple(old.weight.shape) != (out_features, in_features):
            new = nn.Linear(
                in_features, out_features, bias=old.bias is not None, dtype=old.weight.dtype, device=old.weight.device
            )
            set_module(root, path, new)
    for path, kept in layout.get("t5_kept_heads", {}).items():
        module = _find(root, path)
        if module is not None and not hasattr(module, "key_value_proj_dim"):
            raise ValueError(f"layout path {path!r} is a {type(module).__name__}, not a T5 attention layer")
        if module is not None and getattr(module, "kept_head_indices", None) != kept:
            make_pruned_t5_attention(module, kept, layout["original_heads"][path])


def _find(root: nn.Module, path: str) -> nn.Module | None:
    """The submodule at `path` (a dotted path of module names only), or None where the model has none."""
    if not isinstance(path, str) or not all(
        part.isidentifier() and not part.startswith("_") or part.isdigit() for part in path.split(".")
    ):
        raise ValueError(f"layout path {path!r} is not a module path (names and layer numbers only)")
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


def _checked_shape(path: str, shape, old: nn.Linear) -> tuple[int, int]:
    """A stored shape may only shrink the module the config builds (a crafted record cannot allocate more)."""
    ok = (
        isinstance(shape, (list, tuple))
        and len(shape) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in shape)
        and 1 <= shape[0] <= old.out_features
        and 1 <= shape[1] <= old.in_features
    )
    if not ok:
        raise ValueError(
            f"layout shape {shape!r} of {path!r} does not fit the config's {list(old.weight.shape)}: "
            "a pruned layer has at most the config's size"
        )
    return shape[0], shape[1]


def prune_structured_(
    model: nn.Module,
    heads: float | None = None,
    ffn: float | None = None,
    importance: str | None = None,
    dataloader: Iterable[dict] | None = None,
    config: StructuredPruningConfig | None = None,
    **config_kwargs,
) -> dict:
    """Remove the `heads` fraction of attention heads and the `ffn` fraction of FFN neurons, in place.

    Units are ranked by `importance` ("magnitude": weight norms; "gradient": |dL/dmask| from
    `config.num_batches` batches of `dataloader`, after Michel et al. 2019) and physically removed, so
    the model has fewer parameters and runs faster. Per-layer counts may differ (one global ranking)
    unless `uniform=True`; a layer always keeps at least one head and one neuron. Where the result is
    expressible in the config it is (plain `from_pretrained` loads it); otherwise save it with
    `save_compressed` and load it with `load_compressed`. Returns counts before and after.
    On a sharded model (FSDP2, DeepSpeed ZeRO) the units are zeroed on the shards and removed when the model is
    gathered whole (`tlc_hf.training.save_whole`); `params_after` and `native` are then None.
    """
    overrides = {k: v for k, v in (("heads", heads), ("ffn", ffn), ("importance", importance)) if v is not None}
    config = dataclasses.replace(config or StructuredPruningConfig(), **overrides, **config_kwargs)
    attention_units, ffn_units = model_units(model)
    params_before = sum(numel(p) for p in model.parameters())  # a ZeRO-3 parameter is an empty placeholder
    if config.importance == "gradient":
        if dataloader is None:
            raise ValueError("importance='gradient' needs dataloader=... (a few batches with labels)")
        head_scores, neuron_scores = gradient_importance(
            model, dataloader, config.num_batches, attention_units, ffn_units
        )
    else:
        head_scores, neuron_scores = magnitude_importance(model, attention_units, ffn_units)
    groups = [u.group for u in attention_units]
    head_keep = plan_keep(head_scores, config.heads, config.uniform, groups) if config.heads > 0 else None
    neuron_keep = plan_keep(neuron_scores, config.ffn, config.uniform) if config.ffn > 0 else None
    heads_per_layer = [len(k) for k in head_keep] if head_keep else [current_heads(model, u) for u in attention_units]
    neurons_per_layer = (
        [len(k) for k in neuron_keep] if neuron_keep else [current_neurons(model, u) for u in ffn_units]
    )
    native = finish_plan_(model, config, head_keep, neuron_keep)
    return {
        "params_before": params_before,
        "params_after": None if native is None else sum(p.numel() for p in model.parameters()),
        "heads_per_layer": heads_per_layer,
        "ffn_per_layer": neurons_per_layer,
        "native": native,
    }


def finish_plan_(model: nn.Module, config: StructuredPruningConfig, head_keep, neuron_keep) -> bool | None:
    """Remove the units not kept, record the layout; returns whether the config describes the result.

    A sharded model (FSDP2, DeepSpeed ZeRO) cannot change its parameters' shapes: the dropped units are zeroed
    on the shards (and DeepSpeed's fp32 masters) now (their output columns, so the model computes what the pruned
    one will) and removed on the whole model when it is gathered (`save_whole` / `gather_whole`); returns None
    (decided then).
    """
    attention, ffn = model_units(model)
    if detect_engine(model) in ("fsdp2", "deepspeed"):
        zero_dropped_units_(model, attention, ffn, head_keep, neuron_keep)
        defer_to_whole_(model, lambda whole: finish_plan_(whole, config, head_keep, neuron_keep))
        return None
    apply_plan_(model, attention, ffn, head_keep, neuron_keep)
    native = make_native_if_possible_(model, attention, ffn)
    record_compression(model, config, layout=layout_of(model, attention, ffn), native=native)
    return native


def unit_mask(module: nn.Linear, columns: torch.Tensor) -> torch.Tensor:
    """A keep-mask of `columns` over the whole weight of `module`, as this rank holds it (`shard_of`: the FSDP2
    rows, the ZeRO-3 flat chunk, the whole weight otherwise).

    Args:
        module: the unit's output projection (plain, FSDP2-sharded or ZeRO).
        columns: a bool keep-mask over its input columns (`unit_columns`).

    Example:
        ```python
        mask = unit_mask(layer.output.dense, unit_columns(model, unit, kept=[0, 2]))
        ```
    """
    whole = columns.to(torch.bool).expand(module.out_features, module.in_features)
    return shard_of(whole, module.weight).to(local(module.weight).device)


def unit_columns(model: nn.Module, unit: AttentionUnit | FFNUnit, kept: list[int]) -> torch.Tensor:
    """Keep-mask over the input columns of the unit's output projection (whole columns: a shard has them all)."""
    if isinstance(unit, AttentionUnit):
        columns = torch.zeros(get_module(model, unit.o).in_features, dtype=torch.bool)
        columns[_head_rows(kept, unit.head_dim)] = True
        return columns
    columns = torch.zeros(get_module(model, unit.output).in_features, dtype=torch.bool)
    columns[kept] = True
    return columns


@torch.no_grad()
def zero_dropped_units_(model, attention_units, ffn_units, head_keep, neuron_keep) -> None:
    """Zero the output columns of the units not kept (on each rank's shard of the output projection)."""
    for units, keeps in ((attention_units, head_keep), (ffn_units, neuron_keep)):
        for unit, kept in zip(units, keeps or [], strict=False):
            module = get_module(model, unit.o if isinstance(unit, AttentionUnit) else unit.output)
            mask_weight_(module.weight, unit_mask(module, unit_columns(model, unit, kept)))


def apply_plan_(model, attention_units, ffn_units, head_keep, neuron_keep) -> None:
    for unit, kept in zip(attention_units, head_keep or [None] * len(attention_units), strict=True):
        if kept is not None and len(kept) < current_heads(model, unit):
            remove_heads_(model, unit, kept)
    for unit, kept in zip(ffn_units, neuron_keep or [None] * len(ffn_units), strict=True):
        if kept is not None and len(kept) < current_neurons(model, unit):
            remove_neurons_(model, unit, kept)
