"""Fine-tuning data: sentence(-pair) classification and a text-to-text task for T5/mT5."""

from __future__ import annotations

from datasets import ClassLabel, DatasetDict
from transformers import PreTrainedTokenizerBase

from ..errors import MissingFieldError


def _corpus(corpus: DatasetDict | None, corpus_kwargs: dict) -> DatasetDict:
    if corpus is None:
        from .corpus import load_corpus

        return load_corpus(**corpus_kwargs)
    if corpus_kwargs:
        raise TypeError(f"corpus options {sorted(corpus_kwargs)} apply only when corpus is None")
    return corpus


def _any_split(corpus: DatasetDict):
    """The train split, or the only split there is (evaluation tokenizes just the split it reads)."""
    return corpus["train"] if "train" in corpus else next(iter(corpus.values()))


def build_classification_dataset(
    tokenizer: PreTrainedTokenizerBase, corpus: DatasetDict | None = None, *, max_length: int = 128, **corpus_kwargs
) -> DatasetDict:
    """Tokenized `text` (and `text_pair`, if present) with integer `labels`; pad with `DataCollatorWithPadding`.

    Default corpus: the embedded movie reviews, labels 0 = negative, 1 = positive.
    """
    corpus = _corpus(corpus, corpus_kwargs)
    columns = _any_split(corpus).column_names
    if "label" not in columns:
        raise MissingFieldError(f"classification needs a 'label' column; the corpus has {columns}", "label")
    pair = "text_pair" in columns

    def tokenize(batch):
        args = (batch["text"], batch["text_pair"]) if pair else (batch["text"],)
        encoded = tokenizer(*args, truncation=True, max_length=max_length)
        encoded["labels"] = batch["label"]
        return encoded

    return corpus.map(tokenize, batched=True, remove_columns=columns, desc="Tokenizing for classification")


def build_seq2seq_dataset(
    tokenizer: PreTrainedTokenizerBase,
    corpus: DatasetDict | None = None,
    *,
    prefix: str = "sentiment: ",
    max_source_length: int = 128,
    max_target_length: int = 8,
    **corpus_kwargs,
) -> DatasetDict:
    """Text-to-text data for T5/mT5.

    On a labelled corpus (the default, the embedded movie reviews) this is sentiment classification cast as
    generation, the way T5 casts SST-2: source `"sentiment: <review>"`, target the label's name
    (`"positive"` / `"negative"`). Accuracy is exact match of the generated word. A corpus with
    `source`/`target` text columns (e.g. a translation pair you prepared) is used as it is.
    Pad with `DataCollatorForSeq2Seq`.
    """
    corpus = _corpus(corpus, corpus_kwargs)
    split = _any_split(corpus)
    columns = split.column_names
    if {"source", "target"} <= set(columns) and isinstance(split[0]["source"], str):
        source_column, to_target = "source", None
    elif "label" in columns and isinstance(split.features["label"], ClassLabel):
        source_column, to_target = "text", split.features["label"].int2str
    else:
        raise MissingFieldError(
            f"seq2seq needs a ClassLabel 'label' column or 'source'/'target' text columns; the corpus has {columns}",
            "label",
        )

    def tokenize(batch):
        encoded = tokenizer([prefix + t for t in batch[source_column]], truncation=True, max_length=max_source_length)
        targets = batch["target"] if to_target is None else [to_target(label) for label in batch["label"]]
        encoded["labels"] = tokenizer(text_target=targets, truncation=True, max_length=max_target_length)["input_ids"]
        return encoded

    return corpus.map(tokenize, batched=True, remove_columns=columns, desc="Tokenizing for seq2seq")
