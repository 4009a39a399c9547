"""Loss against wall-clock time, fitted as a power law (a straight line in log-log, least squares) and
extrapolated to a longer budget with the fit's uncertainty."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PowerLawFit:
    """`log(loss) = intercept + slope * log(seconds)` fitted on `points` evaluations.

    `residual_sd` is the spread of the points around the line (log units); `level` the coverage of the
    interval `predict` gives (a t-interval for the line's value at the new time).
    """

    intercept: float
    slope: float
    points: int
    residual_sd: float
    mean_log_t: float
    sxx: float
    level: float = 0.9

    def predict(self, seconds: float) -> dict:
        """{"loss", "low", "high"} at `seconds`: the line's value and its `level` interval (None with < 3 points)."""
        x = math.log(seconds)
        centre = self.intercept + self.slope * x
        result = {"loss": math.exp(centre), "low": None, "high": None}
        if self.points >= 3 and self.sxx > 0:
            from scipy.stats import t

            se = self.residual_sd * math.sqrt(1 / self.points + (x - self.mean_log_t) ** 2 / self.sxx)
            half = t.ppf(0.5 + self.level / 2, self.points - 2) * se
            result["low"], result["high"] = math.exp(centre - half), math.exp(centre + half)
        return result

    def to_dict(self) -> dict:
        return asdict(self)


def fit_power_law(curve: list, start_s: float = 0.0, level: float = 0.9) -> PowerLawFit:
    """Fit `curve` ([[seconds, loss], ...]) from `start_s` on (the warmup is left out: its losses fall for
    another reason than time). Needs two points after `start_s` with positive time and loss.

    Example:
        ```python
        fit = fit_power_law([[10, 6.0], [20, 5.2], [40, 4.6], [80, 4.1]])
        fit.predict(3600)  # {"loss": ..., "low": ..., "high": ...}
        ```
    """
    points = [(math.log(t), math.log(loss)) for t, loss in curve if t > start_s and t > 0 and loss > 0]
    if len(points) < 2:
        raise ValueError(
            f"the loss curve has {len(points)} evaluation(s) after {start_s:.1f} s; a fit needs at least 2 "
            "(give the sweep more time: a larger sweep_fraction or budget)"
        )
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx if sxx > 0 else 0.0
    intercept = mean_y - slope * mean_x
    residuals = [y - (intercept + slope * x) for x, y in points]
    sd = math.sqrt(sum(r * r for r in residuals) / (n - 2)) if n > 2 else 0.0
    return PowerLawFit(intercept, slope, n, sd, mean_x, sxx, level)
