"""Core metrics computed locally (no `evaluate.load`, which needs the Hub)."""

from __future__ import annotations

import math

import numpy as np
from transformers import EvalPrediction, TrainerCallback


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


class PerplexityCallback(TrainerCallback):
    """Adds `eval_perplexity = exp(eval_loss)` to each evaluation's metrics (put it before loggers)."""

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics is not None and "eval_loss" in metrics:
            metrics["eval_perplexity"] = perplexity(metrics["eval_loss"])


def add_perplexity() -> PerplexityCallback:
    return PerplexityCallback()
