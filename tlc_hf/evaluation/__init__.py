"""Evaluation: core metrics computed without the Hub."""

from .metrics import accuracy_metrics, masked_token_loss_sums, perplexity, perplexity_metrics

__all__ = ["accuracy_metrics", "masked_token_loss_sums", "perplexity", "perplexity_metrics"]
