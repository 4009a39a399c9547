"""Quality at the budget: a short equal-time sweep of the candidates, each loss-vs-time curve fitted as a power
law and extrapolated to the full budget with the fit's interval."""

from __future__ import annotations

import math
import os

from ..scaling.sweep import run_sweep
from .candidates import CandidateShapes
from .fit import fit_power_law
from .request import PlanRequest

WARMUP_RATIO = 0.06  # the sweep's time_warmup_ratio
# The fit uses the second half of each curve: the first steps drop the loss fast to unigram statistics, which is
# not the power law of what follows (one run's 12 s curves extrapolated to 120 s: fitted from the warmup on, one
# size 0.68 nats too low; the same curves refitted from their second half, within 0.07 nats; chosen after the
# fact on that run, see benchmarks/plan_extrapolation.py and the README).
FIT_FROM = 0.5


def sweep_and_fit(
    candidates: list, shapes: CandidateShapes, request: PlanRequest, corpus, tokenizer, sweep_s: float, work_dir: str
) -> dict:
    """Train every candidate for `sweep_s` (`run_sweep`, constant LR after warmup, each its own learning
    rate), then set on each: `sweep_loss` (the last evaluation), `predicted_loss` / `loss_low` / `loss_high`
    at `request.budget_s` (a power law fitted on the curve's second half, `FIT_FROM`), and steps and tokens in
    the budget from the sweep's own clock. A curve too short to fit leaves a note instead. Writes the sweep to
    `work_dir/sweep` and returns it."""
    rates = {(c.num_layers, c.hidden_size): c.learning_rate for c in candidates}
    sweep = run_sweep(
        [(c.num_layers, c.hidden_size) for c in candidates],
        output_dir=os.path.join(work_dir, "sweep"),
        budget=sweep_s,
        base=shapes.base_config,
        head_dim=shapes.head_size,
        batch_sizes=[request.batch_size],
        learning_rate_for=lambda d, w: rates[(d, w)],
        eval_every=sweep_s / 10,
        corpus=corpus,
        tokenizer=tokenizer,
        block_size=request.seq_len,
        max_eval_blocks=request.eval_blocks,
        seed=request.seed,
        show_progress=request.show_progress,
        time_lr_schedule="constant",
        time_warmup_ratio=WARMUP_RATIO,
    )
    for candidate, run in zip(candidates, sweep["runs"], strict=True):
        losses = [[t, math.log(ppl)] for t, ppl in run["curve"]]
        candidate.sweep_loss = losses[-1][1] if losses else None
        if run["steps"]:  # the sweep's own clock: steps per second of training, budget-wide
            candidate.steps_in_budget = int(run["steps"] / run["elapsed_s"] * request.budget_s)
            candidate.tokens_in_budget = candidate.steps_in_budget * request.batch_size * request.seq_len
        try:
            fit = fit_power_law(losses, start_s=FIT_FROM * sweep_s)
        except ValueError as err:
            candidate.notes.append(str(err))
            continue
        predicted = fit.predict(request.budget_s)
        candidate.predicted_loss, candidate.loss_low, candidate.loss_high = (
            predicted["loss"],
            predicted["low"],
            predicted["high"],
        )
        if fit.slope >= 0:
            candidate.notes.append("its loss did not fall during the sweep (slope >= 0): the LR may not suit it")
    return sweep
