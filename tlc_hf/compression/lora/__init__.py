"""LoRA recovery after compression (through peft): win back accuracy lost to pruning or quantization.

Float models (pruned, simulated-quantized) get the adapter merged back; masked zeros are zeroed again
after the merge so the sparsity stays exact. Models whose weights a backend holds (torchao, bitsandbytes)
keep the adapter beside them in `adapter/`, which `load_compressed` applies.
"""

from __future__ import annotations

from ..base import CompressionMethod, register_method
from .config import LoraRecoveryConfig
from .recover import ADAPTER_DIR, add_lora, can_merge, merge_keeping_zeros, recover_lora

__all__ = ["ADAPTER_DIR", "LoraRecoveryConfig", "add_lora", "can_merge", "merge_keeping_zeros", "recover_lora"]


def _describe(record: dict) -> str:
    where = "merged into the weights" if record.get("merged") else "kept as an adapter beside the weights"
    return f"LoRA recovery fine-tuning (r={record.get('r')}), {where}"


register_method(
    CompressionMethod(
        config_class=LoraRecoveryConfig,
        finalize=recover_lora,
        requires=lambda config: {"tokenizer"},
        describe=_describe,
        trains=lambda config: True,
        produces=lambda config: "float",
        accepts=("float", "quantized"),
    )
)
