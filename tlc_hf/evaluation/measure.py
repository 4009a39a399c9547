"""Measure a saved model: size on disk, parameters, sparsity, bits, task metrics on its test split, latency and
real-text throughput; the library versions and hardware they were measured with. `hub.report` assembles these
into a `CompressionReport`; nothing here renders or pushes."""

from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass, field

import torch

from .bench import (
    benchmark_model,
    compare_latency,
    compare_real_inputs,
    cpu_description,
    parameter_counts,
    size_on_disk_mb,
)


@dataclass
class ModelMeasurement:
    """What was measured of one model. `None` means not measured, and is left out of the JSON."""

    size_mb: float | None = None
    params: int | None = None
    nonzero_params: int | None = None
    sparsity: float | None = None
    bits: int | None = None
    metrics: dict = field(default_factory=dict)
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    throughput_examples_per_s: float | None = None
    # on the real test texts: length-sorted batches padded per batch, and one review at a time
    real_throughput_examples_per_s: float | None = None
    real_batch1_latency_ms_p50: float | None = None
    real_batch1_latency_ms_p95: float | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None and v != {}}


def environment() -> tuple[dict, dict]:
    """Library versions and hardware, as measured now."""
    import accelerate
    import transformers

    from .. import __version__

    versions = {
        "tlc_hf": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "python": platform.python_version(),
    }
    hardware = cpu_description()
    if torch.cuda.is_available():
        hardware["gpu"] = torch.cuda.get_device_name(0)
    return versions, hardware


def measure_model(
    model_dir: str | os.PathLike,
    *,
    task: str | None = None,
    corpus=None,
    evaluate: bool = True,
    bench: bool = True,
    max_examples: int | None = 512,
    batch_size: int = 8,
    seq_len: int = 128,
    runs: int = 10,
    show_progress: bool = False,
) -> tuple[ModelMeasurement, dict]:
    """Load the model in `model_dir` (any tlc_hf-compressed one) and measure it: size on disk, parameters,
    sparsity, bits, task metrics on the test split, latency. Returns the measurement and bench settings."""
    from transformers import AutoTokenizer

    from ..compression.loading import load_compressed
    from .evaluate_model import evaluate_model

    model = load_compressed(str(model_dir))
    measurement = ModelMeasurement(size_mb=round(size_on_disk_mb(model_dir), 4))
    settings = {}
    if evaluate:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        result = evaluate_model(model, tokenizer, task, corpus, max_examples=max_examples, show_progress=show_progress)
        measurement.metrics = {
            k: v for k, v in result.items() if k not in ("task", "split", "examples", "data", "data_note")
        }
        settings["eval_split"], settings["eval_examples"] = result["split"], result["examples"]
    numbers = benchmark_model(model, batch_size=batch_size, seq_len=seq_len, runs=runs) if bench else None
    counts = parameter_counts(model)
    measurement.params, measurement.nonzero_params = counts["params_total"], counts["params_nonzero"]
    measurement.sparsity, measurement.bits = round(counts["sparsity"], 6), counts["bits"]
    if numbers is not None:
        measurement.latency_ms_p50 = round(numbers["latency_ms_p50"], 3)
        measurement.latency_ms_p95 = round(numbers["latency_ms_p95"], 3)
        measurement.throughput_examples_per_s = round(numbers["throughput_examples_per_s"], 3)
        settings.update({k: numbers[k] for k in ("batch_size", "seq_len", "runs", "rounds", "device")})
    if bench and evaluate and not getattr(model.config, "is_encoder_decoder", False):
        _measure_real_inputs(measurement, settings, model, tokenizer, corpus, batch_size)
    return measurement, settings


def _measure_real_inputs(measurement, settings, model, tokenizer, corpus, batch_size, single_examples=64) -> None:
    """Real-text throughput and batch-1 latency (`compare_real_inputs`) on the evaluated test split."""
    from ..data.identity import resolve_data

    texts = (corpus if corpus is not None else resolve_data(model)[0].load())["test"]["text"]
    timed = compare_real_inputs(
        {"model": model}, {"model": tokenizer}, texts, batch_size=batch_size, single_examples=single_examples, rounds=1
    )["model"]
    measurement.real_throughput_examples_per_s = round(timed["throughput_examples_per_s"], 3)
    measurement.real_batch1_latency_ms_p50 = round(timed["batch1_latency_ms_p50"], 3)
    measurement.real_batch1_latency_ms_p95 = round(timed["batch1_latency_ms_p95"], 3)
    settings.update(real_examples=timed["examples"], real_mean_tokens=round(timed["mean_tokens"], 2))


def interleaved_speedup(
    baseline_dir, model_dir, *, batch_size: int = 8, seq_len: int = 128, runs: int = 10, **_
) -> float:
    """Latency of `baseline_dir`'s model over `model_dir`'s, the two timed interleaved on the same inputs (a
    ratio from one run, which separate runs cannot give on a noisy machine). Other `measure_model` keywords
    are ignored, so its settings can be passed as they are."""
    from ..compression.loading import load_compressed

    models = {"baseline": load_compressed(str(baseline_dir)), "compressed": load_compressed(str(model_dir))}
    timed = compare_latency(
        models,
        batch_size=batch_size,
        seq_len=seq_len,
        rounds=runs,
    )
    return timed["compressed"]["speedup"]
