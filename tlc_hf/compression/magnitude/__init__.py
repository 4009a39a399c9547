"""Magnitude pruning: one-shot (`prune_magnitude_`) and gradual during training (Zhu & Gupta 2017)."""

from .callback import MagnitudePruningCallback
from .config import MagnitudePruningConfig
from .prune import prune_magnitude_

__all__ = ["MagnitudePruningCallback", "MagnitudePruningConfig", "prune_magnitude_"]
