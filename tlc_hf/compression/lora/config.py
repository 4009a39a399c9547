"""What LoRA recovery is asked to do: `LoraRecoveryConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...budget.duration import parse_duration
from ..base import CompressionConfig


@dataclass
class LoraRecoveryConfig(CompressionConfig):
    """LoRA recovery fine-tuning after compression (through peft)."""

    method = "lora_recovery"
    outputs = ("merged",)  # recorded: merged into the weights (True) or kept as an adapter (False)
    r: int = field(default=8, metadata={"help": "LoRA rank."})
    alpha: int = field(default=16, metadata={"help": "LoRA alpha (scaling = alpha / r)."})
    dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    target_modules: list | None = field(default=None, metadata={"help": "Module names; default: peft's per model."})
    budget: str | None = field(default="30s", metadata={"help": "Wall-clock budget of the recovery fine-tuning."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Learning rate of the adapter."})

    def validate(self) -> None:
        if not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"r={self.r!r} must be a positive int")
        if self.budget is not None:
            parse_duration(self.budget, "budget")
