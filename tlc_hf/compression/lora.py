"""LoRA recovery after compression (through peft): win back accuracy lost to pruning or quantization.

Float models (pruned, simulated-quantized) get the adapter merged back; masked zeros are zeroed again
after the merge so the sparsity stays exact. Models whose weights a backend holds (torchao, bitsandbytes)
keep the adapter beside them in `adapter/`, which `load_compressed` applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .base import CompressionConfig, CompressionMethod, register_config, register_method

ADAPTER_DIR = "adapter"


@register_config
@dataclass
class LoraRecoveryConfig(CompressionConfig):
    method = "lora_recovery"
    r: int = field(default=8, metadata={"help": "LoRA rank."})
    alpha: int = field(default=16, metadata={"help": "LoRA alpha (scaling = alpha / r)."})
    dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    target_modules: list | None = field(default=None, metadata={"help": "Module names; default: peft's per model."})
    budget: str | None = field(default="30s", metadata={"help": "Wall-clock budget of the recovery fine-tuning."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Learning rate of the adapter."})
    merged: bool | None = field(default=None, metadata={"help": "Filled in: merged into the weights or kept."})

    def validate(self) -> None:
        if not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"r={self.r!r} must be a positive int")
        if self.budget is not None:
            from ..budget.duration import parse_duration

            parse_duration(self.budget, "budget")


def can_merge(model) -> bool:
    return getattr(model, "hf_quantizer", None) is None


def add_lora(model, config: LoraRecoveryConfig, task: str):
    from peft import LoraConfig, TaskType, get_peft_model

    # On backend-held weights the adapter carries LoRA weights only: with a task type peft would also copy
    # the (quantized) classifier into the adapter, which cannot be saved.
    task_type = (
        {"classification": TaskType.SEQ_CLS, "seq2seq": TaskType.SEQ_2_SEQ_LM}.get(task) if can_merge(model) else None
    )
    lora = LoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=config.target_modules,
        task_type=task_type,
    )
    return get_peft_model(model, lora)


@torch.no_grad()
def merge_keeping_zeros(peft_model):
    """Merge the adapter; weights that were exactly zero (pruned) are zero again afterwards."""
    base = peft_model.get_base_model()
    zeros = {  # inside peft a wrapped Linear's weight is `<name>.base_layer.weight`
        name.replace(".base_layer.", "."): p == 0
        for name, p in base.named_parameters()
        if p.dim() >= 2 and "lora_" not in name and (p == 0).any()
    }
    merged = peft_model.merge_and_unload()
    for name, p in merged.named_parameters():
        if name in zeros:
            p.masked_fill_(zeros[name], 0.0)
    return merged


def _describe(record: dict) -> str:
    where = "merged into the weights" if record.get("merged") else "kept as an adapter beside the weights"
    return f"LoRA recovery fine-tuning (r={record.get('r')}), {where}"


register_method(
    CompressionMethod(
        config_class=LoraRecoveryConfig,
        describe=_describe,
        trains=lambda config: True,
        produces=lambda config: "float",
        accepts=("float", "quantized"),
    )
)
