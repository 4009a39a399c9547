"""Claim 1 of Li et al. (2020): at equal wall-clock time, is a larger model the better one to train?

Two families grow from one base size: a depth family (more layers) and a width family (wider layers). Every
size is MLM-pretrained for the same budget on the same data, with a learning rate for its size, and compared
by validation perplexity on a fixed mask against the time spent, next to what it costs per step on this
hardware. A size that ends no better than unigram statistics has learned nothing from context, and the
analysis says so instead of ranking it.
"""

from __future__ import annotations

import math
import os

from ...evaluation.frontier import readable_log_axis
from ...scaling.sweep import parse_sizes
from .preset import DemoPreset

TIE = 0.03  # perplexities within 3% of each other: a tie at this budget, not a finding


def size_families(base: str, depth_factors, width_factors) -> dict[str, list[tuple[int, int]]]:
    """{"depth": [base, deeper...], "width": [base, wider...]} as (layers, width) pairs.

    Example:
        ```python
        size_families("2x64", (2,), (2,))  # {"depth": [(2, 64), (4, 64)], "width": [(2, 64), (2, 128)]}
        ```
    """
    ((depth, width),) = parse_sizes(base)
    return {
        "depth": [(depth, width)] + [(depth * f, width) for f in depth_factors],
        "width": [(depth, width)] + [(depth, width * f) for f in width_factors],
    }


def learning_rate_for(depth: int, width: int, *, base: tuple[int, int], base_lr: float) -> float:
    """The base size's LR scaled down in proportion to width and to depth (Adam on post-LN encoders: the
    rate that trains a 2x64 model makes 4x64 and 2x128 stall at unigram statistics; measured in #15)."""
    return base_lr * (base[1] / width) * (base[0] / depth)


def unigram_perplexity(tokenizer, corpus, block_size: int, max_eval_blocks: int, seed: int) -> float:
    """Perplexity of the training split's token frequencies (add-one smoothed) on the masked tokens of the
    same fixed-mask validation blocks the sweep evaluates on: the floor a model must pass to use context."""
    from collections import Counter

    from ...data import apply_fixed_mask, build_mlm_dataset

    blocks = build_mlm_dataset(tokenizer, corpus, block_size=block_size)
    counts = Counter()
    for ids in blocks["train"]["input_ids"]:
        counts.update(ids)
    total, vocab = sum(counts.values()), len(tokenizer)
    evaluation = blocks["validation"].select(range(min(max_eval_blocks, len(blocks["validation"]))))
    masked = apply_fixed_mask(evaluation, tokenizer, seed=seed)
    nll, n = 0.0, 0
    for labels in masked["labels"]:
        for token in labels:
            if token != -100:
                nll -= math.log((counts[token] + 1) / (total + vocab))
                n += 1
    return math.exp(nll / max(n, 1))


def pretrain_families(preset: DemoPreset, corpus, tokenizer, output_dir: str) -> dict:
    """Pretrain every size of both families once (the base is shared) and analyze them (`analyze`)."""
    from ...modeling import resolve_config
    from ...scaling.sweep import run_sweep
    from .quiet import progress_bars

    families = size_families(preset.base, preset.depth_factors, preset.width_factors)
    sizes = list(dict.fromkeys(families["depth"] + families["width"]))
    base = sizes[0]
    config = resolve_config("roberta-tiny")
    # no dropout: every run sees each block about once, so there is nothing to regularize against
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    with progress_bars():  # one bar over the whole sweep
        sweep = run_sweep(
            sizes,
            output_dir=output_dir,
            budget=preset.pretrain,
            base=config,
            head_dim=32,
            corpus=corpus,
            tokenizer=tokenizer,
            block_size=preset.block_size,
            batch_sizes=[preset.pretrain_batch],
            learning_rate_for=lambda d, w: learning_rate_for(d, w, base=base, base_lr=preset.pretrain_lr),
            save_models=True,
            seed=preset.seed,
        )
    unigram = unigram_perplexity(tokenizer, corpus, preset.block_size, sweep["eval_blocks"], preset.seed)
    labels = {(r["num_layers"], r["hidden_size"]): r["label"] for r in sweep["runs"]}  # one batch size
    named = {family: [labels[s] for s in members] for family, members in families.items()}
    result = analyze(sweep["runs"], named, unigram)
    result["budget_s"] = sweep["budget_s"]
    for run in sweep["runs"]:
        run["dir"] = os.path.join(output_dir, run["label"])
    return result


def analyze(runs: list[dict], families: dict[str, list[str]], unigram: float) -> dict:
    """Per run: parameter and per-step cost ratios to the base, past unigram or not; per family: its
    largest size against the base; which family won at equal time and why (all numbers, no adjectives).

    Args:
        runs: the sweep's runs (label, params, steps, elapsed_s, tokens_per_s, final_perplexity, curve).
        families: family name -> labels, base first.
        unigram: the unigram perplexity of the evaluation tokens.
    """
    by_label = {r["label"]: r for r in runs}
    base = by_label[next(iter(families.values()))[0]]
    base_step = base["elapsed_s"] / max(base["steps"], 1)
    for run in runs:
        run["param_ratio"] = round(run["params"] / base["params"], 3)
        run["step_cost_ratio"] = round((run["elapsed_s"] / max(run["steps"], 1)) / base_step, 3)
        run["past_unigram"] = run["final_perplexity"] is not None and run["final_perplexity"] < unigram
    summary = {}
    for family, labels in families.items():
        largest = by_label[labels[-1]]
        summary[family] = {
            "members": labels,
            "largest": largest["label"],
            "param_ratio": largest["param_ratio"],
            "step_cost_ratio": largest["step_cost_ratio"],
            "final_perplexity": largest["final_perplexity"],
            "beat_base": _lower(largest["final_perplexity"], base["final_perplexity"]),
        }
    learned = [r for r in runs if r["past_unigram"]]
    failed = [r["label"] for r in runs if not r["past_unigram"]]
    depth, width = summary.get("depth"), summary.get("width")
    winner = None
    if depth and width and not failed:
        verdict = _lower(width["final_perplexity"], depth["final_perplexity"])
        winner = {True: "width", False: "depth", None: "tie"}[verdict]
    best = min(learned, key=lambda r: r["final_perplexity"])["label"] if learned else None
    return {
        "runs": runs,
        "families": summary,
        "base": base["label"],
        "unigram_perplexity": round(unigram, 2),
        "not_past_unigram": failed,
        "winner_family": winner,
        "lowest_perplexity": best,
    }


def _lower(a: float | None, b: float | None) -> bool | None:
    """True when perplexity `a` is lower than `b` by more than the tie margin, False when higher, None: a tie."""
    if a is None or b is None or abs(a - b) <= TIE * min(a, b):
        return None
    return a < b


def plot_families(claim: dict, path: str) -> None:
    """Two panels, depth family and width family: perplexity against seconds, the unigram floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_label = {r["label"]: r for r in claim["runs"]}
    families = claim["families"]
    fig, axes = plt.subplots(1, len(families), figsize=(6 * len(families), 4.4), dpi=120, sharey=True)
    axes = [axes] if len(families) == 1 else list(axes)
    for ax, (family, info) in zip(axes, families.items(), strict=True):
        for label in info["members"]:
            run = by_label[label]
            xs, ys = zip(*run["curve"], strict=True)
            ax.plot(
                xs,
                ys,
                marker="o",
                markersize=3,
                label=f"{label}: {run['params'] / 1e6:.2f}M params, {run['tokens_per_s'] / 1e3:.1f}k tokens/s, "
                f"{run['step_cost_ratio']:.2f}x per step",
            )
        ax.axhline(claim["unigram_perplexity"], color="grey", linestyle="--", linewidth=1, label="unigram statistics")
        ax.set_yscale("log")
        readable_log_axis(ax.yaxis)
        ax.set_xlabel("training time (s)")
        ax.set_title(f"{family} family, {claim['budget_s']:.0f} s each")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_ylabel("validation MLM perplexity (log)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
