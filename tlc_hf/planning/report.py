"""A plan's files: `plan.json`, `plan.md` (the ranked table and the recommendation), `plan.png` (predicted loss
against deployed size, the target drawn), `recipe.yaml` and the sweep, written atomically."""

from __future__ import annotations

import json
import os
import shutil

from ..budget.duration import format_duration
from ..data.cache import atomic_directory
from .result import Plan


def write_plan(result: Plan, output_dir: str, sweep_dir: str | None = None, overwrite: bool = False) -> None:
    """`plan.json`, `plan.md` (table + recommendation), `plan.png`, `recipe.yaml` (when a recipe is chosen) and
    the sweep's `sweep/` into `output_dir`, which appears only when complete."""
    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        with open(os.path.join(tmp, "plan.json"), "w") as f:
            json.dump(result.to_dict(), f, indent=2)
        with open(os.path.join(tmp, "plan.md"), "w") as f:
            f.write(render_markdown(result))
        if result.recipe_yaml is not None:
            with open(os.path.join(tmp, "recipe.yaml"), "w") as f:
                f.write(result.recipe_yaml)
        plot_plan(result, os.path.join(tmp, "plan.png"))
        if sweep_dir is not None and os.path.isdir(sweep_dir):
            shutil.copytree(sweep_dir, os.path.join(tmp, "sweep"), ignore=shutil.ignore_patterns("L*"))


def render_markdown(result: Plan) -> str:
    """`plan.md`: the question, the settings, the ranked table, the recommendation and the candidates' notes."""
    hw = result.hardware
    lines = [
        f"# Plan: {format_duration(result.budget_s)} of training, {result.max_size_bytes / 1e6:g} MB, "
        f"{result.max_latency_ms:g} ms",
        "",
        f"Base {result.base}, task {result.task}, device {result.device} ({hw.get('cpu')}, "
        f"{hw.get('torch_threads')} threads{', ' + hw['gpu'] if hw.get('gpu') else ''}). Training timed at batch "
        f"{result.batch_size} x {result.seq_len} tokens; latency measured at batch {result.latency_batch_size} x "
        f"{result.latency_seq_len}. Sweep: {result.sweep_fraction:.0%} of the budget, "
        f"{result.sweep_s_per_candidate:.1f} s per candidate; loss = MLM validation loss, extrapolated to the "
        "budget by a power law in time (90% interval).",
        "",
        result.table(),
        "",
        f"**Recommendation.** {result.recommendation}",
        "",
    ]
    notes = [f"- {c.label}: {note}" for c in result.candidates for note in c.notes]
    if notes:
        lines += ["Notes:", *notes, ""]
    return "\n".join(lines)


def plot_plan(result: Plan, path: str) -> None:
    """Predicted loss at the budget against deployed size, one point per candidate (its chosen or closest
    recipe), with the interval; the target box (size <= max_size) shaded; latency misses hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    points = [c for c in result.candidates if c.predicted_loss is not None and c.size_bytes is not None]
    for c in points:
        low = c.predicted_loss - (c.loss_low if c.loss_low is not None else c.predicted_loss)
        high = (c.loss_high if c.loss_high is not None else c.predicted_loss) - c.predicted_loss
        meets_latency = c.latency_ms is not None and c.latency_ms <= result.max_latency_ms
        ax.errorbar(
            c.size_bytes / 1e6,
            c.predicted_loss,
            yerr=[[low], [high]],
            fmt="o",
            mfc=None if meets_latency else "none",
            capsize=3,
            label=f"{c.label} + {c.recipe} ({c.latency_ms:.1f} ms)" if c.latency_ms else f"{c.label} + {c.recipe}",
        )
    ax.axvspan(0, result.max_size_bytes / 1e6, color="tab:green", alpha=0.08, label="size target")
    ax.axvline(result.max_size_bytes / 1e6, color="tab:green", linestyle="--", linewidth=1)
    ax.set_xlabel("deployed size (MB)")
    ax.set_ylabel(f"predicted MLM loss at {format_duration(result.budget_s)}")
    ax.set_title(f"Plan: target {result.max_size_bytes / 1e6:g} MB, {result.max_latency_ms:g} ms (hollow: too slow)")
    ax.grid(True, alpha=0.3)
    if points:
        ax.set_xlim(0, max(max(c.size_bytes for c in points), result.max_size_bytes) / 1e6 * 1.15)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
