"""The recommendation: candidates ranked (fitting ones first, by predicted loss), the best with its reasons,
or, when no candidate meets the target, the closest ones and what would have to give."""

from __future__ import annotations

import math

from ..budget.duration import format_duration
from .request import PlanRequest
from .result import CandidatePlan


def rank_key(c: CandidatePlan):
    """Sort key: fitting candidates first, then by predicted loss (none last), then fewer parameters."""
    return (not c.fits, c.predicted_loss if c.predicted_loss is not None else math.inf, c.params)


def recommend(candidates: list[CandidatePlan], request: PlanRequest) -> tuple[str | None, str]:
    """(the recommended label, the recommendation in words) for `candidates` ranked by `rank_key`: the best
    fitting one and the runner-up; or, when none fits, the closest two and what would have to give."""
    fitting = [c for c in candidates if c.fits]
    target = request.target_text
    max_bytes, max_ms = request.max_size_bytes, request.max_latency_ms
    if fitting:
        best = fitting[0]
        lines = [
            f"Train {best.label} ({best.params / 1e6:.2f}M parameters, {best.family} family) for "
            f"{format_duration(request.budget_s)}, then "
            + (
                "deploy it uncompressed (float safetensors)"
                if best.recipe == "none"
                else f"compress it with {best.recipe}"
            )
            + ": predicted validation loss "
            f"{_loss_text(best)} at the budget, {best.size_bytes / 1e6:.2f} MB, {best.latency_ms:.2f} ms measured "
            f"here (target {target})."
        ]
        if len(fitting) > 1:
            second = fitting[1]
            overlap = best.loss_high is not None and second.loss_low is not None and best.loss_high >= second.loss_low
            lines.append(
                f"Runner-up: {second.label} with {second.recipe}, {_loss_text(second)}"
                + ("; the intervals overlap, so the two are a tie within the fit's uncertainty." if overlap else ".")
            )
        return best.label, " ".join(lines)
    predicted = [c for c in candidates if c.predicted_loss is not None and c.size_bytes is not None]
    if not predicted:
        return None, (
            "No candidate could be planned: none gets enough training steps in the budget on this device. "
            "What would have to give: a longer budget, or smaller sizes (--sizes)."
        )
    closest = sorted(predicted, key=lambda c: max(c.size_bytes / max_bytes, (c.latency_ms or 0) / max_ms))[:2]
    smallest_size = min(o["size_bytes"] for c in predicted for o in c.options if "size_bytes" in o)
    latencies = [o["latency_ms"] for c in predicted for o in c.options if o.get("latency_ms") is not None]
    gives = []
    if smallest_size > max_bytes:
        gives.append(f"a larger size (the smallest candidate compresses to {smallest_size / 1e6:.2f} MB)")
    if latencies and min(latencies) > max_ms:
        gives.append(f"a slower latency (the fastest measured is {min(latencies):.2f} ms)")
    if not gives:
        gives.append("size and latency together (each is met by some candidate, but not both by one)")
    near = "; ".join(
        f"{c.label} with {c.recipe}: {c.size_bytes / 1e6:.2f} MB, "
        + (f"{c.latency_ms:.2f} ms" if c.latency_ms is not None else "latency not measured (too large)")
        for c in closest
    )
    return None, f"No candidate meets {target}. Closest: {near}. What would have to give: {', '.join(gives)}."


def _loss_text(c: CandidatePlan) -> str:
    text = f"{c.predicted_loss:.3f}"
    return text + (f" (90% interval {c.loss_low:.3f}-{c.loss_high:.3f})" if c.loss_low is not None else "")
