"""Movement pruning (Sanh et al. 2020), hard top-k and soft threshold variants."""

from .callback import MovementPruningCallback
from .config import MovementPruningConfig

__all__ = ["MovementPruningCallback", "MovementPruningConfig"]
