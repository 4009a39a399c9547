"""Compression during or after training: one folder per method, shared machinery in base.py."""

from .base import (
    COMPRESSION_CONFIG_NAME,
    CompressionCallback,
    CompressionConfig,
    ramp_value,
    register_method,
    registered_methods,
)
from .drophead import DropHeadCallback, drophead_rate
from .loading import load_compressed, save_compressed
from .magnitude import MagnitudePruningCallback, MagnitudePruningConfig, prune_magnitude_
from .masks import sparsity_report
from .movement import MovementPruningCallback, MovementPruningConfig
from .quantization import (
    OnnxModel,
    QATCallback,
    QuantizationConfig,
    QuantNoiseCallback,
    quantize,
)
from .structured import StructuredPruningCallback, StructuredPruningConfig, prune_structured_
from .targets import SUPPORTED_MODEL_TYPES, find_targets

__all__ = [
    "COMPRESSION_CONFIG_NAME",
    "SUPPORTED_MODEL_TYPES",
    "CompressionCallback",
    "CompressionConfig",
    "DropHeadCallback",
    "MovementPruningCallback",
    "MovementPruningConfig",
    "OnnxModel",
    "QATCallback",
    "QuantNoiseCallback",
    "QuantizationConfig",
    "quantize",
    "StructuredPruningCallback",
    "drophead_rate",
    "MagnitudePruningCallback",
    "MagnitudePruningConfig",
    "StructuredPruningConfig",
    "find_targets",
    "load_compressed",
    "save_compressed",
    "prune_magnitude_",
    "prune_structured_",
    "ramp_value",
    "register_method",
    "registered_methods",
    "sparsity_report",
]
