"""`tlc_hf.quantize(model, config)`: one post-training API over the simulated, torchao, ONNX Runtime and
bitsandbytes backends."""

from __future__ import annotations

import copy
import dataclasses
import logging
import tempfile

import torch

from ..record import compression_history, record_compression, set_compression_history
from ..targets import find_targets
from .config import QuantizationConfig
from .simulated import fake_quantize

logger = logging.getLogger(__name__)
BNB_SKIP_MODULES = ["classifier", "lm_head", "cls", "pooler", "qa_outputs", "score"]


def quantize(model, config: QuantizationConfig | None = None, *, tokenizer=None, calibration=None, **config_kwargs):
    """Quantize `model` with `config.backend` and return the quantized model.

    "simulated" works in place (the same object comes back); "torchao" and "bitsandbytes" return a new
    transformers model (the input is left as it was); "onnxruntime" and "openvino" return an `OnnxModel` (the
    `OnnxModelFor*` class of the model's head). Save any of them with `save_compressed`, load with
    `load_compressed` or, after `import tlc_hf`, plain `AutoModelFor*.from_pretrained` / `pipeline`.

    Args:
        tokenizer, calibration: "openvino" quantizes activations statically, so it calibrates their ranges:
            on `calibration`, a list of texts (default: the first 300 training texts of the data recorded in the
            model) tokenized with `tokenizer`, or a list of input batches (dicts of `input_ids`, `attention_mask`).

    Example:
        ```python
        onnx = quantize(model, QuantizationConfig(backend="onnxruntime"))
        onnx(**tokenizer(["a fine film"], return_tensors="pt")).logits
        ```
    """
    config = dataclasses.replace(config or QuantizationConfig(), **config_kwargs)
    config.require_backend()
    if config.backend == "simulated":
        quantize_simulated_(model, config)
        return model
    if config.backend == "onnxruntime":
        quantized = _onnx(model, per_channel=config.granularity == "per_channel")
    elif config.backend == "openvino":
        quantized = _openvino(model, tokenizer, calibration)
    else:
        quantized = _from_pretrained_with(model, _hf_quantization_config(model, config))
    record_compression(quantized, config)  # on a copy of the config (from_pretrained or the export's)
    if config.compile and config.backend == "torchao":
        quantized.forward = torch.compile(quantized.forward)  # the module itself still saves as usual
    return quantized


@torch.no_grad()
def quantize_simulated_(model, config: QuantizationConfig) -> dict:
    targets = find_targets(model, config.target_modules, config.include_embeddings, config.include_head)
    errors = {}
    for name, module in targets.items():
        quantized = fake_quantize(module.weight, config.bits, config.granularity, config.symmetric)
        errors[name] = float((quantized - module.weight).pow(2).mean())
        module.weight.copy_(quantized)
    record_compression(model, config)
    return errors


def _hf_quantization_config(model, config: QuantizationConfig):
    if config.backend == "torchao":
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig
        from transformers import TorchAoConfig

        return TorchAoConfig(Int8WeightOnlyConfig() if config.weight_only else Int8DynamicActivationInt8WeightConfig())
    from transformers import BitsAndBytesConfig

    if config.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=BNB_SKIP_MODULES)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=config.bnb_4bit_type,
        bnb_4bit_compute_dtype=torch.float32,
        llm_int8_skip_modules=BNB_SKIP_MODULES + _unpackable_for_4bit(model),
    )


def _unpackable_for_4bit(model, rows: int = 32, blocksize: int = 64) -> list[str]:
    """Linear layers bitsandbytes' CPU 4-bit kernel cannot pack (out_features not a multiple of 32 or
    in_features not a multiple of its block size 64, as structured pruning leaves them): they stay in
    float, and the log says how many."""
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and (module.out_features % rows or module.in_features % blocksize)
    ]
    if names:
        logger.warning(
            "bitsandbytes 4-bit keeps %d Linear layers in float (shapes its CPU kernel cannot pack)", len(names)
        )
    return names


def _from_pretrained_with(model, quantization_config):
    """Quantize through transformers' own loading path, so the result saves and reloads with plain
    `from_pretrained`. The fp32 weights stay in a temporary folder held by the model: bitsandbytes models
    are re-quantized from it on save (a CPU forward pass repacks their weights in place, and a model saved
    after one would reload wrong)."""
    source = tempfile.TemporaryDirectory(prefix="tlc_hf_fp32_")
    model.save_pretrained(source.name)
    device = next(model.parameters()).device
    quantized = (
        type(model)
        .from_pretrained(source.name, quantization_config=quantization_config, device_map=str(device))
        .eval()
    )
    quantized._tlc_fp32_source = source
    quantized._tlc_quantization_config = quantization_config
    return quantized


def requantized_for_saving(model):
    """A freshly quantized copy of a bitsandbytes model (see `_from_pretrained_with`), else the model."""
    source = getattr(model, "_tlc_fp32_source", None)
    config = getattr(model, "_tlc_quantization_config", None)
    if source is None or type(config).__name__ != "BitsAndBytesConfig":
        return model
    fresh = type(model).from_pretrained(source.name, quantization_config=config, device_map="cpu")
    set_compression_history(fresh, compression_history(model), **_extras(model))
    return fresh


def _extras(model) -> dict:
    from ..record import compression_record

    return {k: v for k, v in compression_record(model.config).items() if k not in ("methods", "format_version")}


def _onnx(model, per_channel: bool):
    from .onnx import export_onnx_int8

    _check_exportable(model, "onnxruntime")
    holder = tempfile.TemporaryDirectory(prefix="tlc_hf_onnx_")
    return _exported(model, export_onnx_int8(model, holder.name, per_channel=per_channel), holder)


def _openvino(model, tokenizer, calibration):
    from .openvino import calibration_batches, export_openvino_int8

    _check_exportable(model, "openvino")
    if calibration and isinstance(calibration[0], dict):
        batches = list(calibration)
    else:
        if tokenizer is None:
            raise ValueError(
                "backend='openvino' calibrates int8 activations on texts: pass tokenizer=... to quantize (or "
                "calibration=[input batches])"
            )
        if calibration is None:
            from ...data.identity import resolve_data

            calibration = resolve_data(model)[0].load()["train"]["text"]
        batches = calibration_batches(tokenizer, calibration)
    holder = tempfile.TemporaryDirectory(prefix="tlc_hf_openvino_")
    return _exported(model, export_openvino_int8(model, holder.name, batches), holder)


def _check_exportable(model, backend: str) -> None:
    if getattr(model.config, "is_encoder_decoder", False):
        raise ValueError(
            f"backend={backend!r} exports encoder models (BERT, RoBERTa, XLM-R); {type(model).__name__} cannot be "
            "exported: torch.onnx's exporter fails on T5/mT5 with this torch/transformers. Use backend='torchao' "
            "or 'bitsandbytes' for T5/mT5."
        )


def _exported(model, path: str, holder):
    from .onnx_modeling import class_for_config

    config = copy.deepcopy(model.config)
    config.architectures = [type(model).__name__]
    exported = class_for_config(config)(path, config)
    exported._holder = holder  # the temporary folder lives as long as the model
    return exported
