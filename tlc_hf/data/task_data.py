"""Train / eval datasets and the collator for a task, from a corpus: shared by `tlc-hf train` and recipes."""

from __future__ import annotations

from .mlm import MLMCollator, apply_fixed_mask, build_mlm_dataset
from .tasks import build_classification_dataset, build_seq2seq_dataset

TASKS = ("mlm", "classification", "seq2seq")


def build_task_data(
    task: str,
    tokenizer,
    corpus,
    *,
    block_size: int = 128,
    max_length: int = 128,
    max_eval_examples: int | None = 512,
    eval_split: str = "validation",
    seed: int = 0,
):
    """(train dataset, eval dataset, collator) for `task`; the eval set is the first `max_eval_examples` of
    `eval_split`. MLM evaluation uses a fixed, seeded mask. A corpus without a train split gives None for it."""
    if task == "mlm":
        data = build_mlm_dataset(tokenizer, corpus, block_size=block_size)
        collator = MLMCollator(tokenizer, seed=seed)
    elif task == "classification":
        from transformers import DataCollatorWithPadding

        data = build_classification_dataset(tokenizer, corpus, max_length=max_length)
        collator = DataCollatorWithPadding(tokenizer)
    elif task == "seq2seq":
        from transformers import DataCollatorForSeq2Seq

        data = build_seq2seq_dataset(tokenizer, corpus, max_source_length=max_length)
        collator = DataCollatorForSeq2Seq(tokenizer)
    else:
        raise ValueError(f"task={task!r} is not known; choose one of {TASKS}")
    eval_data = data[eval_split]
    if max_eval_examples and len(eval_data) > max_eval_examples:
        eval_data = eval_data.select(range(max_eval_examples))
    if task == "mlm":
        eval_data = apply_fixed_mask(eval_data, tokenizer, seed=seed)
    return data.get("train"), eval_data, collator
