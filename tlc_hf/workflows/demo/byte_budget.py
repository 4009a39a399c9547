"""Claim 2 of Li et al. (2020): compressed to the same bytes, does the larger model beat the smaller dense one?

The byte budget is the base (smallest) size's fp32 weights on disk. Every size walks one ladder, from least to
most compressed, until it fits: fp32, ONNX Runtime int8 (weights and embeddings), then structured pruning of
25 / 50 / 75% of heads and FFN neurons, a recovery fine-tune of half the fine-tuning budget, then int8. Each
rung is a real saved model, weighed on disk and evaluated on the whole test split; the larger sizes' fitting rungs are compared with the base, paired by
test example.
"""

from __future__ import annotations

import logging
import os

from ...evaluation.frontier import readable_log_axis
from ...evaluation.stats import paired_difference
from .finetuning import evaluate_on_test
from .preset import DemoPreset

logger = logging.getLogger(__name__)

LADDER = (
    ("fp32", None),
    ("int8", 0.0),
    ("pruned 25% + int8", 0.25),
    ("pruned 50% + int8", 0.5),
    ("pruned 75% + int8", 0.75),
)


def compress_to_budget(finetuned: dict, preset: DemoPreset, output_dir: str) -> dict:
    """Walk the ladder for every fine-tuned size (base first) and compare the fits with the dense base."""
    from ...evaluation.bench import size_on_disk_mb
    from .finetuning import held_out_reviews

    labels = list(finetuned)
    base = labels[0]
    held_out = preset.claim2_held_out
    corpus = held_out_reviews(held_out, preset.seed) if held_out else None
    budget_mb = size_on_disk_mb(finetuned[base]["dir"])
    rows, chosen = [], {}
    for label in labels:
        for rung, pruned in LADDER:
            directory = finetuned[label]["dir"] if pruned is None else os.path.join(output_dir, label, _slug(rung))
            if pruned is not None:
                build_rung(finetuned[label], directory, pruned, preset)
            size = size_on_disk_mb(directory)
            if pruned is None and corpus is None:
                measured = finetuned[label]  # the dense model, already evaluated on its test split
            else:
                measured = evaluate_on_test(directory, preset, corpus)
            row = {
                "size": label,
                "rung": rung,
                "dir": directory,
                "size_mb": round(size, 4),
                "fits": size <= budget_mb,
                **{k: measured[k] for k in ("accuracy", "ci", "examples")},
            }
            rows.append(row)
            logger.info(
                "  %-13s %-18s %7.3f MB  accuracy %.3f%s",
                label,
                rung,
                size,
                row["accuracy"],
                "  <- fits" if row["fits"] else "",
            )
            if row["fits"]:
                chosen[label] = {**row, "predictions": measured["predictions"], "references": measured["references"]}
                break
    comparisons = []
    reference = chosen[base]
    for label in labels[1:]:
        fit = chosen.get(label)
        if fit is None:
            comparisons.append({"size": label, "fits": False})
            continue
        change, half = paired_difference(reference["predictions"], fit["predictions"], fit["references"])
        comparisons.append(
            {
                "size": label,
                "fits": True,
                "rung": fit["rung"],
                "size_mb": fit["size_mb"],
                "accuracy": fit["accuracy"],
                "ci": fit["ci"],
                "change_vs_base": round(change, 4),
                "change_ci": round(half, 4),
                "beat_base": None if abs(change) <= half else change > 0,  # None: within the paired interval
                "learned": finetuned[label]["learned"],
            }
        )
    return {
        "evaluated_on": (
            f"{reference['examples']} held-out IMDB reviews"
            if corpus is not None
            else f"{reference['examples']} Rotten Tomatoes test reviews"
        ),
        "budget_mb": round(budget_mb, 4),
        "base": base,
        "base_accuracy": reference["accuracy"],
        "base_ci": reference["ci"],
        "rows": rows,
        "comparisons": comparisons,
    }


def build_rung(finetuned: dict, out: str, pruned: float, preset: DemoPreset) -> None:
    """Structured-prune `pruned` of heads and FFN neurons and recover (none at 0), ONNX Runtime int8, save."""
    import shutil

    from transformers import AutoTokenizer

    from ...budget.duration import parse_duration
    from ...compression import QuantizationConfig, load_compressed, prune_structured_, quantize, save_compressed
    from .finetuning import fine_tune

    source = finetuned["dir"]
    if pruned:
        model = load_compressed(source)
        prune_structured_(model, heads=pruned, ffn=pruned)
        cut, source = f"{out}-pruned", f"{out}-recovered"
        save_compressed(model, cut, AutoTokenizer.from_pretrained(finetuned["dir"]), overwrite=True)
        shutil.rmtree(source, ignore_errors=True)
        recovery = parse_duration(preset.finetune, "finetune") / 2
        fine_tune(cut, source, f"{recovery}s", finetuned["learning_rate"], preset)
        shutil.rmtree(cut, ignore_errors=True)
    quantized = quantize(load_compressed(source), QuantizationConfig(backend="onnxruntime"))
    save_compressed(quantized, out, AutoTokenizer.from_pretrained(source), overwrite=True)
    if pruned:
        shutil.rmtree(source, ignore_errors=True)


def _slug(rung: str) -> str:
    return rung.replace("%", "").replace(" + ", "-").replace(" ", "-")


def plot_budget(claim: dict, path: str) -> None:
    """Accuracy (95% interval) against size on disk for every rung tried, one colour per size, the budget dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = {"fp32": "*", "int8": "^"}
    for index, label in enumerate(dict.fromkeys(r["size"] for r in claim["rows"])):
        rows = [r for r in claim["rows"] if r["size"] == label]
        color = colors[index % len(colors)]
        ax.plot([r["size_mb"] for r in rows], [r["accuracy"] for r in rows], color=color, alpha=0.5, label=label)
        for r in rows:
            ax.errorbar(
                r["size_mb"],
                r["accuracy"],
                yerr=[[r["accuracy"] - r["ci"][0]], [r["ci"][1] - r["accuracy"]]],
                color=color,
                marker=markers.get(r["rung"], "D"),
                markersize=8 if r["fits"] else 5,
                markerfacecolor=color if r["fits"] else "white",
                capsize=3,
            )
    ax.axvline(
        claim["budget_mb"], color="grey", linestyle="--", linewidth=1, label=f"budget {claim['budget_mb']:.2f} MB"
    )
    for rung, marker in (("fp32", "*"), ("int8", "^"), ("pruned + int8", "D")):
        ax.scatter([], [], marker=marker, color="grey", label=rung)
    ax.set_xscale("log")
    readable_log_axis(ax.xaxis)
    ax.set_xlabel("size on disk (MB, log scale); filled = the rung that fits")
    ax.set_ylabel("test accuracy, 95% interval")
    ax.set_title("Compressed to the same bytes: each size down its ladder until it fits")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
