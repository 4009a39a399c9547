"""The prunable units of each architecture: attention heads (q/k/v/o) and FFN neurons (in/out Linear)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..targets import SUPPORTED_MODEL_TYPES


@dataclass
class AttentionUnit:
    name: str  # path of the module that owns the heads (for T5 the T5Attention)
    q: str
    k: str
    v: str
    o: str
    head_dim: int
    group: str | None = None  # T5 self-attention shares its relative-position bias across a stack
    original_heads: int = 0


@dataclass
class FFNUnit:
    name: str
    inputs: list[str] = field(default_factory=list)  # rows are neurons
    output: str = ""  # columns are neurons


def get_module(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path)


def set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, attr = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)


def model_units(model: nn.Module) -> tuple[list[AttentionUnit], list[FFNUnit]]:
    """Attention and FFN units of a BERT, RoBERTa, XLM-R, T5 or mT5 model (any head on top)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"model_type={model_type!r} has no structured-pruning rule; supported: {SUPPORTED_MODEL_TYPES}"
        )
    names = {id(module): name for name, module in model.named_modules()}
    base = model.base_model
    attention, ffn = [], []
    if model_type in ("t5", "mt5"):
        stacks = [("encoder", base.encoder)] + ([("decoder", base.decoder)] if hasattr(base, "decoder") else [])
        for stack_name, stack in stacks:
            for block in stack.block:
                self_attn = block.layer[0].SelfAttention
                attention.append(_t5_unit(names[id(self_attn)], self_attn, group=names[id(stack)]))
                if stack_name == "decoder":
                    cross = block.layer[1].EncDecAttention
                    attention.append(_t5_unit(names[id(cross)], cross, group=None))
                dense = block.layer[-1].DenseReluDense
                prefix = names[id(dense)]
                inputs = ["wi_0", "wi_1"] if hasattr(dense, "wi_0") else ["wi"]
                ffn.append(FFNUnit(prefix, [f"{prefix}.{n}" for n in inputs], f"{prefix}.wo"))
    else:
        for layer in base.encoder.layer:
            prefix = names[id(layer.attention)]
            self_attn = layer.attention.self
            head_dim = self_attn.attention_head_size
            attention.append(
                AttentionUnit(
                    prefix,
                    f"{prefix}.self.query",
                    f"{prefix}.self.key",
                    f"{prefix}.self.value",
                    f"{prefix}.output.dense",
                    head_dim,
                    None,
                    self_attn.query.out_features // head_dim,
                )
            )
            layer_prefix = names[id(layer)]
            ffn.append(FFNUnit(layer_prefix, [f"{layer_prefix}.intermediate.dense"], f"{layer_prefix}.output.dense"))
    return attention, ffn


def _t5_unit(name: str, module: nn.Module, group: str | None) -> AttentionUnit:
    original = getattr(module, "original_heads", module.n_heads)
    return AttentionUnit(
        name, f"{name}.q", f"{name}.k", f"{name}.v", f"{name}.o", module.key_value_proj_dim, group, original
    )


def current_heads(model: nn.Module, unit: AttentionUnit) -> int:
    return get_module(model, unit.q).out_features // unit.head_dim


def current_neurons(model: nn.Module, unit: FFNUnit) -> int:
    return get_module(model, unit.output).in_features
