"""Uncertainty of accuracies measured on a finite test split: Wilson intervals and paired differences."""

from __future__ import annotations

import math


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% (z=1.96) Wilson score interval of an accuracy of `correct` out of `n`.

    Example:
        ```python
        wilson_interval(350, 427)  # (0.780, 0.855)
        ```
    """
    if n <= 0:
        raise ValueError(f"n={n!r} must be a positive number of examples")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def paired_difference(a: list[int], b: list[int], references: list[int], z: float = 1.96) -> tuple[float, float]:
    """Accuracy of predictions `b` minus accuracy of `a` on the same examples, and the half-width of its
    95% normal interval, paired by example (tighter than comparing two independent intervals).

    Example:
        ```python
        change, half = paired_difference(fp32_predictions, int8_predictions, labels)  # e.g. (+0.016, 0.021)
        ```
    """
    d = [(y == r) - (x == r) for x, y, r in zip(a, b, references, strict=True)]
    if not d:
        raise ValueError("paired_difference needs at least one example")
    n, mean = len(d), sum(d) / len(d)
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / max(1, n - 1))
    return mean, z * sd / math.sqrt(n)
