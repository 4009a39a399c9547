"""The task registry: what each task ("mlm", "classification", "seq2seq") trains and evaluates with.

One `TaskSpec` per task names the model (Auto) class, the trainer and training-arguments classes, the data
builder and collator, and the Trainer's metrics; `infer_task` tells a model's or a config's task. Training
(`workflows/train.py`), recipes, evaluation and the report all read them here, so they cannot disagree.

Example:
    ```python
    spec = task_spec(infer_task(model))
    trainer = spec.trainer_class(model=model, args=args, compute_metrics=spec.compute_metrics, ...)
    ```
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import (
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    PretrainedConfig,
)

from .data.mlm import MLMCollator, build_mlm_dataset
from .data.tasks import build_classification_dataset, build_seq2seq_dataset
from .training.arguments import BudgetSeq2SeqTrainingArguments, BudgetTrainingArguments
from .training.metrics import accuracy_metrics, masked_token_loss_sums, perplexity_metrics
from .training.trainer import BudgetSeq2SeqTrainer, BudgetTrainer

SEQ2SEQ_MODEL_TYPES = ("t5", "mt5", "umt5", "bart", "mbart")


@dataclass(frozen=True)
class TaskSpec:
    """Everything that differs between tasks.

    Args:
        name: the task's name ("mlm", "classification", "seq2seq"), as `--task` takes it.
        model_class: the `AutoModelFor...` class that builds or loads a model for the task.
        architecture_suffix: the end of the class names of models for the task ("ForMaskedLM").
        encoder_decoder: the task needs an encoder-decoder model (T5, mT5, BART).
        trainer_class: the budget trainer for the task (`BudgetSeq2SeqTrainer` generates in evaluation).
        training_arguments_class: its arguments class.
        build_dataset: `build_dataset(tokenizer, corpus, **options) -> DatasetDict` of tokenized examples.
        collator: `collator(tokenizer, seed=...)` pads (and, for MLM, masks) a batch.
        compute_metrics, preprocess_logits_for_metrics: what the Trainer computes at evaluation (or None).
    """

    name: str
    model_class: type
    architecture_suffix: str
    encoder_decoder: bool
    trainer_class: type
    training_arguments_class: type
    build_dataset: Callable
    collator: Callable
    compute_metrics: Callable | None = None
    preprocess_logits_for_metrics: Callable | None = None

    def fits(self, config: PretrainedConfig | dict) -> bool:
        """A model of `config` can do this task (encoder-decoder models do seq2seq, encoders the others)."""
        return self.encoder_decoder == _is_encoder_decoder(config)


_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="mlm",
            model_class=AutoModelForMaskedLM,
            architecture_suffix="ForMaskedLM",
            encoder_decoder=False,
            trainer_class=BudgetTrainer,
            training_arguments_class=BudgetTrainingArguments,
            build_dataset=lambda tokenizer, corpus, *, block_size=128, **_: build_mlm_dataset(
                tokenizer, corpus, block_size=block_size
            ),
            collator=lambda tokenizer, seed=0: MLMCollator(tokenizer, seed=seed),
            compute_metrics=perplexity_metrics,
            preprocess_logits_for_metrics=masked_token_loss_sums,
        ),
        TaskSpec(
            name="classification",
            model_class=AutoModelForSequenceClassification,
            architecture_suffix="ForSequenceClassification",
            encoder_decoder=False,
            trainer_class=BudgetTrainer,
            training_arguments_class=BudgetTrainingArguments,
            build_dataset=lambda tokenizer, corpus, *, max_length=128, **_: build_classification_dataset(
                tokenizer, corpus, max_length=max_length
            ),
            collator=lambda tokenizer, seed=0: DataCollatorWithPadding(tokenizer),
            compute_metrics=accuracy_metrics,
        ),
        TaskSpec(
            name="seq2seq",
            model_class=AutoModelForSeq2SeqLM,
            architecture_suffix="ForConditionalGeneration",
            encoder_decoder=True,
            trainer_class=BudgetSeq2SeqTrainer,
            training_arguments_class=BudgetSeq2SeqTrainingArguments,
            build_dataset=lambda tokenizer, corpus, *, max_length=128, **_: build_seq2seq_dataset(
                tokenizer, corpus, max_source_length=max_length
            ),
            collator=lambda tokenizer, seed=0: DataCollatorForSeq2Seq(tokenizer),
        ),
    )
}
TASKS = tuple(_TASKS)


def task_spec(task: str) -> TaskSpec:
    """The `TaskSpec` of `task`; an unknown name is refused with the known ones."""
    if task not in _TASKS:
        raise ValueError(f"task={task!r} is not known; choose one of {TASKS}")
    return _TASKS[task]


def _config_of(source) -> PretrainedConfig | dict:
    return source if isinstance(source, (PretrainedConfig, dict)) else source.config


def _is_encoder_decoder(config: PretrainedConfig | dict) -> bool:
    get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
    return bool(get("is_encoder_decoder", False)) or get("model_type") in SEQ2SEQ_MODEL_TYPES


def _architecture(source) -> str:
    """The model's class name; for a config (or an ONNX export, which is no torch module) the first of its
    `architectures`."""
    if isinstance(source, torch.nn.Module):
        return type(source).__name__
    config = _config_of(source)
    architectures = config.get("architectures") if isinstance(config, dict) else config.architectures
    return (architectures or [type(source).__name__])[0]


def infer_task(source) -> str:
    """The task of a model, a `PretrainedConfig` or a `config.json` dict: seq2seq for an encoder-decoder,
    else from the class name (`...ForMaskedLM` -> "mlm", `...ForSequenceClassification` -> "classification").

    Args:
        source: a model (a torch module or an ONNX model with a `config`), a config, or a config dict.

    Example:
        ```python
        infer_task(AutoConfig.from_pretrained("out/finetuned"))  # "classification"
        ```
    """
    if _is_encoder_decoder(_config_of(source)):
        return "seq2seq"
    name = _architecture(source)
    for spec in _TASKS.values():
        if not spec.encoder_decoder and name.endswith(spec.architecture_suffix):
            return spec.name
    raise ValueError(f"cannot tell the task of {name}; give --task (task=) one of {TASKS}")


def check_task(task: str, source) -> TaskSpec:
    """`task` is known and fits the model or config `source`; returns its `TaskSpec`."""
    spec = task_spec(task)
    config = _config_of(source)
    if not spec.fits(config):
        allowed = "seq2seq" if _is_encoder_decoder(config) else "mlm or classification"
        what = f"model_type={config.model_type!r}" if isinstance(source, PretrainedConfig) else _architecture(source)
        raise ValueError(f"task={task!r} does not fit {what}; it takes {allowed}")
    return spec
