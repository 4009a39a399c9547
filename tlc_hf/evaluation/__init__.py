"""Evaluation: core metrics computed without the Hub."""

from .bench import benchmark_model, compare_latency, cpu_description, parameter_counts, size_on_disk_mb
from .evaluate_model import evaluate_model, infer_task
from .metrics import accuracy_metrics, masked_token_loss_sums, perplexity, perplexity_metrics

__all__ = [
    "benchmark_model",
    "compare_latency",
    "cpu_description",
    "evaluate_model",
    "infer_task",
    "parameter_counts",
    "size_on_disk_mb",
    "accuracy_metrics",
    "masked_token_loss_sums",
    "perplexity",
    "perplexity_metrics",
]
