"""Which CPU inference path is fastest for a real model: the ways to export and quantize all-MiniLM-L6-v2,
timed interleaved against torch fp32 in one process (batch 8 x 128, 2 threads by default).

Paths: ONNX fp32 and dynamic int8 from the SDPA and the eager attention graphs (dynamo exporter), int8 with
per-channel weights, ONNX Runtime's transformer fusion (`onnxruntime.transformers.optimizer`) then int8,
torchao int8 dynamic, and the structured-pruned (50% heads, 50% FFN) model exported as such. The path
tlc_hf uses (`QuantizationConfig(backend="onnxruntime")`) is the one marked `tlc_hf`.

    python benchmarks/cpu_paths.py [--rounds 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch

import tlc_hf  # noqa: F401
from tlc_hf import OnnxModel, QuantizationConfig, prune_structured_, quantize
from tlc_hf.compression.quantization.onnx import ONNX_NAME, export_onnx_fp32, export_onnx_int8
from tlc_hf.evaluation import compare_latency, cpu_description


def int8(source: str, target: str, **options) -> str:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}  # fused graphs hold ops shape inference cannot type
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, extra_options=extra, **options)
    return target


def fused(source: str, target: str, heads: int, hidden: int) -> str:
    from onnxruntime.transformers import optimizer

    optimized = optimizer.optimize_model(source, model_type="bert", num_heads=heads, hidden_size=hidden)
    print("  fusion:", {k: v for k, v in optimized.get_fused_operator_statistics().items() if v})
    optimized.save_model_to_file(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/cpu_paths.json")
    cli = parser.parse_args()
    torch.set_num_threads(cli.threads)
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from tlc_hf.pretrained import minilm_dir

    def fresh():
        torch.manual_seed(0)
        return AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2).eval()

    base = fresh()
    config = AutoConfig.from_pretrained(minilm_dir())
    models, sizes = {"torch fp32": base}, {}
    with tempfile.TemporaryDirectory() as tmp:

        def onnx(name: str, path: str):
            models[name], sizes[name] = OnnxModel(path, config), os.path.getsize(path) / 1e6

        print("exporting")
        sdpa = export_onnx_fp32(fresh(), f"{tmp}/sdpa.onnx", "sdpa")
        eager = export_onnx_fp32(fresh(), f"{tmp}/eager.onnx", "eager")
        onnx("onnx fp32 (sdpa graph)", sdpa)
        onnx("onnx fp32 (eager graph)", eager)
        onnx("onnx int8 (sdpa graph)", int8(sdpa, f"{tmp}/sdpa_q.onnx"))
        os.makedirs(f"{tmp}/tlc", exist_ok=True)
        onnx("onnx int8 (eager graph) = tlc_hf", export_onnx_int8(fresh(), f"{tmp}/tlc"))
        onnx("onnx int8 per-channel", int8(eager, f"{tmp}/pc.onnx", per_channel=True))
        onnx("ort fusion + int8", int8(fused(eager, f"{tmp}/fused.onnx", 12, 384), f"{tmp}/fused_q.onnx"))
        models["torchao int8 dynamic"] = quantize(fresh(), QuantizationConfig(backend="torchao"))
        pruned = fresh()
        prune_structured_(pruned, heads=0.5, ffn=0.5)
        os.makedirs(f"{tmp}/pruned", exist_ok=True)
        onnx("structured 50%+50% + onnx int8", export_onnx_int8(pruned, f"{tmp}/pruned"))
        assert Path(f"{tmp}/pruned/{ONNX_NAME}").exists()
        print("timing")
        timed = compare_latency(models, rounds=cli.rounds)
    cpu = cpu_description()
    print(f"{cpu['cpu']} ({', '.join(cpu['cpu_flags'])}), {cli.threads} threads, batch 8 x 128")
    for name, t in timed.items():
        size = f"{sizes[name]:6.1f} MB" if name in sizes else "        "
        print(f"  {name:36s} {t['latency_ms']:7.1f} ms  {t['speedup']:4.2f}x  {size}")
    Path(cli.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cli.out).write_text(json.dumps({"hardware": cpu, "latency": timed, "onnx_size_mb": sizes}, indent=2))
    print(f"wrote {cli.out}")


if __name__ == "__main__":
    main()
