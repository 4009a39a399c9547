"""CPU latency and size on disk of each quantization backend against fp32, BERT-base shape, batch 8 x 128.

All models run interleaved in one process; prints latency ratios (backend / fp32, lower is faster) and size
ratios (fp32 / backend, higher is smaller), and writes JSON.

    python benchmarks/quantize_cpu.py [--repeats 10] [--compile]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from tlc_hf import QuantizationConfig, quantize, save_compressed
from tlc_hf.evaluation import size_on_disk_mb

BACKENDS = {
    "torchao_int8_dynamic": dict(backend="torchao"),
    "torchao_int8_weight_only": dict(backend="torchao", weight_only=True),
    "onnxruntime_int8": dict(backend="onnxruntime"),
    "bitsandbytes_int8": dict(backend="bitsandbytes", bits=8),
    "bitsandbytes_nf4": dict(backend="bitsandbytes", bits=4),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--compile", action="store_true", help="also time torchao int8 under torch.compile")
    parser.add_argument("--out", default="benchmarks/results/quantize_cpu.json")
    cli = parser.parse_args()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    torch.manual_seed(0)
    fp32 = BertForSequenceClassification(BertConfig(num_labels=2)).eval()
    models, sizes = {"fp32": fp32}, {}
    with tempfile.TemporaryDirectory() as tmp:
        save_compressed(fp32, f"{tmp}/fp32")
        sizes["fp32"] = size_on_disk_mb(f"{tmp}/fp32")
        for name, settings in BACKENDS.items():
            print(f"quantizing: {name}")
            models[name] = quantize(fp32, QuantizationConfig(**settings))
            save_compressed(models[name], f"{tmp}/{name}")
            sizes[name] = size_on_disk_mb(f"{tmp}/{name}")
    if cli.compile:
        models["torchao_int8_dynamic_compiled"] = torch.compile(models["torchao_int8_dynamic"])
        sizes["torchao_int8_dynamic_compiled"] = sizes["torchao_int8_dynamic"]
    ids = torch.randint(1000, 20000, (cli.batch, cli.seq))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    times = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():  # warm-up (and compilation)
            model(**inputs)
            model(**inputs)
        for _ in range(cli.repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(**inputs)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = {
        name: {
            "latency_ms": round(medians[name] * 1e3, 1),
            "latency_ratio_vs_fp32": round(medians[name] / medians["fp32"], 3),
            "speedup_vs_fp32": round(medians["fp32"] / medians[name], 2),
            "size_mb": round(sizes[name], 1),
            "size_ratio_fp32_over": round(sizes["fp32"] / sizes[name], 2),
        }
        for name in models
    }
    for name, row in rows.items():
        print(
            f"{name:32s} {row['latency_ms']:8.1f} ms  x{row['latency_ratio_vs_fp32']:.2f} latency "
            f"({row['speedup_vs_fp32']:.2f}x faster)  {row['size_mb']:7.1f} MB  {row['size_ratio_fp32_over']:.2f}x smaller"
        )
    Path(cli.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cli.out).write_text(
        json.dumps(
            {
                "benchmark": "quantize_cpu",
                "shape": "bert-base",
                "batch": cli.batch,
                "seq": cli.seq,
                "repeats": cli.repeats,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
