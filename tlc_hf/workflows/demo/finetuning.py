"""Fine-tune every pretrained size on Rotten Tomatoes under the same budget, each at a learning rate for its
size, and evaluate it on the whole test split. A size whose accuracy interval includes chance (0.5) did not
learn: that is a failure of the run, reported as one, never read as a finding about the size."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os

from ...evaluation.stats import wilson_interval
from .preset import DemoPreset

logger = logging.getLogger(__name__)

TASK_SOURCE = "rotten_tomatoes"


def fine_tune_sizes(runs: list[dict], preset: DemoPreset, output_dir: str) -> dict:
    """label -> {dir, learning_rate, steps, accuracy, ci, examples, learned, predictions, references}."""
    results = {}
    for run in runs:
        out = os.path.join(output_dir, run["label"])
        learning_rate = run["learning_rate"] * preset.finetune_lr_ratio
        steps = fine_tune(run["dir"], out, preset.finetune, learning_rate, preset)
        results[run["label"]] = {
            "dir": out,
            "learning_rate": learning_rate,
            "steps": steps,
            **evaluate_on_test(out, preset),
        }
        r = results[run["label"]]
        busy = steps < preset.min_finetune_steps
        logger.info(
            "  %s: lr %.1e, %d steps, test accuracy %.3f (95%% CI %.3f-%.3f)%s%s",
            run["label"],
            learning_rate,
            steps,
            r["accuracy"],
            *r["ci"],
            "" if r["learned"] else "  <- did not learn: a failed run",
            "  <- too few steps to judge (a busy machine?)" if busy else "",
        )
    return results


def fine_tune(
    model_dir: str,
    out: str,
    budget,
    learning_rate: float,
    preset: DemoPreset,
    progress: bool = False,
    **overrides,
) -> int:
    """`tlc_hf.workflows.train` on the sentiment task, quietly (the demo prints one line per size); with
    `progress`, the budget's progress bar. Returns the optimizer steps the budget bought."""
    from ...training.arguments import BudgetTrainingArguments
    from ..train import TrainCommandArguments, train

    command = TrainCommandArguments(
        model_name_or_path=model_dir,
        task="classification",
        source=TASK_SOURCE,
        split_seed=preset.seed,
        max_length=preset.max_length,
        max_eval_examples=None,
    )
    args = BudgetTrainingArguments(
        output_dir=out,
        time_budget=budget,
        learning_rate=learning_rate,
        per_device_train_batch_size=overrides.pop("batch_size", preset.finetune_batch),
        time_warmup_ratio=0.1,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=not progress,
        seed=preset.seed,
        **overrides,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # Trainer.log_metrics prints its table
        train(command, args)
    with open(os.path.join(out, "trainer_state.json")) as f:
        return json.load(f)["global_step"]


def held_out_reviews(count: int, seed: int):
    """`count` embedded IMDB reviews as one `test` split: held out from every demo model, which fine-tunes on
    Rotten Tomatoes only (the quick and default presets pretrain on Rotten Tomatoes too)."""
    from datasets import DatasetDict, concatenate_datasets

    from ...data import load_corpus

    splits = load_corpus(source="imdb", seed=seed, max_examples=count)
    return DatasetDict(test=concatenate_datasets([splits[name] for name in ("train", "validation", "test")]))


def evaluate_on_test(model_dir: str, preset: DemoPreset, corpus=None) -> dict:
    """Accuracy on the whole test split (of the model's data, or of `corpus`) with its 95% interval and the
    per-example predictions."""
    from transformers import AutoTokenizer

    from ...compression.loading import load_compressed
    from ...evaluation.evaluate_model import evaluate_model

    result = evaluate_model(
        load_compressed(model_dir),
        AutoTokenizer.from_pretrained(model_dir),
        "classification",
        corpus,
        max_examples=None,
        max_length=preset.max_length,
        show_progress=False,
        return_predictions=True,
    )
    ci = wilson_interval(round(result["accuracy"] * result["examples"]), result["examples"])
    return {
        "accuracy": result["accuracy"],
        "ci": [round(ci[0], 4), round(ci[1], 4)],
        "examples": result["examples"],
        "learned": ci[0] > 0.5,
        "predictions": result["predictions"],
        "references": result["references"],
    }
