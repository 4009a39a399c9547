"""Scheduled DropHead (Zhou et al. 2020): drop whole attention heads during training."""

from .callback import DROPHEAD_SCHEDULES, DropHeadCallback, drophead_rate

__all__ = ["DROPHEAD_SCHEDULES", "DropHeadCallback", "drophead_rate"]
