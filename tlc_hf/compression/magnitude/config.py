from __future__ import annotations

from dataclasses import dataclass, field

from ..base import ScheduleConfig, TargetSelection, check_choice, check_fraction, register_config

SCOPES = ("local", "global")


@register_config
@dataclass
class MagnitudePruningConfig(ScheduleConfig, TargetSelection):
    """Unstructured magnitude pruning to `sparsity` of the target weights.

    One-shot with `prune_magnitude_`, or gradually with `MagnitudePruningCallback`: sparsity follows a
    cubic (or linear) ramp from `initial_sparsity` at progress `start` to `sparsity` at `end`, updated
    every `update_every` steps; masks are enforced after every optimizer step.
    """

    method = "magnitude"
    sparsity: float = field(default=0.5, metadata={"help": "Target fraction of zero weights, in [0, 1)."})
    scope: str = field(default="local", metadata={"help": "local: per module; global: one threshold for all."})
    initial_sparsity: float = field(default=0.0, metadata={"help": "Sparsity at the start of the ramp."})

    def validate(self) -> None:
        super().validate()
        check_fraction("sparsity", self.sparsity)
        check_fraction("initial_sparsity", self.initial_sparsity)
        if self.initial_sparsity > self.sparsity:
            raise ValueError(f"initial_sparsity={self.initial_sparsity} must be <= sparsity={self.sparsity}")
        check_choice("scope", self.scope, SCOPES)
