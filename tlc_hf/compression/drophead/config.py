"""What DropHead is asked to do: `DropHeadConfig`, and its rate schedule over progress p (`drophead_rate`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..base import CompressionConfig, check_choice

DROPHEAD_SCHEDULES = ("v", "linear", "constant")


def drophead_rate(p: float, rate: float, schedule: str = "v") -> float:
    """Drop rate at progress p. "v": Zhou et al.'s V shape, `rate` at the start, 0 at the middle, back to
    `rate` at the end; "linear": 0 rising to `rate`; "constant": `rate`."""
    check_choice("schedule", schedule, DROPHEAD_SCHEDULES)
    p = min(max(p, 0.0), 1.0)
    if schedule == "v":
        return rate * abs(1.0 - 2.0 * p)
    return rate * p if schedule == "linear" else rate


@dataclass
class DropHeadConfig(CompressionConfig):
    """Scheduled DropHead (Zhou et al. 2020) while fine-tuning; nothing changes at inference."""

    method = "drophead"
    rate: float = field(default=0.1, metadata={"help": "Peak fraction of heads dropped, in [0, 1)."})
    schedule: str = field(default="v", metadata={"help": f"One of {DROPHEAD_SCHEDULES}."})
    seed: int | None = field(default=None, metadata={"help": "Seed of the head-dropping generator."})

    def validate(self) -> None:
        rate = self.rate
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
            raise ValueError(f"rate={rate!r} must be a number in [0, 1)")
        check_choice("schedule", self.schedule, DROPHEAD_SCHEDULES)
