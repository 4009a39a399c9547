"""Equal-budget sweeps: train every size of a grid for the same wall-clock time and compare perplexity.

The shape of the paper's Figure 2: validation perplexity against wall-clock seconds, one line per size.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from ..budget.duration import format_duration, parse_duration
from ..logs import progress_bar

logger = logging.getLogger(__name__)

LR_SCALING_RULES = ("linear", "sqrt", "none")


def parse_sizes(spec: str | Sequence) -> list[tuple[int, int]]:
    """ "2x64,4x128" (depth x width) or [(2, 64), (4, 128)] -> [(2, 64), (4, 128)]."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    sizes = []
    for item in items:
        try:
            depth, width = (int(v) for v in item.lower().split("x")) if isinstance(item, str) else map(int, item)
        except (ValueError, TypeError):
            raise ValueError(f"size {item!r} is not DEPTHxWIDTH; write sizes like '2x64,4x128,6x256'") from None
        if depth < 1 or width < 1:
            raise ValueError(f"size {item!r} needs a positive depth and width")
        sizes.append((depth, width))
    if not sizes:
        raise ValueError(f"sizes={spec!r} names no size; write sizes like '2x64,4x128,6x256'")
    return sizes


def scaled_learning_rate(learning_rate: float, batch_size: int, base_batch_size: int, rule: str) -> float:
    """LR for `batch_size` when `learning_rate` suits `base_batch_size`: linear, square-root or no scaling."""
    if rule not in LR_SCALING_RULES:
        raise ValueError(f"lr_scaling={rule!r} is not known; choose one of {LR_SCALING_RULES}")
    factor = batch_size / base_batch_size
    return learning_rate * {"linear": factor, "sqrt": math.sqrt(factor), "none": 1.0}[rule]


@dataclass
class SweepRun:
    num_layers: int
    hidden_size: int
    batch_size: int
    learning_rate: float

    @property
    def label(self) -> str:
        return f"L{self.num_layers}xH{self.hidden_size}-B{self.batch_size}"


class _SweepProgress(TrainerCallback):
    """Advances one bar over the whole sweep, in budget seconds."""

    def __init__(self, bar, offset: float, budget_callback):
        self.bar, self.offset, self.budget = bar, offset, budget_callback

    def on_step_end(self, args, state, control, **kwargs):
        shown = round(self.offset + min(self.budget.elapsed_s, self.budget.budget_s))
        self.bar.update(shown - self.bar.n)  # update() redraws by the bar's rule; refresh() would force it


def run_sweep(
    sizes: str | Sequence,
    *,
    output_dir: str,
    budget: str | float = "20s",
    base: str = "roberta-tiny",
    head_dim: int | None = 64,
    batch_sizes: Sequence[int] = (16,),
    lr_scaling: str = "linear",
    learning_rate: float = 5e-4,
    learning_rate_for=None,
    target_perplexity: float | None = None,
    eval_every: str | float | None = None,
    corpus=None,
    tokenizer=None,
    vocab_size: int = 8192,
    block_size: int = 128,
    max_eval_blocks: int = 128,
    max_examples: int | None = None,
    seed: int = 0,
    show_progress: bool = True,
    save_models: bool = False,
    **training_overrides,
) -> dict:
    """Train each (depth x width) of `sizes` (x each batch size) for `budget` with `BudgetTrainer` on the
    same MLM data and seed; evaluate perplexity on a fixed, seeded mask every `eval_every` (default:
    budget / 8). Writes `sweep.json` and `curves.png` to `output_dir` and returns the sweep dict.

    The budget is training time: evaluation pauses the clock (`time_count_evaluation=False`), because
    a bigger model also evaluates slower and that should not eat into its training. Pass
    `time_count_evaluation=True` to charge it.

    `lr_scaling` sets each batch size's LR from `learning_rate`, which suits the first batch size.
    `learning_rate_for(depth, width)`, when given, is each size's LR for the first batch size instead (one
    LR rarely suits sizes far apart: the larger ones diverge or stall where the small one learns).
    `save_models=True` keeps each trained model (with its tokenizer) in `output_dir/<label>`.
    """
    from transformers.utils import logging as hf_logging

    from ..data import apply_fixed_mask, build_mlm_dataset, load_corpus, train_tokenizer
    from .scale import ENCODER_TYPES, scale_config

    sizes = parse_sizes(sizes)
    budget_s = parse_duration(budget, "budget")
    eval_every_s = parse_duration(eval_every, "eval_every") if eval_every is not None else budget_s / 8
    if not batch_sizes or any(not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise ValueError(f"batch_sizes={batch_sizes!r} must be positive ints")
    if target_perplexity is not None and target_perplexity <= 1:
        raise ValueError(f"target_perplexity={target_perplexity!r} must be > 1")
    configs = {size: scale_config(base, *size, head_dim=head_dim) for size in sizes}  # validates before any work
    if next(iter(configs.values())).model_type not in ENCODER_TYPES:
        raise ValueError(f"the sweep pretrains with MLM; base={base!r} must be one of {ENCODER_TYPES}")

    def size_rate(depth, width):
        return learning_rate if learning_rate_for is None else float(learning_rate_for(depth, width))

    runs = [
        SweepRun(depth, width, bs, scaled_learning_rate(size_rate(depth, width), bs, batch_sizes[0], lr_scaling))
        for depth, width in sizes
        for bs in batch_sizes
    ]

    corpus = corpus if corpus is not None else load_corpus(seed=seed, max_examples=max_examples)
    tokenizer = tokenizer if tokenizer is not None else train_tokenizer("roberta", vocab_size, corpus)
    blocks = build_mlm_dataset(tokenizer, corpus, block_size=block_size)
    eval_blocks = blocks["validation"].select(range(min(max_eval_blocks, len(blocks["validation"]))))
    eval_data = apply_fixed_mask(eval_blocks, tokenizer, seed=seed)
    os.makedirs(output_dir, exist_ok=True)

    results = []
    hf_verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # one sweep bar instead of a Trainer log per run
    bar = progress_bar(
        total=round(budget_s * len(runs)), unit="s", desc="sweep", disable=not show_progress, dynamic_ncols=True
    )
    try:
        for index, run in enumerate(runs):
            bar.set_postfix_str(f"run {index + 1}/{len(runs)}: {run.label}", refresh=False)
            config = configs[(run.num_layers, run.hidden_size)]
            progress = (bar, index * budget_s)
            data = (tokenizer, blocks["train"], eval_data)
            run_args = dict(budget_s=budget_s, eval_every_s=eval_every_s, seed=seed, **training_overrides)
            results.append(
                _train_one(run, config, data, os.path.join(output_dir, run.label), progress, run_args, save_models)
            )
    finally:
        bar.close()
        hf_logging.set_verbosity(hf_verbosity)

    for result in results:
        result["time_to_target_s"] = time_to_target(result["curve"], target_perplexity)
    sweep = {
        "base": str(base),
        "budget_s": budget_s,
        "eval_every_s": eval_every_s,
        "target_perplexity": target_perplexity,
        "lr_scaling": lr_scaling,
        "eval_blocks": len(eval_data),
        "block_size": block_size,
        "runs": results,
        "recommendation": recommend(results, budget_s, target_perplexity),
    }
    with open(os.path.join(output_dir, "sweep.json"), "w") as f:
        json.dump(sweep, f, indent=2)
    plot_curves(sweep, os.path.join(output_dir, "curves.png"))
    return sweep


def _train_one(run: SweepRun, config, data, run_dir: str, progress, run_args: dict, save_model: bool) -> dict:
    import torch
    from transformers import set_seed

    from ..data import MLMCollator
    from ..evaluation.metrics import masked_token_loss_sums, perplexity_metrics
    from ..modeling import build_model
    from ..training.arguments import BudgetTrainingArguments
    from ..training.trainer import BudgetTrainer
    from .breakdown import param_breakdown

    tokenizer, train_data, eval_data = data
    block_size = len(train_data[0]["input_ids"])
    config = config.__class__.from_dict(config.to_dict())
    config.vocab_size = len(tokenizer)
    config.pad_token_id, config.bos_token_id, config.eos_token_id = (
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
    )
    config.max_position_embeddings = max(config.max_position_embeddings, block_size + 2)
    budget_s, eval_every_s, seed = run_args.pop("budget_s"), run_args.pop("eval_every_s"), run_args["seed"]
    set_seed(seed)
    model = build_model(config, "mlm")
    defaults = dict(
        dataloader_pin_memory=torch.cuda.is_available(),
        per_device_eval_batch_size=32,
        time_count_evaluation=False,
        time_warmup_ratio=0.06,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    args = BudgetTrainingArguments(
        output_dir=run_dir,
        time_budget=f"{budget_s}s",
        eval_every=f"{eval_every_s}s",
        eval_on_start=True,
        learning_rate=run.learning_rate,
        per_device_train_batch_size=run.batch_size,
        **{**defaults, **run_args},
    )
    log_path = os.path.join(run_dir, "budget_log.jsonl")
    if os.path.exists(log_path):
        os.remove(log_path)
    trainer = BudgetTrainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=tokenizer,
        data_collator=MLMCollator(tokenizer, seed=seed),
        compute_metrics=perplexity_metrics,
        preprocess_logits_for_metrics=masked_token_loss_sums,
    )
    trainer.remove_callback(PrinterCallback)  # the sweep's bar and sweep.json say it; no log dict per evaluation
    trainer.add_callback(_SweepProgress(*progress, trainer.budget_callback))
    trainer.train()
    if save_model:
        trainer.save_model(run_dir)  # model, config and tokenizer, for fine-tuning afterwards
    with open(log_path) as f:
        records = [json.loads(line) for line in f]
    curve = [
        [r["elapsed_s"], r["metrics"]["eval_perplexity"]] for r in records if "eval_perplexity" in r.get("metrics", {})
    ]
    parts = param_breakdown(model)
    elapsed = trainer.budget_callback.elapsed_s
    tokens = trainer.state.global_step * run.batch_size * block_size
    return {
        "label": run.label,
        "num_layers": run.num_layers,
        "hidden_size": run.hidden_size,
        "batch_size": run.batch_size,
        "learning_rate": run.learning_rate,
        "params": parts["total"],
        "non_embedding_params": parts["total"] - parts["embeddings"],
        "steps": trainer.state.global_step,
        "elapsed_s": round(elapsed, 3),
        "tokens_per_s": round(tokens / elapsed, 1),
        "final_perplexity": curve[-1][1] if curve else None,
        "curve": curve,
    }


def time_to_target(curve: list, target: float | None) -> float | None:
    """First wall-clock second at which an evaluation reached `target` perplexity, or None."""
    if target is None:
        return None
    return next((elapsed for elapsed, ppl in curve if ppl <= target), None)


def recommend(results: list[dict], budget_s: float, target: float | None) -> dict:
    finished = [r for r in results if r["final_perplexity"] is not None]
    best = min(finished, key=lambda r: r["final_perplexity"]) if finished else None
    reached = [r for r in results if r.get("time_to_target_s") is not None]
    fastest = min(reached, key=lambda r: r["time_to_target_s"]) if reached else None
    lines = []
    if best is not None:
        lines.append(
            f"Lowest perplexity at the {format_duration(budget_s)} budget: {best['label']} "
            f"({best['params'] / 1e6:.2f}M parameters, perplexity {best['final_perplexity']:.1f})."
        )
    if target is not None:
        lines.append(
            f"First to reach perplexity {target:g}: {fastest['label']} after {fastest['time_to_target_s']:.1f} s."
            if fastest
            else f"No size reached perplexity {target:g} within the budget."
        )
    return {
        "lowest_perplexity": best["label"] if best else None,
        "first_to_target": fastest["label"] if fastest else None,
        "text": " ".join(lines),
    }


def plot_curves(sweep: dict, path: str) -> None:
    """Validation perplexity against wall-clock seconds, one line per run, log-scale y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for run in sweep["runs"]:
        if run["curve"]:
            xs, ys = zip(*run["curve"], strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, label=f"{run['label']} ({run['params'] / 1e6:.2f}M params)")
    if sweep.get("target_perplexity"):
        ax.axhline(sweep["target_perplexity"], color="grey", linestyle="--", linewidth=1, label="target")
    ax.set_yscale("log")
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel("validation MLM perplexity (log scale)")
    ax.set_title(f"Equal-budget sweep: {sweep['base']}, {format_duration(sweep['budget_s'])} per size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
