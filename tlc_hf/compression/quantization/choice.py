"""Which int8 CPU runtime is fastest on this machine: measured once per CPU (model, flags, threads, runtime
versions) on a MiniLM-shaped probe and cached, since the answer differs between CPUs of one family (VNNI or
not, AVX-512 or AVX2)."""

from __future__ import annotations

import json
import logging
import os
import tempfile

logger = logging.getLogger(__name__)

CPU_RUNTIMES = ("onnxruntime", "openvino")


def fastest_cpu_runtime(candidates: tuple[str, ...] | list[str]) -> str:
    """The fastest of `candidates` (installed CPU int8 runtimes) here, from the cache or measured now (about a
    minute, once per CPU) on a random-weight 4-layer MiniLM-shaped classifier at batch 8 x 128.

    Example:
        ```python
        fastest_cpu_runtime(["onnxruntime", "openvino"])  # e.g. "openvino"
        ```
    """
    candidates = sorted(candidates)
    if len(candidates) == 1:
        return candidates[0]
    from ...data.cache import cache_key, cache_root

    path = cache_root() / "cpu_runtime" / f"{cache_key(machine=_machine(), candidates=candidates)}.json"
    if path.exists():
        return json.loads(path.read_text())["fastest"]
    logger.warning("measuring which int8 runtime is fastest on this CPU (%s), once; cached in %s", candidates, path)
    timed = measure_cpu_runtimes(candidates)
    fastest = min(timed, key=lambda name: timed[name]["latency_ms"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump({"fastest": fastest, "latency": timed, "machine": _machine()}, f, indent=2)
    os.replace(f.name, path)
    return fastest


def measure_cpu_runtimes(candidates, rounds: int = 5) -> dict:
    """Interleaved latency (batch 8 x 128) of the probe model quantized with each runtime in `candidates`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from ...evaluation.bench import compare_latency
    from .config import QuantizationConfig
    from .onnx import export_onnx_int8
    from .onnx_modeling import OnnxModel
    from .openvino import export_openvino_int8

    config = BertConfig(
        vocab_size=2000, hidden_size=384, num_hidden_layers=4, num_attention_heads=12, intermediate_size=768
    )
    torch.manual_seed(0)
    probe = BertForSequenceClassification(config).eval()
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(4):
        ids = torch.randint(5, 2000, (8, 64), generator=generator)
        batches.append({"input_ids": ids.numpy(), "attention_mask": torch.ones_like(ids).numpy()})
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in candidates:
            QuantizationConfig(backend=name).require_backend()
            os.makedirs(os.path.join(tmp, name))
            if name == "onnxruntime":
                path = export_onnx_int8(probe, os.path.join(tmp, name), per_channel=False)
            else:
                path = export_openvino_int8(probe, os.path.join(tmp, name), batches)
            models[name] = OnnxModel(path, config)
        return compare_latency(models, rounds=rounds)


def _machine() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from ...evaluation.bench import cpu_description

    versions = {}
    for package in CPU_RUNTIMES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {**cpu_description(), **versions}
