"""Evaluation: core metrics computed without the Hub, task evaluation, latency and size.

Names are imported on first use (as in `tlc_hf`): `evaluation.metrics` is a dependency of the task registry
(`tlc_hf.tasks`), which `evaluate_model` uses in turn, so importing the package must not import them all.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "benchmark_model": "bench",
    "compare_latency": "bench",
    "cpu_description": "bench",
    "parameter_counts": "bench",
    "size_on_disk_mb": "bench",
    "evaluate_model": "evaluate_model",
    "infer_task": "evaluate_model",
    "accuracy_metrics": "metrics",
    "masked_token_loss_sums": "metrics",
    "perplexity": "metrics",
    "perplexity_metrics": "metrics",
}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
