"""Latency, throughput, size on disk, parameters and bits of a model, measured, with medians over runs."""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter

import torch
from transformers import PreTrainedModel

WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".bin", ".pt")


def size_on_disk_mb(directory: str | os.PathLike) -> float:
    """Megabytes (1e6 bytes) of weight files in `directory` (safetensors, ONNX; configs not counted)."""
    total = 0
    for root, _, files in os.walk(directory):
        if os.path.basename(root).startswith("checkpoint-"):
            continue
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if f.endswith(WEIGHT_SUFFIXES))
    return total / 1e6


def parameter_counts(model: torch.nn.Module) -> dict:
    """Total and nonzero parameters, sparsity, and bits per weight: the quantization backend's bits where
    one was applied (simulated k-bit weights are still stored in float, so their storage bits count)."""
    if not hasattr(model, "parameters"):
        return model.parameter_counts() if hasattr(model, "parameter_counts") else {}  # an ONNX graph
    dense = [_dense_view(p) for p in model.parameters()]
    total = sum(d.numel() for d in dense)
    nonzero = sum(int((d != 0).sum()) for d in dense)
    bits = Counter()
    for p in model.parameters():
        bits[p.element_size() * 8] += p.numel()
    return {
        "params_total": total,
        "params_nonzero": nonzero,
        "sparsity": 1 - nonzero / total if total else 0.0,
        "bits": _quantized_bits(model) or (bits.most_common(1)[0][0] if bits else None),
    }


@torch.no_grad()
def _dense_view(parameter: torch.Tensor) -> torch.Tensor:
    """The weights a parameter stands for: dequantized for torchao tensors and packed bitsandbytes 4-bit
    (whose storage holds two weights per byte), the tensor itself otherwise."""
    data = parameter.data
    quant_state = getattr(parameter, "quant_state", None)
    if quant_state is not None:  # bitsandbytes Params4bit
        import bitsandbytes.functional as bnb_functional

        return bnb_functional.dequantize_4bit(data, quant_state)
    if type(data) is not torch.Tensor and hasattr(data, "dequantize"):  # torchao tensor subclasses
        return data.dequantize()
    return data


def _quantized_bits(model) -> int | None:
    from ..compression.record import compression_history

    records = [r for r in compression_history(model) if r.get("method") == "quantization"]
    real = [r for r in records if r.get("backend") not in (None, "simulated")]
    return real[-1].get("bits", 8) if real else None


def _inputs(model: PreTrainedModel, batch_size: int, seq_len: int, seed: int, vocab: int | None = None) -> dict:
    generator = torch.Generator().manual_seed(seed)
    vocab = vocab or model.config.vocab_size
    ids = torch.randint(min(5, vocab - 1), vocab, (batch_size, seq_len), generator=generator)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if getattr(model.config, "is_encoder_decoder", False):
        batch["decoder_input_ids"] = ids[:, : max(1, seq_len // 4)]
    return {k: v.to(_device_of(model)) for k, v in batch.items()}


def _device_of(model) -> torch.device:
    """Where a model's weights are; an ONNX Runtime model (no parameters) runs on CPU here."""
    return next(model.parameters()).device if hasattr(model, "parameters") else torch.device("cpu")


def _check_positive_ints(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive int")


def check_seq_len(model, seq_len: int) -> None:
    """`seq_len` fits the model's position embeddings (encoder-decoders have none to overrun)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if limit is not None and seq_len > limit:
        raise ValueError(
            f"seq_len={seq_len} (--seq_len) is longer than the model's max_position_embeddings ({limit}); "
            f"give at most {limit}"
        )


def benchmark_model(
    model: PreTrainedModel,
    *,
    batch_size: int = 8,
    seq_len: int = 128,
    runs: int = 20,
    warmup: int = 3,
    rounds: int = 3,
    model_dir: str | None = None,
    seed: int = 0,
) -> dict:
    """Forward-pass latency (p50 / p95 in ms, each the median over `rounds` rounds of `runs` timed calls,
    after `warmup` untimed calls), throughput in examples/s, parameters (total, nonzero), bits, and
    size on disk of `model_dir` if given. On CUDA the device is synchronized around each call. A
    seq2seq model is timed on an encoder pass plus a decoder pass of seq_len / 4 tokens."""
    _check_positive_ints(batch_size=batch_size, seq_len=seq_len, runs=runs, rounds=rounds)
    check_seq_len(model, seq_len)
    model.eval()
    inputs = _inputs(model, batch_size, seq_len, seed)
    device = _device_of(model)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    p50s, p95s = [], []
    with torch.inference_mode():
        for _ in range(warmup):
            model(**inputs)
        for _ in range(rounds):
            times = []
            for _ in range(runs):
                sync()
                start = time.perf_counter()
                model(**inputs)
                sync()
                times.append(time.perf_counter() - start)
            times.sort()
            p50s.append(statistics.median(times))
            p95s.append(times[min(len(times) - 1, round(0.95 * (len(times) - 1)))])
    p50, p95 = statistics.median(p50s), statistics.median(p95s)
    result = {
        "latency_ms_p50": p50 * 1e3,
        "latency_ms_p95": max(p95, p50) * 1e3,
        "throughput_examples_per_s": batch_size / p50,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "runs": runs,
        "rounds": rounds,
        "device": str(device),
        **parameter_counts(model),
    }
    if model_dir is not None:
        result["size_on_disk_mb"] = size_on_disk_mb(model_dir)
    return result


_CPU_FLAGS = (
    "avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "neon", "asimddp"
)  # fmt: skip
_INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def has_int8_dot_product() -> bool:
    """Whether this x86 CPU multiplies u8 x s8 without saturating (VNNI or AMX). Without it (AVX2 alone),
    ONNX Runtime's int8 kernels add pairs of u8 x s8 products in 16 bits, which saturate on full 8-bit
    weights: per-channel int8 logits of a tiny BERT were 0.081 off fp32 here (0.008 with 7-bit weights).
    Other architectures (ARM's dot-product kernels) count as having it."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return True
    return any(flag in _INT8_DOT_FLAGS for flag in cpu_description()["cpu_flags"])


def cpu_description() -> dict:
    """The CPU model, the instruction-set flags int8 / bf16 kernels depend on, and the threads torch uses:
    printed with every latency figure, since the same benchmark differs between machines of one kind."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu": model,
        "cpu_flags": [f for f in _CPU_FLAGS if f in flags],
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }


def compare_latency(
    models: dict, *, batch_size: int = 8, seq_len: int = 128, rounds: int = 10, calls: int = 3, seed: int = 0
) -> dict:
    """Interleaved forward-pass latency of several models on the same inputs: each round times `calls`
    calls of every model in turn, so machine noise (other jobs, frequency changes) hits all of them alike.

    Args:
        models: name -> model (a `PreTrainedModel` or an `OnnxModel`); the first is the reference.
        rounds, calls: rounds of interleaving, calls averaged per model per round.

    Returns:
        name -> {"latency_ms": median over rounds, "speedup": reference latency / this latency}.

    Example:
        ```python
        compare_latency({"fp32": model, "int8": OnnxModel.from_pretrained("out/int8")})
        ```
    """
    if not models:
        raise ValueError("compare_latency needs at least one model")
    _check_positive_ints(batch_size=batch_size, seq_len=seq_len, rounds=rounds, calls=calls)
    first = next(iter(models.values()))
    vocab = min(model.config.vocab_size for model in models.values())  # ids every model has (trimmed vocabularies)
    inputs = {k: v.cpu() for k, v in _inputs(first, batch_size, seq_len, seed, vocab).items()}
    feeds = {name: {k: v.to(_device_of(model.eval())) for k, v in inputs.items()} for name, model in models.items()}
    times = {name: [] for name in models}
    with torch.inference_mode():
        for name, model in models.items():  # warm-up: one-time packing, allocator growth
            model(**feeds[name])
            model(**feeds[name])
        for _ in range(rounds):
            for name, model in models.items():
                start = time.perf_counter()
                for _ in range(calls):
                    model(**feeds[name])
                times[name].append((time.perf_counter() - start) / calls)
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    reference = next(iter(medians.values()))
    return {name: {"latency_ms": ms, "speedup": reference / ms} for name, ms in medians.items()}


def real_input_batches(tokenizer, texts, batch_size: int = 8, max_length: int = 128) -> list[dict]:
    """`texts` tokenized (truncated to `max_length`), sorted by length and cut into batches of `batch_size`, each
    padded to its own longest example (dynamic padding): how a server batches a queue of requests."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    order = sorted(range(len(texts)), key=lambda i: len(encoded["input_ids"][i]))
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batches.append(tokenizer.pad({k: [encoded[k][i] for i in chunk] for k in encoded}, return_tensors="pt"))
    return batches


def compare_real_inputs(
    models: dict,
    tokenizers: dict,
    texts,
    *,
    batch_size: int = 8,
    max_length: int = 128,
    single_examples: int | None = 256,
    rounds: int = 3,
) -> dict:
    """Latency and throughput of several models on real texts, interleaved (each round runs every model in
    turn), tokenization not timed.

    - batch 1: each of `single_examples` texts (evenly spaced over the length-sorted list; None: all) alone,
      unpadded: `batch1_latency_ms_p50` / `_p95` over all calls of all rounds;
    - throughput: all `texts` in length-sorted batches of `batch_size`, padded per batch:
      `throughput_examples_per_s` = texts / the median over rounds of one pass's time.

    Args:
        models: name -> model (a `PreTrainedModel` or an `OnnxModel`); the first is the reference of `speedup`.
        tokenizers: name -> its tokenizer (trimmed vocabularies tokenize with their own).

    Example:
        ```python
        texts = load_corpus()["test"]["text"]
        compare_real_inputs({"int8": model}, {"int8": tokenizer}, texts)["int8"]["throughput_examples_per_s"]
        ```
    """
    texts = list(texts)
    if not models or not texts:
        raise ValueError("compare_real_inputs needs at least one model and one text")
    _check_positive_ints(batch_size=batch_size, max_length=max_length, rounds=rounds)
    batches, singles = {}, {}
    for name in models:
        batches[name] = real_input_batches(tokenizers[name], texts, batch_size, max_length)
        ones = real_input_batches(tokenizers[name], texts, 1, max_length)
        step = 1 if single_examples is None else max(1, len(ones) // single_examples)
        singles[name] = ones[::step][: single_examples or None]
    return compare_batches(models, batches, singles, rounds=rounds)


def compare_batches(models: dict, batches: dict, singles: dict, *, rounds: int = 3) -> dict:
    """The timing of `compare_real_inputs` on batches already built (per model: its batches, padded per batch,
    and its single examples): interleaved rounds, each runs every model's singles then its batches once.

    Args:
        models: name -> model to time (put in eval mode here); the first is the speedup's baseline.
        batches: name -> that model's list of padded batches (dicts of tensors, `input_ids` included).
        singles: name -> that model's list of single-example inputs (may be empty).
        rounds: interleaved timing rounds (a positive int); the medians are taken over them.

    Returns:
        name -> batch-1 p50 / p95 (ms), throughput (examples/s over the median pass), `serving_ms` (the median
        round's singles + pass: the time to serve this mix) and the throughput speedup against the first model.

    Example:
        ```python
        compare_batches({"int8": model}, {"int8": [batch]}, {"int8": [one]})["int8"]["serving_ms"]
        ```
    """
    if not models:
        raise ValueError("compare_batches needs at least one model")
    _check_positive_ints(rounds=rounds)
    examples = sum(len(b["input_ids"]) for b in next(iter(batches.values())))
    calls = {name: [] for name in models}
    passes = {name: [] for name in models}
    served = {name: [] for name in models}
    with torch.inference_mode():
        for name, model in models.items():  # warm-up: the longest batch and one short call
            model.eval()(**batches[name][-1])
            if singles[name]:
                model(**singles[name][0])
        for _ in range(rounds):
            for name, model in models.items():
                round_start = time.perf_counter()
                for one in singles[name]:
                    start = time.perf_counter()
                    model(**one)
                    calls[name].append(time.perf_counter() - start)
                start = time.perf_counter()
                for batch in batches[name]:
                    model(**batch)
                passes[name].append(time.perf_counter() - start)
                served[name].append(time.perf_counter() - round_start)
    tokens = [int(b["attention_mask"].sum()) for b in next(iter(batches.values()))]
    padded = [b["attention_mask"].numel() for b in next(iter(batches.values()))]
    results = {}
    for name in models:
        times = sorted(calls[name]) or [float("nan")]
        results[name] = {
            "batch1_latency_ms_p50": statistics.median(times) * 1e3,
            "batch1_latency_ms_p95": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))] * 1e3,
            "throughput_examples_per_s": examples / statistics.median(passes[name]),
            "serving_ms": statistics.median(served[name]) * 1e3,
        }
    reference = next(iter(results.values()))["throughput_examples_per_s"]
    for name, row in results.items():
        row["throughput_speedup"] = row["throughput_examples_per_s"] / reference
        row.update(
            examples=examples,
            batch_size=len(next(iter(batches.values()))[0]["input_ids"]),
            mean_tokens=sum(tokens) / examples,
            padding_share=1 - sum(tokens) / sum(padded),
            batch1_examples=len(singles[name]),
            rounds=rounds,
        )
    return results
