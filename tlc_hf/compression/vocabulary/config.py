"""What vocabulary trimming is asked to do: `VocabularyConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..base import CompressionConfig


@dataclass
class VocabularyConfig(CompressionConfig):
    """Keep the tokens that occur at least `min_count` times in the training texts (plus special tokens)."""

    method = "vocabulary"
    outputs = ("kept", "original")  # recorded: tokens kept, tokens before trimming
    min_count: int = field(default=1, metadata={"help": "Keep tokens seen at least this often in the corpus."})
    max_texts: int | None = field(default=None, metadata={"help": "Count tokens in at most this many texts."})

    def validate(self) -> None:
        if not isinstance(self.min_count, int) or isinstance(self.min_count, bool) or self.min_count < 1:
            raise ValueError(f"min_count={self.min_count!r} must be a positive int")
        if self.max_texts is not None and (not isinstance(self.max_texts, int) or self.max_texts < 1):
            raise ValueError(f"max_texts={self.max_texts!r} must be a positive int or None")
