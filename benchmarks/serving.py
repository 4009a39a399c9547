"""Serving speed of the real MiniLM on this CPU, per runtime: torch fp32, ONNX Runtime dynamic int8 (the
shipped recipes), and the other CPU paths tried for the cpu-compact model, at the fixed 8 x 128 batch and on
the real test split, all timed interleaved in one process; each graph's multiply-adds counted from the graph
and set against this machine's int8 peak measured through the same runtime.

Models (built into --work when missing, reused otherwise):
  fp32            all-MiniLM-L6-v2 fine-tuned --teacher_budget on Rotten Tomatoes (`tlc-hf train`'s path);
  cpu-int8        `--recipe cpu-int8` on it; cpu-int8-vocab: `--recipe cpu-int8-vocab`;
  compact-float   the cpu-compact recipe (6 -> 4 layers, half the FFN, distilled, vocabulary trimmed, QAT per
                  tensor) with a --compact_budget recovery, its QAT weights left in float;
  cpu-compact     that model through ONNX Runtime dynamic int8 per tensor: the recipe's own last step;
  cpu-compact-ov  the same float model through OpenVINO static int8 (nncf, calibrated on training texts);
  cpu-compact-ort-static  ONNX Runtime static int8 (QDQ, MatMul/Gemm, calibrated on 160 training texts);
  cpu-compact-ort-fused   ONNX Runtime's transformer fusion (onnxruntime.transformers.optimizer), then
                  dynamic int8 as tlc_hf does it.
  compact-heads   compact-float with half its attention heads removed, ranked across layers (uneven heads per
                  layer, no recovery: a speed probe), ONNX Runtime dynamic int8; compact-heads-fused: the same
                  through ONNX Runtime's fusion (num_heads detected per layer) then dynamic int8.
The ORT static and fused variants are experiments kept in this script, not tlc_hf backends; each is a copy of
its base folder with its own model.onnx, so from_pretrained / pipeline load it the same way.

Accuracy: every model on the whole test split; the runtime change (cpu-compact-ov vs cpu-compact) as a
paired difference with its 95% interval.

    python benchmarks/serving.py                   # ~8 min on 2 AVX-512 cores: models 5.4 min, timing 2-4 min
    python benchmarks/serving.py --rounds 4 --real_single 64    # a quicker look at already built models
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

import tlc_hf  # noqa: F401  (installs the from_pretrained hooks)
from tlc_hf import (
    CompressionRecipe,
    QuantizationConfig,
    load_compressed,
    prune_structured_,
    quantize,
    run_recipe,
    save_compressed,
)
from tlc_hf.compression.quantization.onnx import export_onnx_fp32
from tlc_hf.evaluation import compare_latency, cpu_description, evaluate_model
from tlc_hf.evaluation.bench import compare_real_inputs
from tlc_hf.evaluation.hardware import graph_multiply_adds, onnxruntime_int8_peak, openvino_int8_peak
from tlc_hf.evaluation.stats import paired_difference

sys.path.insert(0, str(Path(__file__).parent))
from real_model_frontier import fine_tune_teacher  # noqa: E402

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None and importlib.util.find_spec("nncf") is not None


def build(work: Path, teacher_budget: str, compact_budget: str, seed: int) -> None:
    from transformers import AutoTokenizer

    def missing(name):
        return not (work / name / "config.json").exists()

    if missing("fp32"):
        fine_tune_teacher(str(work / "fp32"), teacher_budget, seed)
    for name in ("cpu-int8", "cpu-int8-vocab"):
        if missing(name):
            run_recipe(CompressionRecipe.load(name), str(work / "fp32"), str(work / name), seed=seed, report=False)
    if missing("compact-float"):
        recipe = CompressionRecipe.load("cpu-compact").to_dict()
        recipe["budget"] = compact_budget
        recipe["methods"][-1]["backend"] = "simulated"  # QAT as the recipe runs it; the runtimes below convert
        run_recipe(
            CompressionRecipe.from_dict(recipe),
            str(work / "fp32"),
            str(work / "compact-float"),
            teacher_dir=str(work / "fp32"),
            seed=seed,
            report=False,
        )
    float_model = load_compressed(str(work / "compact-float"))
    tokenizer = AutoTokenizer.from_pretrained(str(work / "compact-float"))
    if missing("cpu-compact"):
        onnx = quantize(float_model, QuantizationConfig(backend="onnxruntime", granularity="per_tensor"))
        save_compressed(onnx, work / "cpu-compact", tokenizer)
    if HAS_OPENVINO and missing("cpu-compact-ov"):
        openvino = quantize(float_model, QuantizationConfig(backend="openvino"), tokenizer=tokenizer)
        save_compressed(openvino, work / "cpu-compact-ov", tokenizer)
    if missing("compact-heads"):  # half the heads removed, ranked across layers: uneven heads per layer
        onnx = quantize(pruned_float(work), QuantizationConfig(backend="onnxruntime", granularity="per_tensor"))
        save_compressed(onnx, work / "compact-heads", tokenizer)
    variants = (
        ("cpu-compact-ort-static", ort_static, "cpu-compact"),
        ("cpu-compact-ort-fused", ort_fused, "cpu-compact"),
        ("compact-heads-fused", ort_fused, "compact-heads"),
    )
    for name, convert, base in variants:
        if missing(name):
            model = float_model if base == "cpu-compact" else pruned_float(work)
            with tempfile.TemporaryDirectory() as tmp:
                fp32 = export_onnx_fp32(model, os.path.join(tmp, "fp32.onnx"))
                convert(fp32, os.path.join(tmp, "model.onnx"), model, tokenizer)
                shutil.copytree(work / base, os.path.join(tmp, name))
                shutil.copyfile(os.path.join(tmp, "model.onnx"), os.path.join(tmp, name, "model.onnx"))
                shutil.move(os.path.join(tmp, name), work / name)


def pruned_float(work: Path):
    """compact-float with half its heads removed (the same cut `compact-heads` quantized: deterministic)."""
    pruned = load_compressed(str(work / "compact-float"))
    prune_structured_(pruned, heads=0.5)
    return pruned


def ort_static(source: str, target: str, model, tokenizer) -> None:
    """ONNX Runtime static int8 (QDQ): activation ranges calibrated on 160 training texts."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from tlc_hf.compression.quantization.openvino import calibration_batches
    from tlc_hf.data.identity import resolve_data

    batches = calibration_batches(tokenizer, resolve_data(model)[0].load()["train"]["text"][:160])

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(self.batches, None)

    prepared = target + ".pre.onnx"
    quant_pre_process(source, prepared, skip_symbolic_shape=True)
    quantize_static(
        prepared,
        target,
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
    )


def ort_fused(source: str, target: str, model, tokenizer) -> None:
    """ONNX Runtime's BERT fusion (attention, skip layer norm, GELU), then dynamic int8 per tensor."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused = target + ".fused.onnx"
    optimize_model(source, model_type="bert", num_heads=0, hidden_size=0).save_model_to_file(fused)
    quantize_dynamic(
        fused, target, weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT}
    )


def graph_path(directory: Path) -> str | None:
    path = directory / "model.onnx"
    return str(path) if path.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=os.path.expanduser("~/.cache/tlc_hf/serving"), help="model folders")
    parser.add_argument("--out", default="benchmarks/results/serving", help="path stem of the json and md")
    parser.add_argument("--teacher_budget", default="100s")
    parser.add_argument("--compact_budget", default="150s")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--real_single", type=int, default=128, help="test texts timed one at a time")
    parser.add_argument("--seed", type=int, default=0)
    cli = parser.parse_args()
    torch.set_num_threads(cli.threads)
    work = Path(cli.work)
    start = time.perf_counter()
    build(work, cli.teacher_budget, cli.compact_budget, cli.seed)
    print(f"models ready in {time.perf_counter() - start:.0f} s", flush=True)

    from transformers import AutoTokenizer

    from tlc_hf.data.identity import resolve_data

    names = ["fp32", "cpu-int8", "cpu-int8-vocab", "compact-float", "cpu-compact"]
    names += ["cpu-compact-ort-static", "cpu-compact-ort-fused", "compact-heads", "compact-heads-fused"]
    names += ["cpu-compact-ov"] if (work / "cpu-compact-ov" / "config.json").exists() else []
    models = {name: load_compressed(str(work / name)) for name in names}
    tokenizers = {name: AutoTokenizer.from_pretrained(str(work / name)) for name in names}
    identity, _ = resolve_data(models["fp32"])
    corpus = identity.load()

    print("fixed 8 x 128, interleaved", flush=True)
    fixed = compare_latency(models, rounds=cli.rounds)
    print("real test split, interleaved", flush=True)
    real = compare_real_inputs(
        models, tokenizers, corpus["test"]["text"], single_examples=cli.real_single, rounds=max(2, cli.rounds // 4)
    )
    print("int8 peaks", flush=True)
    peaks = {"onnxruntime": onnxruntime_int8_peak(threads=cli.threads)}
    if HAS_OPENVINO:
        peaks["openvino"] = openvino_int8_peak(threads=cli.threads)
    print("accuracy, whole test split", flush=True)
    accuracy = {
        name: evaluate_model(
            models[name],
            tokenizers[name],
            "classification",
            corpus,
            max_examples=None,
            show_progress=False,
            return_predictions=True,
        )
        for name in names
    }
    rows = []
    for name in names:
        backend = "openvino" if name.endswith("-ov") else "onnxruntime" if graph_path(work / name) else "torch"
        # the compact variants are one model: its multiply-adds counted on the plain export's graph
        graph = graph_path(work / ("cpu-compact" if name.startswith("cpu-compact") else name.removesuffix("-fused")))
        macs = graph_multiply_adds(graph) if graph else None
        row = {
            "name": name,
            "runtime": backend,
            "latency_ms_8x128": fixed[name]["latency_ms"],
            "speedup_vs_fp32": fixed[name]["speedup"],
            "accuracy": accuracy[name]["accuracy"],
            "examples": accuracy[name]["examples"],
            **{
                k: real[name][k]
                for k in ("batch1_latency_ms_p50", "batch1_latency_ms_p95", "throughput_examples_per_s")
            },
            "real_throughput_speedup_vs_fp32": real[name]["throughput_speedup"],
        }
        if macs:
            row["multiply_adds_8x128"] = macs["total"]
            row["gmacs_achieved"] = macs["total"] / (fixed[name]["latency_ms"] / 1e3) / 1e9
            peak = peaks.get(backend)
            if peak:
                row["fraction_of_int8_peak"] = row["gmacs_achieved"] / peak["gmacs_best"]
        rows.append(row)
    compare = {}  # every other runtime of one model against today's ONNX Runtime dynamic int8 of it
    pairs = [(n, "cpu-compact") for n in names if n.startswith("cpu-compact-")] + [
        ("compact-heads-fused", "compact-heads")
    ]
    for name, reference in pairs:
        change, half_width = paired_difference(
            accuracy[reference]["predictions"], accuracy[name]["predictions"], accuracy[name]["references"]
        )
        compare[name] = {
            "against": reference,
            "faster_8x128": fixed[reference]["latency_ms"] / fixed[name]["latency_ms"],
            "faster_real_throughput": real[name]["throughput_examples_per_s"]
            / real[reference]["throughput_examples_per_s"],
            "accuracy_change": change,
            "accuracy_change_ci": half_width,
        }
    cpu = cpu_description()
    settings = {
        "threads": cli.threads,
        "rounds": cli.rounds,
        "real_single": cli.real_single,
        "teacher_budget": cli.teacher_budget,
        "compact_budget": cli.compact_budget,
        "date": time.strftime("%Y-%m-%d"),
        "data": identity.describe(),
        "real_mean_tokens": real["fp32"]["mean_tokens"],
        "real_padding_share": real["fp32"]["padding_share"],
        "real_examples": real["fp32"]["examples"],
    }
    result = {"settings": settings, "hardware": cpu, "peaks": peaks, "rows": rows, "vs_onnxruntime_int8": compare}
    out = Path(cli.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    table = markdown(result)
    out.with_suffix(".md").write_text(table)
    print(table)
    return 0


def markdown(result: dict) -> str:
    s, cpu = result["settings"], result["hardware"]
    lines = [
        f"Measured {s['date']} on {cpu['cpu']} ({', '.join(cpu['cpu_flags']) or 'no AVX-512/VNNI'}), {s['threads']} "
        f"threads, one interleaved run. Real inputs: the {s['real_examples']} test reviews of {s['data']}, "
        f"{s['real_mean_tokens']:.1f} tokens on average, length-sorted batches of 8 padded per batch "
        f"({100 * s['real_padding_share']:.0f}% padding); batch 1 over {s['real_single']} of them.",
        "",
        "| model | runtime | accuracy | 8x128 ms | vs fp32 | real ex/s | vs fp32 | batch-1 p50 / p95 ms | GMAC/s | of int8 peak |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        peak = f"{100 * r['fraction_of_int8_peak']:.0f}%" if "fraction_of_int8_peak" in r else "–"
        gmacs = f"{r['gmacs_achieved']:.1f}" if "gmacs_achieved" in r else "–"
        lines.append(
            f"| {r['name']} | {r['runtime']} | {r['accuracy']:.3f} | {r['latency_ms_8x128']:.1f} | "
            f"{r['speedup_vs_fp32']:.2f}x | {r['throughput_examples_per_s']:.0f} | "
            f"{r['real_throughput_speedup_vs_fp32']:.2f}x | {r['batch1_latency_ms_p50']:.1f} / "
            f"{r['batch1_latency_ms_p95']:.1f} | {gmacs} | {peak} |"
        )
    peaks = "; ".join(
        f"{k}: {v['gmacs_best']:.1f} GMAC/s ({v['kernel']}, {v['shape']})" for k, v in result["peaks"].items()
    )
    lines += ["", f"int8 peak measured here: {peaks}."]
    for name, c in result["vs_onnxruntime_int8"].items():
        lines.append(
            f"{name} against {c['against']} (ONNX Runtime dynamic int8): {c['faster_8x128']:.2f}x as fast at 8x128, "
            f"{c['faster_real_throughput']:.2f}x on real inputs; accuracy {100 * c['accuracy_change']:+.1f} ± "
            f"{100 * c['accuracy_change_ci']:.1f} points (paired 95% interval, whole test split)."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
