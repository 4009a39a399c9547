"""`run_recipe`: fine-tune with a recipe's methods, finalize them, save, measure and card the result.

Every method is looked up in the registry (`tlc_hf.compression.base.get_method`): its callback runs during
fine-tuning, its `finalize` (or, for a one-shot recipe, its `apply`) after. The fine-tuned model is saved
before any finalize step, so a failing step never loses the training.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile

from ..compression.base import get_method
from ..compression.recipe import CompressionRecipe
from ..tasks import infer_task, task_spec

logger = logging.getLogger(__name__)


def run_recipe(
    recipe: CompressionRecipe,
    model_dir: str,
    output_dir: str,
    *,
    task: str | None = None,
    teacher_dir: str | None = None,
    corpus=None,
    data=None,
    max_examples: int | None = None,
    seed: int = 0,
    report: bool = True,
    report_kwargs: dict | None = None,
    overwrite: bool = False,
) -> dict:
    """Apply `recipe` to the model in `model_dir` and save the result to `output_dir`.

    Args:
        recipe: a validated `CompressionRecipe` (its composition is checked when it is built).
        model_dir: the model to compress (folder or Hub id; anything `load_compressed` reads).
        output_dir: where the compressed model, its tokenizer, report and card go (atomically).
        task: "classification", "mlm" or "seq2seq"; default: from the model's architecture.
        teacher_dir: the fine-tuned teacher, when the recipe distills.
        corpus: a `DatasetDict` to fine-tune (train split) and evaluate (test split) on.
        data: a `DataIdentity` naming other data on purpose. Default (neither): the data recorded in the
            model's config when it was trained, with its split, so no test example is ever trained on.
        max_examples: with no recorded data: use a subset of the embedded corpus.
        seed: seeds training.
        report: measure the result against `model_dir` and write `compression_report.json` and README.md.
        report_kwargs: passed to `build_report` (e.g. `{"runs": 3}` for a shorter latency measurement).
        overwrite: replace a non-empty `output_dir`.

    Returns:
        The report as a dict (or `{"output_dir": ...}` with `report=False`).

    Example:
        ```python
        recipe = CompressionRecipe.from_yaml("budget: 2m\\nmethods: [{method: structured, heads: 0.5}]")
        run_recipe(recipe, "out/finetuned", "out/compressed", task="classification")
        ```
    """
    from transformers import AutoTokenizer, set_seed

    from ..compression.loading import load_compressed, save_compressed
    from ..compression.record import record_compression
    from ..data.identity import DataIdentity, record_data_identity, resolve_data

    if recipe.distillation is not None and teacher_dir is None:
        raise ValueError("the recipe distills: pass teacher_dir=... (--teacher) with a fine-tuned teacher")
    if recipe.needs_training and recipe.budget is None and "max_steps" not in recipe.training:
        raise ValueError("the recipe trains: give it a budget (e.g. budget: 2m) or training: {max_steps: N}")
    set_seed(seed)
    model = load_compressed(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    task = task or infer_task(model)
    identity = None
    if corpus is None:
        if data is None and max_examples is not None:
            data = DataIdentity(max_examples=max_examples)
        identity, _ = resolve_data(model, data)
        corpus = identity.load()
        record_data_identity(model, identity)  # the compressed model knows its data, as the input did
    context = {"tokenizer": tokenizer, "corpus": corpus, "task": task}

    if recipe.needs_training:
        for config in recipe.methods:
            method = get_method(config.method)
            if method.before_training:  # a structural cut that fine-tuning then recovers from
                model = method.apply(model, config, context)
        model = _fine_tune(recipe, model, tokenizer, task, corpus, teacher_dir, seed)
        if recipe.distillation is not None:
            record_compression(model, recipe.distillation)
        steps = [(m, get_method(m.method)) for m in recipe.methods]
        steps = [(m, s.finalize or s.apply) for m, s in steps if not s.acts_during_training]
        steps = [(m, step) for m, step in steps if step is not None]
    else:
        steps = []
        for config in recipe.methods:
            method = get_method(config.method)
            if method.apply is None:
                raise ValueError(f"method {config.method!r} has no one-shot form; give the recipe a budget")
            steps.append((config, method.apply))
    trained_dir = None
    if recipe.needs_training and (steps or recipe.lora is not None):
        trained_dir = f"{os.path.normpath(output_dir)}-finetuned"
        save_compressed(model, trained_dir, tokenizer, overwrite=True)
    try:
        for config, step in steps:
            model = step(model, config, context)
        tokenizer = context["tokenizer"]  # a method may change it (vocabulary trimming)
        adapter = None
        if recipe.lora is not None:
            model, adapter = _lora_recovery(recipe.lora, model, tokenizer, task, corpus, seed)
        save_compressed(model, output_dir, tokenizer, overwrite=overwrite, extra={"recipe": recipe.to_dict()})
        if adapter is not None:
            from ..compression.lora import ADAPTER_DIR

            adapter.save_pretrained(os.path.join(output_dir, ADAPTER_DIR))
    except Exception as err:
        if trained_dir is None:
            raise
        raise RuntimeError(
            f"the recipe's fine-tuning finished but a later step failed ({type(err).__name__}: {err}); "
            f"the fine-tuned model is saved in {trained_dir}"
        ) from err
    if trained_dir is not None:
        shutil.rmtree(trained_dir, ignore_errors=True)
    if not report:
        return {"output_dir": output_dir}
    from ..hub.card import render_model_card
    from ..hub.report import build_report

    measured = build_report(
        output_dir, model_dir, task=task, corpus=corpus, data=identity, targets=recipe.targets, **(report_kwargs or {})
    )
    measured.save(output_dir)
    render_model_card(measured, output_dir=output_dir)
    missed = [t for t in measured.targets if t["met"] is False]
    if missed:  # the model is saved and carded either way; the report says what it did not reach
        logger.warning(
            "%s missed %d target(s): %s",
            output_dir,
            len(missed),
            "; ".join(f"{t['target']}: wanted {t['wanted']}, measured {t['measured']}" for t in missed),
        )
    return measured.to_dict()


def _fine_tune(recipe, model, tokenizer, task, corpus, teacher_dir, seed):
    from ..compression.loading import load_compressed
    from ..data.task_data import build_task_data
    from ..training.arguments import BudgetSeq2SeqTrainingArguments
    from ..training.distillation import DistillationSeq2SeqTrainer, DistillationTrainer

    train_data, eval_data, collator = build_task_data(task, tokenizer, corpus, seed=seed)
    callbacks = []
    for config in recipe.methods:
        factory = get_method(config.method).callback
        callback = factory(config) if factory is not None else None
        if callback is not None:
            callbacks.append(callback)
    seq2seq = task == "seq2seq"
    with tempfile.TemporaryDirectory(prefix="tlc_hf_recipe_") as tmp:
        defaults = dict(save_strategy="no", report_to="none", disable_tqdm=True, seed=seed, logging_steps=10)
        args = BudgetSeq2SeqTrainingArguments(
            output_dir=tmp, time_budget=recipe.budget, **{**defaults, **recipe.training}
        )
        common = dict(
            model=model.train(),
            args=args,
            train_dataset=train_data,
            eval_dataset=eval_data,
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
        if recipe.distillation is not None:
            trainer_cls = DistillationSeq2SeqTrainer if seq2seq else DistillationTrainer
            trainer = trainer_cls(
                teacher_model=load_compressed(teacher_dir), distillation=recipe.distillation, **common
            )
        else:
            trainer = task_spec(task).trainer_class(**common)
        trainer.train()
    return trainer.model.eval()


def _lora_recovery(config, model, tokenizer, task, corpus, seed):
    """Fine-tune a LoRA adapter on the compressed model; merge it where the weights are float."""
    from ..compression.lora import add_lora, can_merge, merge_keeping_zeros
    from ..compression.record import compression_history, record_compression, set_compression_history
    from ..data.task_data import build_task_data
    from ..training.arguments import BudgetSeq2SeqTrainingArguments

    history = compression_history(model)
    peft_model = add_lora(model, config, task)
    train_data, eval_data, collator = build_task_data(task, tokenizer, corpus, seed=seed)
    with tempfile.TemporaryDirectory(prefix="tlc_hf_lora_") as tmp:
        args = BudgetSeq2SeqTrainingArguments(
            output_dir=tmp,
            time_budget=config.budget,
            learning_rate=config.learning_rate,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=seed,
        )
        task_spec(task).trainer_class(
            model=peft_model, args=args, train_dataset=train_data, data_collator=collator, processing_class=tokenizer
        ).train()
    peft_model.eval()
    if can_merge(model):
        merged = merge_keeping_zeros(peft_model)
        set_compression_history(merged, history)
        record_compression(merged, dataclasses.replace(config, merged=True))
        return merged, None
    base = peft_model.get_base_model()
    set_compression_history(base, history)
    record_compression(base, dataclasses.replace(config, merged=False))
    return base, peft_model
