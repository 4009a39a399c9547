"""Latency of a compressed shape, measured: a randomly initialised model of that shape, run through the
backend the recipe deploys with (ONNX Runtime int8 on CPU, or torch in float), on this machine.

No training is needed: a forward pass costs the same whatever the weights hold. The weights are drawn so
that no two tensors are equal (the ONNX exporter folds identical constants, which a trained model never
has), so the exported file also has the size a trained model of that shape would have.
"""

from __future__ import annotations

import copy
import os

import torch

from .shape import Deployment


def shape_model(config, task: str, deployment: Deployment, seed: int = 0, device: str = "cpu"):
    """A runnable model of `config`'s shape in `deployment`'s backend: an `OnnxModel` for "onnx-int8" (kept
    alive with its temporary folder), a float transformers model otherwise.

    Example:
        ```python
        model = shape_model(scale_config("roberta-base", 4, 256), "classification", Deployment("onnx-int8"))
        benchmark_model(model, batch_size=1, seq_len=128)
        ```
    """
    from ..compression.quantization import QuantizationConfig, quantize
    from ..modeling import build_model

    generator = torch.Generator().manual_seed(seed)
    model = build_model(copy.deepcopy(config), task, num_labels=getattr(config, "num_labels", 2)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            parameter.add_(0.02 * noise)
    if deployment.format == "onnx-int8":
        return quantize(model, QuantizationConfig(backend="onnxruntime", granularity=deployment.granularity))
    return model.to(device)


def measure_latency(
    config,
    task: str,
    deployment: Deployment,
    *,
    batch_size: int = 1,
    seq_len: int = 128,
    runs: int = 10,
    rounds: int = 3,
    device: str = "cpu",
    seed: int = 0,
) -> dict:
    """Forward-pass latency (median of `rounds` medians of `runs` calls, `bench.benchmark_model`) of a random
    model of `config`'s shape in `deployment`'s backend, and for ONNX the bytes of the exported file.

    Returns:
        {"latency_ms", "latency_ms_p95", "backend", "batch_size", "seq_len", "file_bytes" (ONNX only)}.
    """
    from ..evaluation.bench import benchmark_model

    model = shape_model(config, task, deployment, seed=seed, device=device)
    measured = benchmark_model(model, batch_size=batch_size, seq_len=seq_len, runs=runs, rounds=rounds, warmup=2)
    result = {
        "latency_ms": measured["latency_ms_p50"],
        "latency_ms_p95": measured["latency_ms_p95"],
        "backend": "onnxruntime-int8" if deployment.format == "onnx-int8" else f"torch-{device}",
        "batch_size": batch_size,
        "seq_len": seq_len,
    }
    if deployment.format == "onnx-int8":
        result["file_bytes"] = os.path.getsize(model.path)
    return result
