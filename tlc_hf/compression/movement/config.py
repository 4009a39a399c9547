from __future__ import annotations

from dataclasses import dataclass, field

from ..base import ScheduleConfig, TargetSelection, check_choice, check_fraction, register_config

VARIANTS = ("hard", "soft")


@register_config
@dataclass
class MovementPruningConfig(ScheduleConfig, TargetSelection):
    """Movement pruning (Sanh et al. 2020): keep the weights that move away from zero during fine-tuning.

    Scores accumulate S -= w * dL/dw at every step (the paper's eq. 6 under SGD). `variant="hard"` keeps
    the top (1 - sparsity) scores per module on a cubic schedule, so the final sparsity is exactly
    `sparsity`. `variant="soft"` keeps the weights whose standardized score (per module) is above a
    threshold that ramps up to `threshold` (0.0 keeps about the upper half); the resulting sparsity is an
    outcome, reported, not chosen.
    At the end the masks are baked into the weights (pruned weights are exact zeros).
    """

    method = "movement"
    sparsity: float = field(default=0.5, metadata={"help": "hard: final fraction of zero weights, in [0, 1)."})
    variant: str = field(default="hard", metadata={"help": "hard (top-k) or soft (threshold)."})
    threshold: float = field(default=0.0, metadata={"help": "soft: final threshold on standardized scores."})

    def validate(self) -> None:
        super().validate()
        check_fraction("sparsity", self.sparsity)
        check_choice("variant", self.variant, VARIANTS)
        if not isinstance(self.threshold, (int, float)) or not -3.0 <= self.threshold <= 3.0:
            raise ValueError(f"threshold={self.threshold!r} must be a number in [-3, 3] (standard deviations)")
