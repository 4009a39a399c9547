"""Which layers go (`layers_to_keep`) and their removal (`prune_depth_`); `teacher_layer_of` for distillation."""

from __future__ import annotations

from torch import nn

from ..record import compression_history, record_compression
from ..targets import SUPPORTED_MODEL_TYPES
from .config import DepthPruningConfig


def layers_to_keep(count: int, config: DepthPruningConfig, first_is_required: bool = False) -> list[int]:
    """The 0-based indices of the layers that stay in a stack of `count` layers."""
    if config.keep is not None:
        bad = [i for i in config.keep if i >= count]
        if bad:
            raise ValueError(f"keep={list(config.keep)}: layers {bad} do not exist in a stack of {count} layers")
        kept = sorted(config.keep)
    else:
        n = max(1, count - round(config.layers * count))
        if config.strategy == "top":
            kept = list(range(n))
        elif config.strategy == "bottom":
            kept = list(range(count - n, count))
        else:  # alternate: evenly spaced, first and last included
            kept = sorted({round(i * (count - 1) / max(1, n - 1)) for i in range(n)}) if n > 1 else [count - 1]
    if first_is_required and 0 not in kept:
        kept = [0] + kept[1:]  # T5's block 0 holds the relative position bias the other blocks share
    return kept


def _stacks(model: nn.Module) -> list[tuple[str, nn.ModuleList, str]]:
    """(path, layer list, config attribute holding its length) for each layer stack of the model."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"model_type={model_type!r} has no depth-pruning rule; supported: {SUPPORTED_MODEL_TYPES}")
    base = model.base_model  # paths relative to it, so AutoModel and every head name the same layers
    names = {id(module): name for name, module in base.named_modules()}
    if model_type in ("t5", "mt5"):
        stacks = [(base.encoder, "num_layers")]
        if hasattr(base, "decoder"):
            stacks.append((base.decoder, "num_decoder_layers"))
        return [(names[id(stack.block)], stack.block, attr) for stack, attr in stacks]
    return [(names[id(base.encoder.layer)], base.encoder.layer, "num_hidden_layers")]


def prune_depth_(model: nn.Module, config: DepthPruningConfig | None = None, **config_kwargs) -> nn.Module:
    """Remove layers in place; records the kept indices on the model. Returns the model.

    Args:
        model: a BERT, RoBERTa, XLM-R, T5 or mT5 model (any head).
        config: a `DepthPruningConfig`; or its fields as keyword arguments.

    Example:
        ```python
        prune_depth_(model, layers=0.5, strategy="alternate")  # 6 layers -> 3 (0, 2/3, 5)
        model.save_pretrained("out")  # AutoModel...from_pretrained("out") builds 3 layers
        ```
    """
    config = config or DepthPruningConfig(**config_kwargs)
    if any(r.get("method") == "structured" and r.get("layout") for r in compression_history(model)):
        raise ValueError(
            "depth pruning after structured pruning would renumber the layers its layout names: "
            "remove layers first (put method 'depth' before 'structured')"
        )
    t5 = model.config.model_type in ("t5", "mt5")
    kept_by_stack = {}
    for path, layers, attribute in _stacks(model):
        kept = layers_to_keep(len(layers), config, first_is_required=t5)
        kept_by_stack[path] = kept
        survivors = [layers[i] for i in kept]
        parent, _, attr = path.rpartition(".")
        setattr(model.base_model.get_submodule(parent), attr, nn.ModuleList(survivors))
        for new_index, layer in enumerate(survivors):
            for module in layer.modules():
                if hasattr(module, "layer_idx"):
                    module.layer_idx = new_index  # caches are indexed by position in the stack
        setattr(model.config, attribute, len(survivors))
    record_compression(model, config, kept=kept_by_stack)
    return model


def teacher_layer_of(model: nn.Module) -> list[int] | None:
    """For a depth-pruned model: the original (1-based, hidden-state) index of each kept layer of its first
    stack, so distillation can map student layer i to the teacher layer it came from."""
    records = [r for r in compression_history(model) if r.get("method") == "depth" and r.get("kept")]
    if not records:
        return None
    kept = next(iter(records[-1]["kept"].values()))
    return [i + 1 for i in kept]
