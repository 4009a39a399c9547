"""Structured pruning: remove whole attention heads and FFN neurons, so the model really shrinks."""

from .callback import StructuredPruningCallback
from .config import StructuredPruningConfig
from .prune import prune_structured_
from .t5 import PrunedT5Attention

__all__ = ["PrunedT5Attention", "StructuredPruningCallback", "StructuredPruningConfig", "prune_structured_"]
