"""Quantization: post-training (simulated k-bit, torchao int8, ONNX Runtime int8, bitsandbytes 8/4-bit),
QAT and Quant-Noise."""

import dataclasses

from ..base import CliOption, CompressionMethod, register_method
from .callback import QATCallback, QuantNoiseCallback
from .config import BACKENDS, QuantizationConfig
from .onnx_modeling import (
    OnnxModel,
    OnnxModelForFeatureExtraction,
    OnnxModelForMaskedLM,
    OnnxModelForSequenceClassification,
    OnnxModelForTokenClassification,
)
from .quantize import quantize
from .simulated import fake_quantize

__all__ = [
    "BACKENDS",
    "OnnxModel",
    "OnnxModelForFeatureExtraction",
    "OnnxModelForMaskedLM",
    "OnnxModelForSequenceClassification",
    "OnnxModelForTokenClassification",
    "QATCallback",
    "QuantNoiseCallback",
    "QuantizationConfig",
    "fake_quantize",
    "quantize",
]


def _post_training(config):
    return dataclasses.replace(config, qat=False)


def _apply(model, config, context):
    return quantize(model, _post_training(config), **_calibration(config, context))


def _finalize(model, config, context):
    if config.qat and config.backend == "simulated":
        return model  # QAT already left the weights on the simulated grid
    return quantize(model, _post_training(config), **_calibration(config, context))


def _calibration(config, context) -> dict:
    """Static int8 (OpenVINO) calibrates on the recipe's training texts with its (possibly trimmed) tokenizer."""
    if config.backend != "openvino":
        return {}
    return {"tokenizer": context.tokenizer, "calibration": context.train_texts()}


def _describe(record: dict) -> str:
    if record.get("backend") == "simulated":
        return (
            f"simulated {record.get('bits')}-bit: weights rounded to a {record.get('bits')}-bit grid but stored "
            "in float, so neither smaller nor faster (an accuracy-vs-bits measurement)"
        )
    kind = "QAT, then " if record.get("qat") else ""
    return f"{kind}{record.get('bits')}-bit with {record.get('backend')}"


_PRODUCES = {
    "simulated": "float",
    "torchao": "quantized",
    "bitsandbytes": "quantized",
    "onnxruntime": "onnx",
    "openvino": "onnx",
}


def _from_cli(args):
    backend = args.quantize
    if args.export == "onnx":
        if backend not in (None, "onnxruntime"):
            raise ValueError(f"--export onnx is ONNX Runtime int8; it does not combine with --quantize {backend}")
        backend = "onnxruntime"
    if backend is None:
        return None
    if backend == "auto" and args.weight_only:
        backend = "torchao"  # weight-only int8 is a torchao mode
    return QuantizationConfig(backend=backend, bits=args.bits, weight_only=args.weight_only)


register_method(
    CompressionMethod(
        config_class=QuantizationConfig,
        apply=_apply,
        callback=lambda config: QATCallback(config) if config.qat else None,
        finalize=_finalize,
        describe=_describe,
        trains=lambda config: config.qat,
        produces=lambda config: _PRODUCES[config.backend],
        cli=(
            CliOption(
                "quantize",
                "post-training quantization backend; auto = the fastest on this machine (CPU: onnxruntime)",
                choices=BACKENDS + ("auto",),
            ),
            CliOption("bits", "weight bits (8; 4 for bitsandbytes nf4/fp4; 2-8 simulated)", type=int, default=8),
            CliOption("weight_only", "torchao: int8 weights, float activations", action="store_true"),
            CliOption("export", "onnx = ONNX Runtime int8 for CPU serving", choices=("onnx",)),
        ),
        from_cli=_from_cli,
        cli_order=90,
    )
)
