"""Evaluation: core metrics computed without the Hub."""

from .metrics import accuracy_metrics, add_perplexity

__all__ = ["accuracy_metrics", "add_perplexity"]
