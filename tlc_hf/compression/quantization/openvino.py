"""OpenVINO static int8: the fp32 ONNX export converted to OpenVINO, weights and activations quantized by
nncf with ranges calibrated on real texts (`onnx_modeling.OpenVinoRuntime` runs the result)."""

from __future__ import annotations

import os
import tempfile

from .onnx_modeling import OPENVINO_NAME

CALIBRATION_TEXTS = 300


def calibration_batches(tokenizer, texts, max_length: int = 128, batch_size: int = 8) -> list[dict]:
    """The first `CALIBRATION_TEXTS` of `texts` as padded int64 batches of the graph's inputs."""
    import numpy as np

    texts = list(texts)[:CALIBRATION_TEXTS]
    if not texts:
        raise ValueError("OpenVINO int8 calibrates on texts; got none")
    batches = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(
            texts[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        batches.append({name: encoded[name].astype(np.int64) for name in ("input_ids", "attention_mask")})
    return batches


def export_openvino_int8(model, directory: str, batches: list[dict]) -> str:
    """Export `model` to ONNX, convert it to OpenVINO, quantize it to int8 with nncf (transformer preset: the
    matrix multiplies in int8, activation ranges calibrated on `batches`), write `openvino_model.xml` (+ `.bin`)
    into `directory` and return its path."""
    import nncf
    import openvino as ov

    from .onnx import export_onnx_fp32

    path = os.path.join(directory, OPENVINO_NAME)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = ov.convert_model(export_onnx_fp32(model, os.path.join(tmp, "fp32.onnx")))
        quantized = nncf.quantize(
            fp32, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(batches)
        )
        ov.save_model(quantized, path, compress_to_fp16=False)
    return path
