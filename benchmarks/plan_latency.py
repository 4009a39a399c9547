"""Is the planner's latency the real model's? `tlc-hf plan` times a randomly initialised model of a compressed
shape through the backend the recipe deploys with (`planning/latency.py`); here that figure is set against the
real compressed model of the same shape, on this CPU:

  minilm      the real all-MiniLM-L6-v2 through `cpu-int8` (ONNX Runtime int8) against the planner's shape of
              it, batch 1 x 128: as the planner reports it (`measure_latency`, its own run) beside the real
              model's `benchmark_model` p50 (as the old slow test compared them), and both timed interleaved
              in one loop (`compare_latency`), which a shared CPU moves less;
  tiny-depth  a tiny BERT (4 layers of 64) with half its layers cut, ONNX Runtime int8, batch 1 x 64,
              interleaved (the tiny test's setup).

Ratios are predicted / real (1.0 = the planner is right; the old test's bound was 15%). Timings only mean
something with the CPU to itself:

    flock /tmp/tlc_cpu.lock python benchmarks/plan_latency.py [--rounds 5] [--out benchmarks/results/plan_latency.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from tlc_hf import CompressionRecipe, OnnxModel, benchmark_model, save_compressed  # noqa: E402
from tlc_hf.compression.depth import DepthPruningConfig, prune_depth_  # noqa: E402
from tlc_hf.compression.quantization import QuantizationConfig, quantize  # noqa: E402
from tlc_hf.evaluation import compare_latency, cpu_description  # noqa: E402
from tlc_hf.modeling import build_model  # noqa: E402
from tlc_hf.planning import compressed_config, deployment_of  # noqa: E402
from tlc_hf.planning.latency import measure_latency, shape_model  # noqa: E402
from tlc_hf.testing import tiny_config  # noqa: E402


def minilm(work: Path, rounds: int) -> dict:
    """The real MiniLM through cpu-int8 against the planner's shape of it, batch 1 x 128."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from tlc_hf.pretrained import minilm_dir

    recipe = CompressionRecipe.load("cpu-int8")
    deployment = deployment_of(recipe)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2).eval()
    save_compressed(quantize(model, recipe.methods[0]), work / "minilm")
    real = OnnxModel.from_pretrained(work / "minilm")
    config = compressed_config(AutoConfig.from_pretrained(minilm_dir(), num_labels=2), recipe)
    settings = dict(batch_size=1, seq_len=128, runs=20, rounds=rounds)
    planner = measure_latency(config, "classification", deployment, **settings)  # what `tlc-hf plan` reports
    measured = benchmark_model(real, warmup=2, **settings)
    predicted = shape_model(config, "classification", deployment)
    timed = compare_latency({"real": real, "predicted": predicted}, batch_size=1, seq_len=128, rounds=4 * rounds)
    return {
        "planner_ms": planner["latency_ms"],
        "real_ms_p50": measured["latency_ms_p50"],
        "separate_ratio": planner["latency_ms"] / measured["latency_ms_p50"],
        "interleaved_real_ms": timed["real"]["latency_ms"],
        "interleaved_predicted_ms": timed["predicted"]["latency_ms"],
        "interleaved_ratio": timed["predicted"]["latency_ms"] / timed["real"]["latency_ms"],
        "batch_size": 1,
        "seq_len": 128,
    }


def tiny_depth(work: Path, rounds: int) -> dict:
    """A tiny BERT with half its layers cut, ONNX Runtime int8, against the planner's shape of it."""
    recipe = CompressionRecipe.from_yaml(
        "methods: [{method: depth, layers: 0.5}, {method: quantization, backend: onnxruntime}]"
    )
    config = tiny_config("bert", vocab_size=1000, hidden_size=64, num_hidden_layers=4)
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(config), "classification", num_labels=2).eval()
    with torch.no_grad():  # every weight differs, as after training (no folded constants)
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    prune_depth_(model, DepthPruningConfig(layers=0.5))
    save_compressed(quantize(model, QuantizationConfig(backend="onnxruntime")), work / "tiny")
    real = OnnxModel.from_pretrained(work / "tiny")
    predicted = shape_model(compressed_config(config, recipe), "classification", deployment_of(recipe))
    timed = compare_latency({"real": real, "predicted": predicted}, batch_size=1, seq_len=64, rounds=4 * rounds)
    return {
        "interleaved_real_ms": timed["real"]["latency_ms"],
        "interleaved_predicted_ms": timed["predicted"]["latency_ms"],
        "interleaved_ratio": timed["predicted"]["latency_ms"] / timed["real"]["latency_ms"],
        "batch_size": 1,
        "seq_len": 64,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the planner's timing (x4 interleaved)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/plan_latency.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = cpu_description()
    print(f"{cpu['cpu']} ({', '.join(cpu['cpu_flags']) or 'no AVX-512/VNNI'}), {args.threads} threads")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {"tiny-depth": tiny_depth(Path(tmp), args.rounds), "minilm": minilm(Path(tmp), args.rounds)}
    m, t = rows["minilm"], rows["tiny-depth"]
    print(
        f"minilm cpu-int8, 1 x 128: planner {m['planner_ms']:.2f} ms vs real p50 {m['real_ms_p50']:.2f} ms "
        f"(separate runs, ratio {m['separate_ratio']:.3f}); interleaved predicted {m['interleaved_predicted_ms']:.2f}"
        f" ms vs real {m['interleaved_real_ms']:.2f} ms (ratio {m['interleaved_ratio']:.3f})"
    )
    print(
        f"tiny-depth int8, 1 x 64: interleaved predicted {t['interleaved_predicted_ms']:.3f} ms vs real "
        f"{t['interleaved_real_ms']:.3f} ms (ratio {t['interleaved_ratio']:.3f})"
    )
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "hardware": cpu,
        "threads": args.threads,
        "rounds": args.rounds,
        "wall_s": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
