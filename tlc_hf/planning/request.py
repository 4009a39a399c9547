"""What the user asks of the planner, parsed and checked once: the training budget, the deployment target,
and the settings every step of the plan shares (training batch and length, the latency's input, the sweep's
share, the seed)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..budget.duration import parse_duration
from .units import parse_latency, parse_size

TASKS = ("classification", "mlm", "seq2seq")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class PlanRequest:
    """A planning question in numbers. Build it with `PlanRequest.parse` from the user's strings.

    Args:
        budget_s: the training budget in seconds.
        max_size_bytes: the deployed model's largest size in bytes.
        max_latency_ms: the slowest forward pass allowed, at `latency_batch_size` x `latency_seq_len`.
        device: "cpu" or "cuda": where training is timed and the model is served.
        task: the deployed head ("classification" or "mlm").
        sweep_fraction: the share of the budget the whole sweep takes, in (0, 0.5].
        batch_size, seq_len: the training batch and sequence length (timed and swept at these).
        latency_batch_size, latency_seq_len: the input each latency is measured at.
        latency_runs: timed calls per round (3 rounds) for each latency measurement.
        eval_blocks: validation blocks each of the sweep's evaluations scores (10 evaluations a candidate; with a
            large vocabulary the MLM head over every token makes them cost as much as training).
        learning_rate: for the smallest candidate; larger ones get it scaled down by width and depth.
        min_steps: a candidate with fewer steps than this in the budget is too large for the device.
        seed: data order, masks and initialisation.
        show_progress: progress bars for the sweep and the latency measurements.

    Example:
        ```python
        request = PlanRequest.parse("2h", "20MB", "15ms", batch_size=32)
        request.budget_s, request.max_size_bytes, request.max_latency_ms  # 7200.0, 20000000.0, 15.0
        ```
    """

    budget_s: float
    max_size_bytes: float
    max_latency_ms: float
    device: str = "cpu"
    task: str = "classification"
    sweep_fraction: float = 0.1
    batch_size: int = 16
    seq_len: int = 128
    latency_batch_size: int = 1
    latency_seq_len: int = 128
    latency_runs: int = 10
    eval_blocks: int = 128
    learning_rate: float = 1e-3
    min_steps: int = 100
    seed: int = 0
    show_progress: bool = True

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r} is not known; choose one of {TASKS}")
        if self.device not in DEVICES:
            raise ValueError(f"device={self.device!r} is not known; choose one of {DEVICES}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but no CUDA device is visible here; plan with device='cpu'")
        if not 0 < self.sweep_fraction <= 0.5:
            raise ValueError(
                f"sweep_fraction={self.sweep_fraction!r} must lie in (0, 0.5]: a short sweep, e.g. 0.05-0.1"
            )
        for name in (
            "batch_size",
            "seq_len",
            "latency_batch_size",
            "latency_seq_len",
            "latency_runs",
            "eval_blocks",
            "min_steps",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive int")

    @classmethod
    def parse(
        cls, time_budget: str | float, max_size: str | float, max_latency: str | float, **settings
    ) -> PlanRequest:
        """The request for `time_budget` ("2h", "45m", seconds), `max_size` ("20MB", "1.5GB", bytes) and
        `max_latency` ("15ms", "0.2s", milliseconds); `settings` are the other fields."""
        return cls(
            parse_duration(time_budget, "time_budget"),
            parse_size(max_size, "max_size"),
            parse_latency(max_latency, "max_latency"),
            **settings,
        )

    @property
    def target_text(self) -> str:
        """The deployment target in words: "20 MB and 15 ms"."""
        return f"{self.max_size_bytes / 1e6:g} MB and {self.max_latency_ms:g} ms"
