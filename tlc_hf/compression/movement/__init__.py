"""Movement pruning (Sanh et al. 2020): learned during fine-tuning, hard (top-k) or soft (threshold)."""

from ..base import CompressionMethod, register_method
from .callback import MovementPruningCallback
from .config import MovementPruningConfig

__all__ = ["MovementPruningCallback", "MovementPruningConfig"]


def _describe(record: dict) -> str:
    return f"unstructured, {record.get('sparsity', 0):.0%} of the target weights set to zero, movement ({record.get('variant')})"


register_method(
    CompressionMethod(
        config_class=MovementPruningConfig,
        callback=MovementPruningCallback,
        describe=_describe,
        trains=lambda config: True,
    )
)
