"""What the planner returns: one `CandidatePlan` per size (its training cost, predicted quality, chosen recipe)
and the `Plan` (candidates ranked, the recommendation, the settings it was made with); its Markdown table."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..budget.duration import format_duration


@dataclass
class CandidatePlan:
    """One candidate size: its training cost, predicted quality at the budget and cheapest fitting recipe."""

    label: str
    family: str
    num_layers: int
    hidden_size: int
    params: int
    step_s: float
    steps_in_budget: int
    tokens_in_budget: int
    learning_rate: float
    predicted_loss: float | None = None
    loss_low: float | None = None
    loss_high: float | None = None
    sweep_loss: float | None = None
    recipe: str | None = None
    size_bytes: int | None = None
    file_bytes: int | None = None
    latency_ms: float | None = None
    fits: bool = False
    time_s: float | None = None
    notes: list = field(default_factory=list)
    options: list = field(default_factory=list)

    @property
    def predicted_perplexity(self) -> float | None:
        return None if self.predicted_loss is None else math.exp(self.predicted_loss)


@dataclass
class Plan:
    """The result of `plan`: candidates ranked (fitting ones first, by predicted loss), the recommendation."""

    budget_s: float
    max_size_bytes: float
    max_latency_ms: float
    device: str
    base: str
    task: str
    sweep_fraction: float
    sweep_s_per_candidate: float
    batch_size: int
    seq_len: int
    latency_batch_size: int
    latency_seq_len: int
    candidates: list[CandidatePlan]
    recommended: str | None
    recommendation: str
    one_layer_latency_ms: float
    hardware: dict
    output_dir: str | None = None
    recipe_yaml: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        for row, candidate in zip(data["candidates"], self.candidates, strict=True):
            row["predicted_perplexity"] = candidate.predicted_perplexity
        return data

    def table(self) -> str:
        """The ranked table as Markdown."""
        lines = [
            "| rank | candidate | params | steps in budget | predicted loss (90% interval) | recipe | size | "
            "latency | fits | time |",
            "|---:|---|---:|---:|---|---|---:|---:|---|---:|",
        ]
        for rank, c in enumerate(self.candidates, 1):
            loss = "-" if c.predicted_loss is None else f"{c.predicted_loss:.3f}"
            if c.loss_low is not None:
                loss += f" ({c.loss_low:.3f}-{c.loss_high:.3f})"
            size = "-" if c.size_bytes is None else f"{c.size_bytes / 1e6:.2f} MB"
            if c.file_bytes:
                size += f" ({c.file_bytes / 1e6:.2f} on disk)"
            latency = "-" if c.latency_ms is None else f"{c.latency_ms:.2f} ms"
            when = "-" if c.time_s is None else format_duration(c.time_s)
            lines.append(
                f"| {rank} | {c.label} ({c.family}) | {c.params / 1e6:.2f}M | {c.steps_in_budget:,} | {loss} | "
                f"{c.recipe or '-'} | {size} | {latency} | {'yes' if c.fits else 'no'} | {when} |"
            )
        return "\n".join(lines)
