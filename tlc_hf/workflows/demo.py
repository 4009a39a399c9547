"""The main job: Train Large, Then Compress, end to end on the embedded corpus, offline.

1. MLM-pretrain three RoBERTa-style sizes under the same wall-clock budget (`run_sweep`).
2. Fine-tune each on sentiment under the same budget.
3. Compress each across levels (magnitude pruning 30-90%, simulated 8/6/4-bit, real int8 with torchao,
   structured 50% heads + 50% FFN) and measure accuracy against size.
4. Write curves.png, compression.png, report.json, the best compressed model (under a memory budget: the
   smallest model's fp32 size) with its model card, and print which size to train and how far to compress.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import time

from ..budget.duration import format_duration, parse_duration

PRESETS = {
    "quick": dict(
        sizes="2x64,2x128,4x128",
        pretrain=30.0,
        finetune=20.0,
        source="rotten_tomatoes",
        vocab_size=4096,
        block_size=64,
        eval_examples=400,
    ),
    "default": dict(
        sizes="2x64,4x128,4x256",
        pretrain=180.0,
        finetune=60.0,
        source="both",
        vocab_size=8192,
        block_size=128,
        eval_examples=1000,
    ),
}
PRUNING_LEVELS = (0.3, 0.5, 0.7, 0.9)
SIMULATED_BITS = (8, 6, 4)


def run_demo(
    output_dir: str = "out/demo",
    quick: bool = False,
    budget: str | float | None = None,
    sizes: str | None = None,
    seed: int = 0,
) -> dict:
    """Run the demo; see the module docstring. `budget` is the pretraining budget per size (the fine-tuning
    budget is a third of it); it overrides the preset's."""
    from transformers.utils import logging as hf_logging

    from ..data import train_tokenizer
    from ..data.identity import DataIdentity
    from ..scaling.sweep import run_sweep

    preset = dict(PRESETS["quick" if quick else "default"])
    if budget is not None:
        preset["pretrain"] = parse_duration(budget, "budget")
        preset["finetune"] = preset["pretrain"] / 3
    preset["sizes"] = sizes or preset["sizes"]
    os.makedirs(output_dir, exist_ok=True)
    hf_logging.set_verbosity_error()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    started = time.monotonic()
    n_sizes = len(preset["sizes"].split(","))
    total = n_sizes * (preset["pretrain"] + preset["finetune"])
    _stage(1, f"data: {preset['source']} reviews, BPE tokenizer ({preset['vocab_size']} tokens)")
    corpus = DataIdentity(source=preset["source"], split_seed=seed).load()
    tokenizer = train_tokenizer("roberta", preset["vocab_size"], corpus)

    _stage(
        2,
        f"MLM pretraining {preset['sizes']} for {format_duration(preset['pretrain'])} each "
        f"(about {format_duration(total)} of budgets in all)",
    )
    sweep = run_sweep(
        preset["sizes"],
        output_dir=os.path.join(output_dir, "pretrain"),
        budget=preset["pretrain"],
        head_dim=32,
        corpus=corpus,
        tokenizer=tokenizer,
        block_size=preset["block_size"],
        learning_rate=1e-3,
        batch_sizes=[32],
        save_models=True,
        seed=seed,
    )
    for name in ("curves.png", "sweep.json"):
        os.replace(os.path.join(output_dir, "pretrain", name), os.path.join(output_dir, name))

    _stage(3, f"fine-tuning each on sentiment for {format_duration(preset['finetune'])}")
    finetuned = {}
    for run in sweep["runs"]:
        finetuned[run["label"]] = _finetune(run, output_dir, preset, corpus, seed)
        print(f"  {run['label']}: accuracy {finetuned[run['label']]['accuracy']:.3f}")

    _stage(4, "compressing each: magnitude 30-90%, simulated 8/6/4-bit, int8 (torchao), structured 50%+50%")
    rows = []
    for run in sweep["runs"]:
        rows += _compress_all(run["label"], finetuned[run["label"]]["dir"], corpus, preset, tokenizer)
    memory_budget = min(r["size_mb"] for r in rows if r["method"] == "fp32")
    best = max((r for r in rows if r["real"] and r["size_mb"] <= memory_budget), key=lambda r: r["accuracy"])
    _plot_compression(rows, memory_budget, os.path.join(output_dir, "compression.png"))
    best_dir = _save_best(best, finetuned, output_dir, corpus, tokenizer)

    report = {
        "preset": preset,
        "sweep": {
            r["label"]: {k: r[k] for k in ("params", "steps", "tokens_per_s", "final_perplexity")}
            for r in sweep["runs"]
        },
        "finetuned": {k: {"accuracy": v["accuracy"]} for k, v in finetuned.items()},
        "compression": rows,
        "memory_budget_mb": memory_budget,
        "best": best,
        "best_model_dir": best_dir,
        "wall_clock_s": round(time.monotonic() - started, 1),
    }
    report["summary"] = summarize(report, sweep)
    with open(os.path.join(output_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print("\n" + report["summary"])
    print(f"\nWrote {output_dir}/: curves.png, compression.png, report.json, sweep.json, best_model/ (with README.md)")
    return report


def _stage(number: int, text: str) -> None:
    print(f"[{number}/4] {text}", flush=True)


def _finetune(run: dict, output_dir: str, preset: dict, corpus, seed: int) -> dict:
    from ..training.arguments import BudgetSeq2SeqTrainingArguments
    from .train import TrainCommandArguments, train

    out = os.path.join(output_dir, "finetune", run["label"])
    command = TrainCommandArguments(
        model_name_or_path=os.path.join(output_dir, "pretrain", run["label"]),
        task="classification",
        source=preset["source"],
        split_seed=seed,
        max_length=preset["block_size"],
        max_eval_examples=preset["eval_examples"],
    )
    args = BudgetSeq2SeqTrainingArguments(
        output_dir=out,
        time_budget=f"{preset['finetune']}s",
        learning_rate=5e-4,
        per_device_train_batch_size=32,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        seed=seed,
        time_warmup_ratio=0.1,
    )
    metrics = train(command, args)["metrics"]
    return {"dir": out, "accuracy": metrics["eval_accuracy"]}


def _compress_all(label: str, model_dir: str, corpus, preset: dict, tokenizer) -> list[dict]:
    from ..compression import (
        QuantizationConfig,
        load_compressed,
        prune_magnitude_,
        prune_structured_,
        quantize,
        save_compressed,
    )
    from ..evaluation.bench import parameter_counts, size_on_disk_mb
    from ..evaluation.evaluate_model import evaluate_model

    base = load_compressed(model_dir)
    params = parameter_counts(base)["params_total"]

    def measure(model, method, level, storage="dense", nominal_bits=None):
        with tempfile.TemporaryDirectory() as tmp:
            if nominal_bits is None:
                save_compressed(model, os.path.join(tmp, "m"), storage=storage)
                size = size_on_disk_mb(os.path.join(tmp, "m"))
            else:  # simulated: no real format, the size is what `bits` per parameter would take
                size = params * nominal_bits / 8 / 1e6
        result = evaluate_model(
            model,
            tokenizer,
            "classification",
            corpus,
            max_examples=preset["eval_examples"],
            max_length=preset["block_size"],
            show_progress=False,
        )
        return {
            "size": label,
            "method": method,
            "level": level,
            "size_mb": round(size, 4),
            "accuracy": result["accuracy"],
            "real": nominal_bits is None,
        }

    rows = [measure(base, "fp32", 0)]
    for sparsity in PRUNING_LEVELS:
        model = copy.deepcopy(base)
        prune_magnitude_(model, sparsity)
        rows.append(measure(model, "magnitude (sparse storage)", sparsity, storage="sparse"))
    for bits in SIMULATED_BITS:
        model = copy.deepcopy(base)
        quantize(model, QuantizationConfig(backend="simulated", bits=bits))
        rows.append(measure(model, "simulated k-bit (nominal size)", bits, nominal_bits=bits))
    rows.append(measure(quantize(base, QuantizationConfig(backend="torchao", weight_only=True)), "int8 (torchao)", 8))
    model = copy.deepcopy(base)
    prune_structured_(model, heads=0.5, ffn=0.5)
    rows.append(measure(model, "structured 50%+50%", 0.5))
    for row in rows:
        print(
            f"  {label:16s} {row['method']:32s} {row['level']!s:>4}  {row['size_mb']:8.3f} MB  "
            f"accuracy {row['accuracy']:.3f}"
        )
    return rows


def _save_best(best: dict, finetuned: dict, output_dir: str, corpus, tokenizer) -> str:
    from transformers import AutoConfig

    from ..compression import QuantizationConfig, load_compressed, prune_magnitude_, prune_structured_, quantize
    from ..compression.loading import save_compressed
    from ..data.identity import data_identity
    from ..hub.card import render_model_card
    from ..hub.report import build_report

    base_dir = finetuned[best["size"]]["dir"]
    model, storage = load_compressed(base_dir), "dense"
    if best["method"].startswith("magnitude"):
        prune_magnitude_(model, best["level"])
        storage = "sparse"
    elif best["method"].startswith("int8"):
        model = quantize(model, QuantizationConfig(backend="torchao", weight_only=True))
    elif best["method"].startswith("structured"):
        prune_structured_(model, heads=0.5, ffn=0.5)
    out = os.path.join(output_dir, "best_model")
    save_compressed(model, out, tokenizer, storage=storage, overwrite=True)
    report = build_report(
        out,
        base_dir,
        task="classification",
        corpus=corpus,
        data=data_identity(AutoConfig.from_pretrained(base_dir)),
        base_model=f"tlc_hf demo {best['size']} (fine-tuned)",
        max_examples=400,
        runs=5,
    )
    report.save(out)
    render_model_card(report, repo_id=f"tlc-hf-demo-{best['size'].lower()}", output_dir=out)
    return out


def _plot_compression(rows: list[dict], memory_budget: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {
        "fp32": "*",
        "magnitude (sparse storage)": "o",
        "simulated k-bit (nominal size)": "x",
        "int8 (torchao)": "^",
        "structured 50%+50%": "D",
    }
    sizes = sorted({r["size"] for r in rows}, key=lambda s: [r["size_mb"] for r in rows if r["size"] == s][0])
    colors = dict(zip(sizes, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for row in rows:
        ax.scatter(row["size_mb"], row["accuracy"], marker=markers[row["method"]], color=colors[row["size"]], s=45)
    for size in sizes:
        pruned = sorted(
            (r for r in rows if r["size"] == size and r["method"] in ("fp32", "magnitude (sparse storage)")),
            key=lambda r: r["size_mb"],
        )
        ax.plot(
            [r["size_mb"] for r in pruned],
            [r["accuracy"] for r in pruned],
            color=colors[size],
            alpha=0.5,
            label=f"{size} (pruning curve)",
        )
    for method, marker in markers.items():
        ax.scatter([], [], marker=marker, color="grey", label=method)
    ax.axvline(memory_budget, color="grey", linestyle="--", linewidth=1, label="memory budget (smallest fp32)")
    ax.set_xscale("log")
    ax.set_xlabel("compressed size (MB, log scale)")
    ax.set_ylabel("sentiment accuracy (test split)")
    ax.set_title("Train large, then compress: accuracy vs compressed size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _variant(row: dict) -> str:
    if row["method"] == "fp32":
        return "uncompressed (fp32): no compressed variant that fits was more accurate"
    return f"with {row['method']} {row['level']}"


def summarize(report: dict, sweep: dict) -> str:
    runs = sweep["runs"]
    largest = max(runs, key=lambda r: r["params"])
    best_ppl = min(runs, key=lambda r: r["final_perplexity"])
    best = report["best"]
    lines = [
        f"Which size should I train? At equal pretraining time ({format_duration(report['preset']['pretrain'])} each), "
        f"{best_ppl['label']} reached the lowest MLM perplexity ({best_ppl['final_perplexity']:.0f}).",
        "Fine-tuned accuracy: " + ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in report["finetuned"].items()) + ".",
        f"How far can I compress? Under a memory budget of {report['memory_budget_mb']:.2f} MB (the smallest model's "
        f"fp32 size) the most accurate model is {best['size']} {_variant(best)} ({best['size_mb']:.2f} MB, accuracy "
        f"{best['accuracy']:.3f}).",
    ]
    if best_ppl is not largest:
        ratio = best_ppl["tokens_per_s"] / max(largest["tokens_per_s"], 1e-9)
        lines.append(
            f"On this machine the largest size ({largest['label']}) did not win at equal time: it processed "
            f"{ratio:.1f}x fewer tokens per second. The paper's claim is for accelerators, where a larger model "
            "costs far less than proportionally more time per step; on a CPU it costs nearly proportionally more."
        )
    return "\n".join(lines)
