"""Which int8 CPU runtime is fastest on this machine: measured once per CPU (model, flags, threads, runtime
versions) on a MiniLM-shaped probe serving short texts of varying length, and cached, since the answer differs
between CPUs of one family (VNNI or not, AVX-512 or AVX2). A fixed padded batch is the wrong probe: on an
AVX-512 VNNI EPYC OpenVINO was 1.7x ONNX Runtime at 8 x 128 and 0.6-0.7x on real reviews (README, Serving)."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile

logger = logging.getLogger(__name__)

CPU_RUNTIMES = ("onnxruntime", "openvino")
PROBE = "serving-mix-2"  # in the cache key: a new probe measures again
PROBE_TEXTS, PROBE_SINGLES, PROBE_BATCH = 64, 16, 8


def fastest_cpu_runtime(candidates: tuple[str, ...] | list[str]) -> str:
    """The fastest of `candidates` (installed CPU int8 runtimes) here, from the cache or measured now (about a
    minute, once per CPU): the time a random-weight 4-layer MiniLM-shaped classifier takes to serve short texts
    of varying length, one at a time and in length-sorted batches of 8 (`measure_cpu_runtimes`).

    Example:
        ```python
        fastest_cpu_runtime(["onnxruntime", "openvino"])  # e.g. "openvino"
        ```
    """
    candidates = sorted(candidates)
    if len(candidates) == 1:
        return candidates[0]
    from ...data.cache import cache_key, cache_root

    path = cache_root() / "cpu_runtime" / f"{cache_key(machine=_machine(), candidates=candidates, probe=PROBE)}.json"
    if path.exists():
        return json.loads(path.read_text())["fastest"]
    logger.warning("measuring which int8 runtime is fastest on this CPU (%s), once; cached in %s", candidates, path)
    timed = measure_cpu_runtimes(candidates)
    fastest = min(timed, key=lambda name: timed[name]["serving_ms"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump({"fastest": fastest, "latency": timed, "machine": _machine()}, f, indent=2)
    os.replace(f.name, path)
    return fastest


def measure_cpu_runtimes(candidates, rounds: int = 5) -> dict:
    """Interleaved serving time (`compare_batches`: singles + length-sorted batches) of the probe model quantized
    with each runtime in `candidates` on `probe_inputs`.

    Args:
        candidates: installed CPU int8 runtimes, names from `CPU_RUNTIMES` ("onnxruntime", "openvino").
        rounds: interleaved timing rounds of `compare_batches`.

    Returns:
        runtime -> `compare_batches`'s timings (`serving_ms`, batch-1 p50 / p95, throughput).

    Example:
        ```python
        measure_cpu_runtimes(["onnxruntime", "openvino"])["openvino"]["serving_ms"]
        ```
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from ...evaluation.bench import compare_batches
    from .config import QuantizationConfig
    from .onnx import export_onnx_int8
    from .onnx_modeling import OnnxModel
    from .openvino import export_openvino_int8

    config = BertConfig(
        vocab_size=2000, hidden_size=384, num_hidden_layers=4, num_attention_heads=12, intermediate_size=768
    )
    torch.manual_seed(0)
    probe = BertForSequenceClassification(config).eval()
    batches, singles = probe_inputs(config.vocab_size)
    calibration = [{k: v.numpy() for k, v in batch.items()} for batch in batches[-4:]]
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in candidates:
            QuantizationConfig(backend=name).require_backend()
            os.makedirs(os.path.join(tmp, name))
            if name == "onnxruntime":
                path = export_onnx_int8(probe, os.path.join(tmp, name), per_channel=False)
            else:
                path = export_openvino_int8(probe, os.path.join(tmp, name), calibration)
            models[name] = OnnxModel(path, config)
        return compare_batches(models, dict.fromkeys(models, batches), dict.fromkeys(models, singles), rounds=rounds)


def probe_inputs(vocab_size: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Short texts of varying length as a server sees them: `PROBE_TEXTS` token lengths drawn log-normal around
    24 (4..128; the movie reviews average 27), length-sorted into batches of `PROBE_BATCH` padded per batch, and
    `PROBE_SINGLES` of them alone, unpadded. Random ids: runtimes do not look at the values.

    Args:
        vocab_size: the probe model's vocabulary size (ids are drawn from 5 up to it).
        seed: seed of the lengths and ids (the same inputs for every runtime).

    Returns:
        (batches, singles): lists of `{"input_ids", "attention_mask"}` dicts of torch tensors.

    Example:
        ```python
        batches, singles = probe_inputs(2000)
        len(batches), len(singles)  # (8, 16)
        ```
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    lengths = (torch.randn(PROBE_TEXTS, generator=generator) * 0.6 + math.log(24)).exp().round().clamp(4, 128)
    lengths = sorted(int(n) for n in lengths)

    def encoded(length: int, size: int) -> dict:
        ids = torch.randint(5, vocab_size, (size, length), generator=generator)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    batches = []
    for start in range(0, PROBE_TEXTS, PROBE_BATCH):
        chunk = lengths[start : start + PROBE_BATCH]
        batch = encoded(chunk[-1], len(chunk))
        for row, length in enumerate(chunk):  # padded to the batch's longest
            batch["attention_mask"][row, length:] = 0
        batches.append(batch)
    singles = [encoded(length, 1) for length in lengths[:: PROBE_TEXTS // PROBE_SINGLES]]
    return batches, singles


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
