"""Core metrics computed locally (no `evaluate.load`, which needs the Hub).

They live in `tlc_hf.training.metrics`, next to the trainers whose `compute_metrics` they are (the task
registry, `tlc_hf.tasks`, names them per task); evaluation uses the same functions.
"""

from ..training.metrics import accuracy_metrics, masked_token_loss_sums, perplexity, perplexity_metrics

__all__ = ["accuracy_metrics", "masked_token_loss_sums", "perplexity", "perplexity_metrics"]
