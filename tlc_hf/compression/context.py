"""`CompressionContext`: what a method may need besides the model and its config (tokenizer, data, task,
teacher, device), typed, and the check that a call provides what its methods require.

Each method declares what it needs (`CompressionMethod.requires(config) -> set of names`). A recipe or CLI call
says what it provides before anything is loaded (`check_requirements`), so a missing piece is refused in one
line before the model or the data load, not after.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader

from ..data.task_data import build_task_data
from .base import get_method
from .loading import load_compressed

REQUIREMENTS = {  # name -> what provides it, in words (for the one-line refusal)
    "tokenizer": "the model's tokenizer (tokenizer=...)",
    "data": "training texts (corpus= or data= (tlc-hf: --dataset/--source), or data recorded in the model)",
    "batches": "labelled batches (dataloader=, or data with a tokenizer and a task)",
    "teacher": "a fine-tuned teacher: pass teacher_dir=... (tlc-hf: --teacher)",
}


@dataclass(frozen=True)
class CompressionContext:
    """What a method may use besides the model and its config. Every field is optional; a method that needs one
    says so in its `requires`, and `compress_` refuses a context that lacks it before touching the model.

    Args:
        tokenizer: the model's tokenizer (vocabulary trimming; OpenVINO calibration).
        corpus: a `DatasetDict` (or a list of texts) whose train split a method may read.
        data: a `DataIdentity`, loaded on first use when `corpus` is not given.
        task: "classification", "mlm" or "seq2seq" (to build labelled batches).
        dataloader: labelled batches (dicts with labels), e.g. for gradient importance.
        teacher: a fine-tuned teacher model, or its folder (distillation).
        device: where a method computes (default: where the model is).
        seed: seeds batch order.

    Example:
        ```python
        context = CompressionContext(tokenizer=tokenizer, corpus=corpus, task="classification")
        compress_(model, StructuredPruningConfig(importance="gradient"), context)
        ```
    """

    tokenizer: Any = None
    corpus: Any = None
    data: Any = None
    task: str | None = None
    dataloader: Iterable[dict] | None = None
    teacher: Any = None
    device: str | None = None
    seed: int = 0

    def provides(self) -> set[str]:
        """The requirement names (`REQUIREMENTS`) this context can satisfy."""
        return provided(
            tokenizer=self.tokenizer is not None,
            data=self.corpus is not None or self.data is not None,
            task=self.task is not None,
            dataloader=self.dataloader is not None,
            teacher=self.teacher is not None,
        )

    def load_corpus(self):
        """The corpus: `corpus`, or `data` loaded (its train split is what methods read)."""
        if self.corpus is not None:
            return self.corpus
        if self.data is not None:
            return self.data.load()
        raise ValueError(f"no data in this CompressionContext: give {REQUIREMENTS['data']}")

    def train_texts(self) -> list[str] | None:
        """The train split's texts, or None when the context has no data."""
        if self.corpus is None and self.data is None:
            return None
        corpus = self.load_corpus()
        if isinstance(corpus, (list, tuple)):
            return list(corpus)
        return corpus["train"]["text"] if "train" in corpus else None

    def batches(self, batch_size: int = 8) -> Iterable[dict]:
        """`dataloader`, or labelled batches of the train split built for `task` with `tokenizer`."""
        if self.dataloader is not None:
            return self.dataloader
        train, _, collator = build_task_data(self.task, self.tokenizer, self.load_corpus(), seed=self.seed)
        return DataLoader(train, batch_size=batch_size, shuffle=False, collate_fn=collator)

    def teacher_model(self):
        """The teacher as a model (loaded with `load_compressed` when a folder was given)."""
        if isinstance(self.teacher, (str, bytes)) or hasattr(self.teacher, "__fspath__"):
            return load_compressed(self.teacher)
        return self.teacher


def provided(*, tokenizer: bool, data: bool, task: bool, dataloader: bool = False, teacher: bool = False) -> set[str]:
    """The requirement names a call satisfies, from what it has (or will load): used before loading anything."""
    names = {name for name, has in (("tokenizer", tokenizer), ("data", data), ("teacher", teacher)) if has}
    if dataloader or (data and tokenizer and task):
        names.add("batches")
    return names


def check_requirements(configs: Iterable, available: set[str], where: str = "this call") -> None:
    """Refuse, in one line, a method whose requirements `available` lacks (naming the method and what is missing).

    Args:
        configs: the compression configs to run (each looked up in the registry).
        available: requirement names the caller provides (`provided(...)` or `CompressionContext.provides()`).
        where: the caller, for the message (e.g. "the recipe", "tlc-hf compress").
    """
    for config in configs:
        missing = sorted(get_method(config.method).requires(config) - set(available))
        if missing:
            wanted = "; ".join(f"{name}: {REQUIREMENTS.get(name, name)}" for name in missing)
            raise ValueError(f"{where}: method {_label(config)} needs {wanted}")


def _label(config) -> str:
    importance = getattr(config, "importance", None)
    return f"{config.method!r} (importance={importance!r})" if importance == "gradient" else repr(config.method)
