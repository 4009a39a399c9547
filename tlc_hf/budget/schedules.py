"""Learning-rate multipliers as functions of budget progress p in [0, 1] (not of the step count).

`linear`   warmup, then linear decay to 0 at p = 1 ("Budgeted Training", Li et al., ICLR 2020).
`cosine`   warmup, then half a cosine to 0 at p = 1.
`constant` warmup, then 1.
`triangle` Cramming's budget triangle (Geiping & Goldstein 2023): linear rise to the peak at
           p = warmup_ratio (0.5 when warmup_ratio is 0), then linear to 0 at p = 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

# "No step limit": max_steps under a time budget, large enough never to bind, so the clock alone decides when
# training ends. A max_steps at or above it is no step limit (the budget callback, compression schedules).
UNBOUNDED_MAX_STEPS = 10**12

TIME_LR_SCHEDULES = ("linear", "cosine", "constant", "triangle")


def time_lr_lambda(schedule: str = "linear", warmup_ratio: float = 0.0) -> Callable[[float], float]:
    """The multiplier f(p) of `schedule` with warmup over the first `warmup_ratio` of the budget."""
    if schedule not in TIME_LR_SCHEDULES:
        raise ValueError(f"time_lr_schedule={schedule!r} is not known; choose one of {TIME_LR_SCHEDULES}")
    if not 0.0 <= warmup_ratio < 1.0:
        raise ValueError(f"time_warmup_ratio={warmup_ratio!r} must lie in [0, 1)")
    if schedule == "triangle" and warmup_ratio == 0.0:
        warmup_ratio = 0.5

    def multiplier(p: float) -> float:
        p = min(max(p, 0.0), 1.0)
        if p < warmup_ratio:
            return p / warmup_ratio
        after = (p - warmup_ratio) / (1.0 - warmup_ratio)
        if schedule in ("linear", "triangle"):
            return 1.0 - after
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * after))
        return 1.0

    return multiplier
