"""`train`: build tokenizer, data and model from `TrainArguments`, train under a wall-clock budget, save.

The reusable core of `tlc-hf train`, the demo, the examples and the benchmarks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class TrainCommandArguments:
    """What to train and on which data (the TrainingArguments say how): `tlc-hf train`'s own flags."""

    config: str | None = field(
        default=None,
        metadata={
            "help": "Train from scratch with this config: a tiny name (bert-tiny, roberta-tiny, t5-tiny, mt5-tiny), "
            "a config.json, or a Hub name (network)."
        },
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Start from these pretrained weights (a local folder or a Hub id)."}
    )
    num_layers: int | None = field(default=None, metadata={"help": "Scale --config to this depth."})
    hidden_size: int | None = field(default=None, metadata={"help": "Scale --config to this width."})
    head_dim: int = field(default=64, metadata={"help": "Head size when scaling (heads = width / head_dim)."})
    task: str = field(default="mlm", metadata={"help": "mlm, classification or seq2seq."})
    dataset: str | None = field(
        default=None, metadata={"help": "A Hub dataset name or a local dataset folder; default: the embedded corpus."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "The dataset config, e.g. mnli for glue."})
    text_column: str | None = field(
        default=None, metadata={"help": "Text column(s) when not auto-detected: 'a' or 'a,b'."}
    )
    label_column: str | None = field(default=None, metadata={"help": "Label column when not auto-detected."})
    source: str = field(default="both", metadata={"help": "Embedded corpus: imdb, rotten_tomatoes or both."})
    max_examples: int | None = field(default=None, metadata={"help": "Use a stratified subset of this many examples."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train into a non-empty --output_dir (otherwise refused)."}
    )
    split_seed: int = field(
        default=0,
        metadata={
            "help": "Seeds the train/validation/test split (not the training seed: --seed); recorded in the model."
        },
    )
    max_eval_examples: int | None = field(default=512, metadata={"help": "Evaluate on at most this many examples."})
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "A tokenizer name or folder; default: the model's, or one trained on the corpus."},
    )
    vocab_size: int = field(default=8192, metadata={"help": "Vocabulary size of a tokenizer trained on the corpus."})
    block_size: int = field(default=128, metadata={"help": "MLM block length in tokens."})
    max_length: int = field(default=128, metadata={"help": "Max tokens per example (classification / seq2seq)."})


def data_identity_of(command: TrainCommandArguments):
    """The `DataIdentity` that `command` trains on (recorded in the model's config)."""
    from ..data.identity import DataIdentity

    return DataIdentity(
        dataset=command.dataset,
        dataset_config=command.dataset_config,
        source=command.source,
        split_seed=command.split_seed,
        max_examples=command.max_examples,
        text_column=command.text_column,
        label_column=command.label_column,
        tokenizer=command.tokenizer or command.model_name_or_path or f"trained on the corpus ({command.vocab_size})",
    )


def train(command: TrainCommandArguments, training_args) -> dict:
    """Build tokenizer, data and model from `command`, train under `training_args`, save to output_dir."""
    from transformers import AutoTokenizer, set_seed

    from ..data.identity import record_data_identity
    from ..data.task_data import build_task_data
    from ..data.tokenizer import FAMILY_TO_KIND, train_tokenizer
    from ..modeling import build_model, load_model, resolve_config
    from ..scaling.scale import scale_config
    from ..tasks import check_task

    if (command.config is None) == (command.model_name_or_path is None):
        raise ValueError("give exactly one of --config (train from scratch) or --model_name_or_path (pretrained)")
    set_seed(training_args.seed)
    config = resolve_config(command.config or command.model_name_or_path)
    if command.num_layers or command.hidden_size:
        if command.model_name_or_path:
            raise ValueError("--num_layers/--hidden_size scale a --config; pretrained weights cannot be rescaled")
        config = scale_config(config, command.num_layers, command.hidden_size, head_dim=command.head_dim)
    spec = check_task(command.task, config)
    data = data_identity_of(command)
    corpus = data.load()
    tokenizer_source = command.tokenizer or command.model_name_or_path
    if tokenizer_source is not None:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    else:
        kind = FAMILY_TO_KIND.get(config.model_type)
        if kind is None:
            raise ValueError(f"no tokenizer recipe for model_type={config.model_type!r}; pass --tokenizer")
        tokenizer = train_tokenizer(kind, command.vocab_size, corpus)

    train_data, eval_data, collator = build_task_data(
        command.task,
        tokenizer,
        corpus,
        block_size=command.block_size,
        max_length=command.max_length,
        max_eval_examples=command.max_eval_examples,
        seed=training_args.seed,
    )
    num_labels = None
    if command.task == "classification":
        label_feature = corpus["train"].features["label"]
        # ClassLabel knows its classes; plain integer labels (many Hub datasets) are counted, -1 = unlabelled
        num_labels = getattr(label_feature, "num_classes", None) or max(corpus["train"]["label"]) + 1
    if command.model_name_or_path:
        model = load_model(command.model_name_or_path, command.task, num_labels=num_labels)
    else:
        config.vocab_size = len(tokenizer)
        for attr, token in (("pad_token_id", "pad_token_id"), ("eos_token_id", "eos_token_id")):
            if getattr(tokenizer, token) is not None:
                setattr(config, attr, getattr(tokenizer, token))
        if config.is_encoder_decoder:
            config.decoder_start_token_id = tokenizer.pad_token_id
        else:
            config.max_position_embeddings = max(config.max_position_embeddings, command.block_size + 2)
        model = build_model(config, command.task, num_labels=num_labels)

    record_data_identity(model, data)  # every checkpoint and the final save carry it
    trainer = spec.trainer_class(
        model=model,
        args=training_args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=spec.compute_metrics,
        preprocess_logits_for_metrics=spec.preprocess_logits_for_metrics,
    )
    output = trainer.train(resume_from_checkpoint=_resume_flag(training_args.resume_from_checkpoint))
    budget_callback = trainer.budget_callback
    if budget_callback is not None and budget_callback.preempted:
        from ..training.checkpoints import find_resumable_checkpoint

        return {"preempted": True, "checkpoint": find_resumable_checkpoint(training_args.output_dir)}

    metrics = dict(output.metrics)
    last_eval = next((log for log in reversed(trainer.state.log_history) if "eval_loss" in log), None)
    if last_eval is None or last_eval.get("step") != trainer.state.global_step:
        last_eval = trainer.evaluate()
    metrics.update({k: v for k, v in last_eval.items() if k.startswith("eval_")})
    if budget_callback is not None:
        metrics.update(budget_callback.log_fields())
    save_final_atomically(trainer, training_args.output_dir)
    trainer.log_metrics("all", metrics)
    trainer.save_metrics("all", metrics)
    trainer.save_state()
    if trainer.is_world_process_zero():
        with open(os.path.join(training_args.output_dir, "tlc_train_args.json"), "w") as f:
            json.dump({k: v for k, v in vars(command).items()}, f, indent=2, sort_keys=True)
    return {"preempted": False, "metrics": metrics}


def _resume_flag(value):
    """`--resume_from_checkpoint True` (as in HF example scripts): the newest complete checkpoint in
    output_dir; "False" / empty: start fresh; anything else: a checkpoint folder."""
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "0", ""):
        return None
    return value


def save_final_atomically(trainer, output_dir: str) -> None:
    """`trainer.save_model()` so that a kill at any point leaves the previous state or the complete model:
    everything is written into a temporary folder first, then moved into `output_dir` with `config.json`
    last (a folder whose root has no config.json holds no final model)."""
    from ..data.cache import remove_stale_temporaries

    if not trainer.is_world_process_zero():
        trainer.save_model()  # only the main process writes; the others take part in gathering weights
        return
    os.makedirs(output_dir, exist_ok=True)
    remove_stale_temporaries(os.path.join(output_dir, "final"))
    tmp = tempfile.mkdtemp(prefix=f".final.tmp-{os.getpid()}-", dir=output_dir)
    try:
        trainer.save_model(tmp)
        names = sorted(os.listdir(tmp), key=lambda name: name == "config.json")  # config.json last
        for name in names:
            target = os.path.join(output_dir, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            os.replace(os.path.join(tmp, name), target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
