"""Tiny random-init models for tests, examples and benchmarks (hidden 32-64, 2 layers).

Everything here is built from configs, so nothing is downloaded.
"""

from __future__ import annotations

import torch
from transformers import BertConfig, MT5Config, PretrainedConfig, RobertaConfig, T5Config

from ..tasks import check_task
from .processes import accelerate_launch_command as accelerate_launch_command  # its older home

TINY_FAMILIES = ("bert", "roberta", "t5", "mt5")
ENCODER_FAMILIES = ("bert", "roberta")
SEQ2SEQ_FAMILIES = ("t5", "mt5")
TINY_VOCAB_SIZE = 128


def tiny_config(
    family: str, vocab_size: int = TINY_VOCAB_SIZE, hidden_size: int = 32, **overrides
) -> PretrainedConfig:
    """A 2-layer config of `family` ("bert", "roberta", "t5", "mt5") with `hidden_size` and 2 heads."""
    if family in ENCODER_FAMILIES:
        cls = BertConfig if family == "bert" else RobertaConfig
        kwargs = dict(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=4 * hidden_size,
            max_position_embeddings=128 + 2,
            type_vocab_size=2 if family == "bert" else 1,
            pad_token_id=0 if family == "bert" else 1,
            bos_token_id=0,
            eos_token_id=2,
        )
    elif family in SEQ2SEQ_FAMILIES:
        cls = T5Config if family == "t5" else MT5Config
        kwargs = dict(
            vocab_size=vocab_size,
            d_model=hidden_size,
            d_kv=hidden_size // 2,
            d_ff=2 * hidden_size if family == "mt5" else 4 * hidden_size,
            num_layers=2,
            num_decoder_layers=2,
            num_heads=2,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
            feed_forward_proj="gated-gelu" if family == "mt5" else "relu",
        )
    else:
        raise ValueError(f"family={family!r} is not a tiny family; choose one of {TINY_FAMILIES}")
    kwargs.update(overrides)
    return cls(**kwargs)


def tiny_model(family: str, task: str | None = None, seed: int = 0, **config_overrides) -> torch.nn.Module:
    """A tiny random-init model. `task`: "mlm" / "classification" for encoders, "seq2seq" for (m)T5.

    The default task is "mlm" for encoders and "seq2seq" for T5/mT5.
    """
    config = tiny_config(family, **config_overrides)
    task = task or ("seq2seq" if config.is_encoder_decoder else "mlm")
    spec = check_task(task, config)  # the task registry's model class; one line if the task does not fit
    if task == "classification":
        config.num_labels = 2
    torch.manual_seed(seed)
    return spec.model_class.from_config(config).eval()


def random_batch(
    family: str, batch_size: int = 2, seq_len: int = 16, vocab_size: int = TINY_VOCAB_SIZE, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Random token ids (and decoder ids for T5/mT5) that fit `tiny_model(family)`."""
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, vocab_size, (batch_size, seq_len), generator=gen)
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if family in SEQ2SEQ_FAMILIES:
        batch["decoder_input_ids"] = torch.randint(3, vocab_size, (batch_size, seq_len // 2), generator=gen)
    return batch


def toy_dataset(
    family: str = "bert", n: int = 64, seq_len: int = 8, seed: int = 1, labels: str = "class"
) -> list[dict]:
    """`n` random examples for `tiny_model(family)`: labels are a class (0/1, from the first token), the
    input tokens themselves ("tokens", for MLM), or the decoder tokens ("decoder", for T5/mT5)."""
    batch = random_batch(family, batch_size=n, seq_len=seq_len, seed=seed)
    rows = []
    for i in range(n):
        row = {key: value[i] for key, value in batch.items()}
        if labels == "class":
            row["labels"] = int(row["input_ids"][0] % 2)
        elif labels == "tokens":
            row["labels"] = row["input_ids"].clone()
        elif labels == "decoder":
            row["labels"] = row.pop("decoder_input_ids")
        else:
            raise ValueError(f"labels={labels!r} is not known; choose 'class', 'tokens' or 'decoder'")
        if labels != "decoder":
            row.pop("decoder_input_ids", None)
        rows.append(row)
    return rows


def train_tiny(
    model, dataset, output_dir, callbacks=(), steps: int = 20, trainer_class=None, teacher_model=None, **overrides
):
    """Train `model` on `dataset` for `steps` CPU steps with a stock `Trainer` (or `trainer_class`, e.g.
    `DistillationTrainer` with `teacher_model` and `distillation`); returns the trainer."""
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, Trainer, TrainingArguments

    settings = dict(
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
        logging_steps=5,
    )
    distillation = overrides.pop("distillation", None)
    extra = {"teacher_model": teacher_model, "distillation": distillation} if teacher_model is not None else {}
    trainer_class = trainer_class or Trainer
    arguments_class = Seq2SeqTrainingArguments if issubclass(trainer_class, Seq2SeqTrainer) else TrainingArguments
    args = arguments_class(output_dir=str(output_dir), **{**settings, **overrides})
    trainer = trainer_class(model=model.train(), args=args, train_dataset=dataset, callbacks=list(callbacks), **extra)
    trainer.train()
    return trainer
