"""Core metrics computed locally (no `evaluate.load`, which needs the Hub): the `compute_metrics` and
`preprocess_logits_for_metrics` of the trainers (see `tlc_hf.tasks`), and what `evaluate_model` reports."""

from __future__ import annotations

import math

import numpy as np
import torch
from transformers import EvalPrediction


def accuracy_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """Accuracy and macro F1 of argmax predictions (a `compute_metrics` for classification)."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    predicted = np.asarray(logits).argmax(axis=-1)
    labels = np.asarray(prediction.label_ids)
    keep = labels != -100
    predicted, labels = predicted[keep], labels[keep]
    f1s = []
    for cls in np.union1d(predicted, labels):
        tp = np.sum((predicted == cls) & (labels == cls))
        fp = np.sum((predicted == cls) & (labels != cls))
        fn = np.sum((predicted != cls) & (labels == cls))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {"accuracy": float(np.mean(predicted == labels)), "f1": float(np.mean(f1s)) if f1s else 0.0}


def perplexity(loss: float) -> float:
    """exp(mean cross-entropy), capped to stay finite."""
    return math.exp(min(loss, 50.0))


def masked_token_loss_sums(logits: torch.Tensor | tuple, labels: torch.Tensor) -> torch.Tensor:
    """Per example: [summed cross-entropy over labelled tokens, their count].

    Use as the Trainer's `preprocess_logits_for_metrics`: evaluation keeps two numbers per example
    instead of the full logits (batch x length x vocabulary).
    """
    logits = logits[0] if isinstance(logits, tuple) else logits
    counted = labels != -100
    losses = torch.nn.functional.cross_entropy(logits[counted].float(), labels[counted], reduction="none")
    example = counted.nonzero()[:, 0]  # which example each labelled token belongs to
    sums = torch.zeros(labels.shape[0], 2, dtype=torch.float32, device=labels.device)
    sums[:, 0].index_add_(0, example, losses)
    sums[:, 1] = counted.sum(dim=1).float()
    return sums


def perplexity_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """Perplexity = exp(mean masked-token cross-entropy over the whole eval set), token-weighted.

    Pair with `preprocess_logits_for_metrics=masked_token_loss_sums`. With a fixed eval mask
    (`apply_fixed_mask`) it is comparable across evaluations and across models.
    """
    sums = np.asarray(prediction.predictions, dtype=np.float64).reshape(-1, 2)
    total_loss, tokens = sums[:, 0].sum(), sums[:, 1].sum()
    if tokens == 0:
        raise ValueError("no labelled tokens in the eval set; perplexity is undefined")
    mean_loss = total_loss / tokens
    return {"perplexity": perplexity(mean_loss), "masked_token_loss": float(mean_loss), "masked_tokens": int(tokens)}
