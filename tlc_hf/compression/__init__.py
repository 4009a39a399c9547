"""Compression during or after training: one entry point (`compress_`), one folder per method, shared
machinery in base.py (the registry), context.py (what methods need) and compress.py (the entry point).

Every method folder has the same shape: `config.py` (what is asked), the work itself (`prune.py`,
`quantize.py`, `recover.py`, `trainer.py`), `callback.py` where it acts while training, and `__init__.py`,
which registers the method's hooks (apply / callback / finalize / trainer / restore) and its card line.

Names are imported lazily, so importing one method does not import every backend.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "CliOption": ".base",
    "CompressionCallback": ".base",
    "CompressionConfig": ".base",
    "CompressionMethod": ".base",
    "all_methods": ".base",
    "get_method": ".base",
    "ramp_value": ".base",
    "register_config": ".base",
    "register_method": ".base",
    "registered_methods": ".base",
    "CompressionContext": ".context",
    "CompressionResult": ".compress",
    "compress_": ".compress",
    "DistillationTrainer": ".distillation",
    "DistillationSeq2SeqTrainer": ".distillation",
    "LoraRecoveryConfig": ".lora",
    "compression_history": ".record",
    "record_compression": ".record",
    "DropHeadCallback": ".drophead",
    "DropHeadConfig": ".drophead",
    "drophead_rate": ".drophead",
    "load_compressed": ".loading",
    "save_compressed": ".loading",
    "MagnitudePruningCallback": ".magnitude",
    "MagnitudePruningConfig": ".magnitude",
    "prune_magnitude_": ".magnitude",
    "sparsity_report": ".masks",
    "MovementPruningCallback": ".movement",
    "MovementPruningConfig": ".movement",
    "OnnxModel": ".quantization",
    "QATCallback": ".quantization",
    "QuantizationConfig": ".quantization",
    "QuantNoiseCallback": ".quantization",
    "quantize": ".quantization",
    "StructuredPruningCallback": ".structured",
    "StructuredPruningConfig": ".structured",
    "prune_structured_": ".structured",
    "DepthPruningConfig": ".depth",
    "prune_depth_": ".depth",
    "SUPPORTED_MODEL_TYPES": ".targets",
    "find_targets": ".targets",
    "DistillationConfig": ".distillation",
    "VocabularyConfig": ".vocabulary",
    "prune_vocabulary_": ".vocabulary",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tlc_hf.compression' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
