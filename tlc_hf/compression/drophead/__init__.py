"""Scheduled DropHead (Zhou et al. 2020): drop whole attention heads during training."""

from ..base import CompressionMethod, register_method
from .callback import DropHeadCallback
from .config import DROPHEAD_SCHEDULES, DropHeadConfig, drophead_rate

__all__ = ["DROPHEAD_SCHEDULES", "DropHeadCallback", "DropHeadConfig", "drophead_rate"]

register_method(
    CompressionMethod(
        config_class=DropHeadConfig,
        callback=DropHeadCallback,
        describe=lambda r: (
            f"DropHead while fine-tuning (rate {r.get('rate')}, {r.get('schedule')} schedule); "
            "a regularizer: the model is neither smaller nor faster"
        ),
        trains=lambda config: True,
    )
)
