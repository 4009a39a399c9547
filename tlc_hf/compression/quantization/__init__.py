"""Quantization: post-training (simulated k-bit, torchao int8, ONNX Runtime int8, bitsandbytes 8/4-bit),
QAT and Quant-Noise."""

from .config import BACKENDS, QuantizationConfig
from .onnx import OnnxModel
from .quantize import quantize
from .simulated import fake_quantize
from .training import QATCallback, QuantNoiseCallback

__all__ = [
    "BACKENDS",
    "OnnxModel",
    "QATCallback",
    "QuantNoiseCallback",
    "QuantizationConfig",
    "fake_quantize",
    "quantize",
]
