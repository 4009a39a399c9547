"""`run_recipe`: fine-tune with a recipe's methods, finalize them, save, measure and card the result.

Every method is looked up in the registry (`tlc_hf.compression.base.get_method`); nothing here names one.
What the methods need is checked before anything loads (`CompressionRecipe.check_requirements`). Methods cut
before fine-tuning (`before_training`), train through their callback or the trainer they supply (distillation),
and run after it through `compress_` (`finalize`, or `apply` for a one-shot recipe; LoRA recovery last). The
fine-tuned model is saved before any step after it, so a failing step never loses the training.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile

from transformers import AutoConfig, AutoTokenizer, set_seed

from ..compression.base import get_method
from ..compression.compress import compress_
from ..compression.context import CompressionContext, provided
from ..compression.loading import load_compressed, save_compressed
from ..compression.recipe import CompressionRecipe
from ..compression.record import record_compression
from ..data.identity import DataIdentity, data_identity, record_data_identity, resolve_data
from ..hub.card import render_model_card
from ..hub.report import build_report
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
    # what the methods need is checked before anything loads: data means data given or recorded in the model
    # (fine-tuning alone falls back to the default corpus; a method that reads data to decide never does)
    known_data = corpus is not None or data is not None or max_examples is not None
    if not known_data and recipe.needs({"data", "batches"}):
        known_data = data_identity(AutoConfig.from_pretrained(model_dir)) is not None
    recipe.check_requirements(provided(tokenizer=True, data=known_data, task=True, teacher=teacher_dir is not None))
    if recipe.needs_training and recipe.budget is None and "max_steps" not in recipe.training:
        raise ValueError("the recipe trains: give it a budget (e.g. budget: 2m) or training: {max_steps: N}")
    before_training, after_training = recipe.steps()
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
    context = CompressionContext(tokenizer=tokenizer, corpus=corpus, task=task, teacher=teacher_dir, seed=seed)

    if recipe.needs_training:
        for config in before_training:  # a structural cut that fine-tuning then recovers from
            model = compress_(model, config, context).model
        model = _fine_tune(recipe, model, context)
        for config in recipe.configs:  # a method that supplied the trainer (distillation) is recorded now
            if get_method(config.method).trainer is not None:
                record_compression(model, config)
    trained_dir = None
    if recipe.needs_training and after_training:
        trained_dir = f"{os.path.normpath(output_dir)}-finetuned"
        save_compressed(model, trained_dir, tokenizer, overwrite=True)
    try:
        artifacts = {}
        for config, step in after_training:
            result = compress_(model, config, context, step=step)
            model, artifacts = result.model, {**artifacts, **result.artifacts}
            context = dataclasses.replace(context, tokenizer=result.tokenizer)  # vocabulary trimming changes it
        save_compressed(model, output_dir, context.tokenizer, overwrite=overwrite, extra={"recipe": recipe.to_dict()})
        for folder, artifact in artifacts.items():  # e.g. a LoRA adapter kept beside quantized weights
            artifact.save_pretrained(os.path.join(output_dir, folder))
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


def _fine_tune(recipe, model, context):
    from ..data.task_data import build_task_data
    from ..training.arguments import BudgetSeq2SeqTrainingArguments

    task, tokenizer, seed = context.task, context.tokenizer, context.seed
    train_data, eval_data, collator = build_task_data(task, tokenizer, context.corpus, seed=seed)
    callbacks = []
    for config in recipe.methods:
        factory = get_method(config.method).callback
        callback = factory(config) if factory is not None else None
        if callback is not None:
            callbacks.append(callback)
    spec = task_spec(task)
    trainer_cls, extra = spec.trainer_class, {}
    for config in recipe.configs:  # a method may supply the trainer (distillation: the teacher's)
        supply = get_method(config.method).trainer
        if supply is not None:
            trainer_cls, extra = supply(config, context, spec.encoder_decoder)
    with tempfile.TemporaryDirectory(prefix="tlc_hf_recipe_") as tmp:
        defaults = dict(save_strategy="no", report_to="none", disable_tqdm=True, seed=seed, logging_steps=10)
        args = BudgetSeq2SeqTrainingArguments(
            output_dir=tmp, time_budget=recipe.budget, **{**defaults, **recipe.training}
        )
        trainer = trainer_cls(
            model=model.train(),
            args=args,
            train_dataset=train_data,
            eval_dataset=eval_data,
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=callbacks,
            **extra,
        )
        trainer.train()
    return trainer.model.eval()
