"""Train / eval datasets and the collator for a task, from a corpus: shared by `tlc-hf train`, recipes and
evaluation. What each task builds is its `TaskSpec`'s (`tlc_hf.tasks`)."""

from __future__ import annotations

from ..tasks import TASKS, task_spec  # noqa: F401  (TASKS re-exported)
from .mlm import apply_fixed_mask


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
    spec = task_spec(task)
    data = spec.build_dataset(tokenizer, corpus, block_size=block_size, max_length=max_length)
    collator = spec.collator(tokenizer, seed=seed)
    eval_data = data[eval_split]
    if max_eval_examples and len(eval_data) > max_eval_examples:
        eval_data = eval_data.select(range(max_eval_examples))
    if task == "mlm":
        eval_data = apply_fixed_mask(eval_data, tokenizer, seed=seed)
    return data.get("train"), eval_data, collator
