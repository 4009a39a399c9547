"""The compression frontier of a real pretrained model: all-MiniLM-L6-v2 fine-tuned under a wall-clock budget
on Rotten Tomatoes, then every method alone and in combination, each measured against the fp32 model.

Movva et al.'s 2^3 study (KD x pruning x int8) on a real model, plus vocabulary trimming and the combined
recipe:
  - KD: distil into a half-depth student (6 -> 3 layers, every other one kept), logits + hidden states;
  - pruning: structured, 50% of heads and 50% of FFN neurons, scheduled early in the recovery fine-tune;
  - int8: ONNX Runtime dynamic int8 (weights and embeddings), the fastest CPU path measured here;
  - vocab: trim the vocabulary to the tokens of the training split;
  - combined-4L: depth 6 -> 4 and 50% of FFN neurons, distilled (logits + hidden states, each kept layer
    matched to the teacher layer it came from), vocabulary trimmed, int8; "+qat" also trains the last 30%
    with int8 fake quantization (per tensor, as ONNX Runtime quantizes). The targets (>= 8x smaller, >= 4x
    faster, <= 1 point lost) are in their recipes, so their reports say which were met; "-12m" and "-18m"
    give the recovery fine-tune two and three times the budget.

Every model goes through `run_recipe` (saved, reported, carded), is reloaded with `load_compressed` and with
plain `from_pretrained` after `import tlc_hf` (`OnnxModel.from_pretrained` for ONNX exports), and evaluated
on the full test split; the card's accuracy, size and parameters must equal the fresh measurement. Latency:
all models timed interleaved in one process (batch 8 x 128, `--threads` threads), as ratios to fp32.

Writes `<out>.json`, `<out>.md` (the README table) and `<out>.png` (accuracy vs size, latency as colour).

    python benchmarks/real_model_frontier.py                    # ~80 min on 2 cores
    python benchmarks/real_model_frontier.py --budget 1m --student_budget 1m --only fp32,int8   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

import tlc_hf  # noqa: F401  (installs the from_pretrained hooks)
from tlc_hf.compression.loading import load_compressed
from tlc_hf.compression.recipe import CompressionRecipe
from tlc_hf.evaluation import compare_latency, cpu_description, evaluate_model, parameter_counts, size_on_disk_mb
from tlc_hf.evaluation.frontier import plot_frontier
from tlc_hf.evaluation.stats import paired_difference, wilson_interval
from tlc_hf.hub.report import REPORT_NAME, judge_targets

TRAINING = {"learning_rate": 5e-5, "per_device_train_batch_size": 32, "logging_steps": 20}
KD = {"alpha": 0.5, "temperature": 2.0, "hidden_weight": 1.0}
INT8 = {"method": "quantization", "backend": "onnxruntime", "granularity": "per_tensor"}  # as measured
STRUCTURED = {"method": "structured", "heads": 0.5, "ffn": 0.5, "start": 0.0, "end": 0.3, "steps": 3}
INT8_TARGETS = {"smaller": 3.9, "faster": 2.5, "max_accuracy_drop": 0.005}
BEST_TARGETS = {"smaller": 8, "faster": 4, "max_accuracy_drop": 0.01}


def variants(student_budget: str) -> list[dict]:
    """name, the model it starts from, its recipe, and its place in the 2^3 study (None: outside it)."""

    def trained(methods, kd=False, targets=None):
        recipe = {"budget": student_budget, "methods": methods, "training": TRAINING}
        return {**recipe, **({"distillation": KD} if kd else {}), **({"targets": targets} if targets else {})}

    depth_half = {"method": "depth", "layers": 0.5, "strategy": "alternate"}

    def combined(layers_removed: float, ffn: float, qat: bool = False):
        depth = {"method": "depth", "layers": layers_removed, "strategy": "alternate"}
        int8 = {**INT8, "qat": True, "start": 0.7, "granularity": "per_tensor"} if qat else INT8
        return [depth, {**STRUCTURED, "heads": 0.0, "ffn": ffn}, {"method": "vocabulary"}, int8]

    return [
        {"name": "fp32", "cell": (0, 0, 0)},
        {"name": "int8", "from": "fp32", "recipe": {"methods": [INT8], "targets": INT8_TARGETS}, "cell": (0, 0, 1)},
        {"name": "pruned", "from": "fp32", "recipe": trained([STRUCTURED]), "cell": (0, 1, 0)},
        {"name": "pruned+int8", "from": "pruned", "recipe": {"methods": [INT8]}, "cell": (0, 1, 1)},
        {"name": "kd", "from": "fp32", "recipe": trained([depth_half], kd=True), "cell": (1, 0, 0)},
        {"name": "kd+int8", "from": "kd", "recipe": {"methods": [INT8]}, "cell": (1, 0, 1)},
        {"name": "kd+pruned", "from": "fp32", "recipe": trained([depth_half, STRUCTURED], kd=True), "cell": (1, 1, 0)},
        {"name": "kd+pruned+int8", "from": "kd+pruned", "recipe": {"methods": [INT8]}, "cell": (1, 1, 1)},
        {"name": "vocab", "from": "fp32", "recipe": {"methods": [{"method": "vocabulary"}]}, "cell": None},
        {
            "name": "combined-4L",
            "from": "fp32",
            "recipe": trained(combined(2 / 6, 0.5), True, BEST_TARGETS),
            "cell": None,
        },
        {
            "name": "combined-4L+qat",
            "from": "fp32",
            "recipe": trained(combined(2 / 6, 0.5, qat=True), True, BEST_TARGETS),
            "cell": None,
        },
        {
            "name": "combined-4L+qat-12m",
            "from": "fp32",
            "recipe": {**trained(combined(2 / 6, 0.5, qat=True), True, BEST_TARGETS), "budget": "12m"},
            "cell": None,
        },
        {
            "name": "combined-4L+qat-18m",
            "from": "fp32",
            "recipe": {**trained(combined(2 / 6, 0.5, qat=True), True, BEST_TARGETS), "budget": "18m"},
            "cell": None,
        },
    ]


def fine_tune_teacher(model_dir: str, budget: str, seed: int) -> None:
    from tlc_hf.pretrained import minilm_dir
    from tlc_hf.training.arguments import BudgetTrainingArguments
    from tlc_hf.workflows.train import TrainCommandArguments, train

    command = TrainCommandArguments(
        model_name_or_path=minilm_dir(), task="classification", source="rotten_tomatoes", max_eval_examples=None
    )
    args = BudgetTrainingArguments(
        output_dir=model_dir,
        time_budget=budget,
        seed=seed,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        **TRAINING,
    )
    train(command, args)


def load_plain(directory: str):
    """What a user writes: `from_pretrained` (after `import tlc_hf`), or `OnnxModel.from_pretrained`."""
    from transformers import AutoModelForSequenceClassification

    from tlc_hf import OnnxModel

    if os.path.exists(os.path.join(directory, "model.onnx")):
        return OnnxModel.from_pretrained(directory)
    return AutoModelForSequenceClassification.from_pretrained(directory)


def measure(directory: str) -> dict:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    results = {}
    loaded = load_compressed(directory)
    for how, model in (("load_compressed", loaded), ("from_pretrained", load_plain(directory))):
        evaluated = evaluate_model(
            model, tokenizer, "classification", max_examples=None, show_progress=False, return_predictions=True
        )
        results[how] = evaluated
    fresh, plain = results["load_compressed"], results["from_pretrained"]
    counts = parameter_counts(loaded)
    return {
        "accuracy": fresh["accuracy"],
        "examples": fresh["examples"],
        "split": fresh["split"],
        "predictions": fresh["predictions"],
        "references": fresh["references"],
        "from_pretrained_accuracy": plain["accuracy"],
        "size_mb": round(size_on_disk_mb(directory), 4),
        "params": counts["params_total"],
        "bits": counts["bits"],
    }


def card_matches(directory: str, measured: dict) -> dict:
    """The report / card numbers against a fresh measurement of the reloaded model."""
    path = os.path.join(directory, REPORT_NAME)
    if not os.path.exists(path):
        return {"checked": False}
    with open(path) as f:
        report = json.load(f)["compressed"]
    card = Path(directory, "README.md").read_text()
    accuracy = report["metrics"].get("accuracy")
    return {
        "checked": True,
        "accuracy": accuracy == measured["accuracy"],
        "size": abs(report["size_mb"] - measured["size_mb"]) < 1e-3,
        "params": report["params"] == measured["params"],
        "card_shows_accuracy": f"{accuracy:.4g}" in card,
    }


def markdown(rows: list[dict], cpu: dict, settings: dict) -> str:
    lines = [
        f"Real all-MiniLM-L6-v2 fine-tuned {settings['budget']} on Rotten Tomatoes (students: "
        f"{settings['student_budget']} each unless the name says otherwise), test split of {rows[0]['examples']} reviews; latency batch "
        f"{settings['batch']}x{settings['seq']}, {settings['threads']} threads, {cpu['cpu']} "
        f"({', '.join(cpu['cpu_flags'])}), {settings['date']}.",
        "",
        "| variant | accuracy (95% CI) | vs fp32 (paired 95% CI) | size MB | smaller | latency ms | faster | params |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['accuracy']:.3f} ({r['ci'][0]:.3f}-{r['ci'][1]:.3f}) | "
            f"{100 * r['accuracy_change']:+.1f} ± {100 * r['change_ci']:.1f} pt | {r['size_mb']:.1f} | "
            f"{r['smaller']:.2f}x | {r['latency_ms']:.1f} | {r['speedup']:.2f}x | {r['params'] / 1e6:.2f}M |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=os.path.expanduser("~/.cache/tlc_hf/frontier"), help="model folders")
    parser.add_argument("--out", default="benchmarks/results/real_model_frontier", help="path stem of json/md/png")
    parser.add_argument("--budget", default="6m", help="fine-tuning budget of the fp32 model")
    parser.add_argument("--student_budget", default="6m", help="budget of each recipe that trains")
    parser.add_argument("--only", default=None, help="comma-separated variant names (their parents are built too)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild variants already in --work")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    cli = parser.parse_args()
    torch.set_num_threads(cli.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(cli.threads))
    from tlc_hf.workflows.recipe import run_recipe

    all_variants = {v["name"]: v for v in variants(cli.student_budget)}
    wanted = list(all_variants) if cli.only is None else cli.only.split(",")
    unknown = [name for name in wanted if name not in all_variants]
    if unknown:
        parser.error(f"--only {','.join(unknown)}: not variants; choose from {list(all_variants)}")
    order = []
    for name in wanted:  # parents first
        chain = [name]
        while "from" in all_variants[chain[-1]]:
            chain.append(all_variants[chain[-1]]["from"])
        order += [n for n in reversed(chain) if n not in order]
    work = Path(cli.work)
    timings = {}
    for name in order:
        variant, directory = all_variants[name], work / name
        if directory.joinpath("config.json").exists() and not cli.rebuild:
            print(f"[{name}] reusing {directory}")
            continue
        print(f"[{name}] building", flush=True)
        start = time.perf_counter()
        if name == "fp32":
            shutil.rmtree(directory, ignore_errors=True)
            fine_tune_teacher(str(directory), cli.budget, cli.seed)
        else:
            recipe = CompressionRecipe.from_dict({"name": name, **variant["recipe"]})
            run_recipe(
                recipe,
                str(work / variant["from"]),
                str(directory),
                teacher_dir=str(work / "fp32"),
                seed=cli.seed,
                overwrite=True,
            )
        timings[name] = round(time.perf_counter() - start, 1)
        print(f"[{name}] built in {timings[name]} s", flush=True)

    print("measuring accuracy, size and reloads", flush=True)
    measured = {name: measure(str(work / name)) for name in order}
    reference = measured["fp32"]
    print("timing all models interleaved", flush=True)
    timed = compare_latency({name: load_compressed(str(work / name)) for name in order}, rounds=cli.rounds)
    rows = []
    for name in order:
        m = measured[name]
        change, change_ci = paired_difference(reference["predictions"], m["predictions"], m["references"])
        correct = round(m["accuracy"] * m["examples"])
        rows.append(
            {
                "name": name,
                "cell": all_variants[name].get("cell"),
                "recipe": all_variants[name].get("recipe"),
                "accuracy": m["accuracy"],
                "ci": wilson_interval(correct, m["examples"]),
                "accuracy_change": change,
                "change_ci": change_ci,
                "examples": m["examples"],
                "size_mb": m["size_mb"],
                "smaller": reference["size_mb"] / m["size_mb"],
                "latency_ms": timed[name]["latency_ms"],
                "speedup": timed[name]["speedup"],
                "params": m["params"],
                "bits": m["bits"],
                "reload_from_pretrained_equal": m["from_pretrained_accuracy"] == m["accuracy"],
                "card_matches": card_matches(str(work / name), m),
                "build_s": timings.get(name),
            }
        )
    targets = []
    for row in rows:
        recipe_targets = (all_variants[row["name"]].get("recipe") or {}).get("targets")
        if recipe_targets:
            judged = judge_targets(
                recipe_targets,
                size_ratio=round(row["smaller"], 4),
                speedup=round(row["speedup"], 4),
                accuracy_drop=round(-row["accuracy_change"], 4),
            )
            targets += [{"variant": row["name"], **t} for t in judged]
    cpu = cpu_description()
    settings = {
        "budget": cli.budget,
        "student_budget": cli.student_budget,
        "batch": 8,
        "seq": 128,
        "threads": cli.threads,
        "rounds": cli.rounds,
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(cli.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"settings": settings, "hardware": cpu, "variants": rows, "targets": targets}
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    table = markdown(rows, cpu, settings)
    out.with_suffix(".md").write_text(table)
    plot_frontier(
        rows, str(out.with_suffix(".png")), f"all-MiniLM-L6-v2 on Rotten Tomatoes, {cpu['cpu']}, {cli.threads} threads"
    )
    print(table)
    for t in targets:
        print(
            f"target {t['variant']}: {t['target']} wanted {t['wanted']}, measured {t['measured']}: {'met' if t['met'] else 'MISSED'}"
        )
    problems = [r["name"] for r in rows if not r["reload_from_pretrained_equal"]]
    problems += [
        r["name"]
        for r in rows
        if r["card_matches"].get("checked") and not all(v for k, v in r["card_matches"].items() if k != "checked")
    ]
    if problems:
        print(f"reload / card mismatches: {problems}", file=sys.stderr)
        return 1
    print(f"wrote {out.with_suffix('.json')}, .md, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
