"""Evaluate a model on its task: MLM perplexity, classification accuracy/F1, seq2seq BLEU and exact match,
plus any `evaluate` metric a user names (a Hub name, or a local metric script path)."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from transformers import EvalPrediction, PreTrainedModel

from ..logs import progress_bar
from ..tasks import check_task, infer_task
from .metrics import accuracy_metrics, masked_token_loss_sums, perplexity

__all__ = ["check_metrics", "evaluate_model", "infer_task"]  # infer_task: its home is tlc_hf.tasks

logger = logging.getLogger(__name__)


def evaluate_model(
    model: PreTrainedModel,
    tokenizer,
    task: str | None = None,
    corpus=None,
    *,
    data=None,
    split: str = "test",
    max_examples: int | None = 512,
    batch_size: int = 32,
    block_size: int = 128,
    max_length: int = 128,
    metrics: tuple[str, ...] | list[str] = (),
    trust_metric_code: bool = False,
    seed: int = 0,
    show_progress: bool = True,
    return_predictions: bool = False,
) -> dict:
    """Evaluate `model` on `split` of its data (`return_predictions`: classification also returns the
    per-example `predictions` and `references`, for paired comparisons between models).

    The data: `corpus` (a `DatasetDict` you built), else `data` (a `DataIdentity`: other data, on purpose),
    else the data recorded in the model's config when it was trained (`config.tlc_data`), else the embedded
    corpus. Asking for another split of the data the model was trained on is refused (it would evaluate on
    training examples). The result says which data was used (`data`, `data_note`).

    Core metrics need no network: `perplexity` (exp of the mean masked-token cross-entropy, fixed seeded
    mask) for MLM; `accuracy` and `f1` for classification; `bleu` (sacrebleu) and `exact_match` for
    seq2seq. `metrics` adds `evaluate` metrics by name or local script path, computed on predictions and
    references (classification labels, or generated / reference texts); a metric is a script that runs
    when loaded, so it needs `trust_metric_code=True`.
    """
    from datasets import DatasetDict

    from ..data.identity import resolve_data
    from ..data.task_data import build_task_data

    check_metrics(metrics, trust_metric_code)
    task = task or infer_task(model)
    check_task(task, model)
    if max_examples is not None and (not isinstance(max_examples, int) or max_examples < 1):
        raise ValueError(f"max_examples={max_examples!r} must be a positive int (or None for the whole split)")
    if corpus is None:
        identity, note = resolve_data(model, data)
        corpus, used = identity.load(), identity.to_dict()
    else:
        used, note = None, "a corpus given by the caller"
    if split not in corpus:
        raise ValueError(f"split={split!r} is not in the corpus; it has {sorted(corpus)}")
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else torch.device("cpu")
    model.eval()

    if task != "mlm":  # tokenize the evaluated split only (MLM blocks are cached for the whole corpus)
        corpus = DatasetDict({split: corpus[split]})
    _, examples, collate = build_task_data(
        task,
        tokenizer,
        corpus,
        block_size=block_size,
        max_length=max_length,
        max_eval_examples=max_examples,
        eval_split=split,
        seed=seed,
    )
    loader = torch.utils.data.DataLoader(examples, batch_size=batch_size, collate_fn=collate)
    bar = progress_bar(loader, desc=f"evaluate {task}", disable=not show_progress, leave=False)
    sums, logits_all, labels_all, predictions, references = [], [], [], [], []
    with torch.inference_mode():
        for batch in bar:
            batch = {k: v.to(device) for k, v in batch.items()}
            if task == "mlm":
                sums.append(masked_token_loss_sums(model(**batch).logits, batch["labels"]).cpu())
            elif task == "classification":
                labels = batch.pop("labels")
                logits_all.append(model(**batch).logits.float().cpu())
                labels_all.append(labels.cpu())
            else:
                labels = batch.pop("labels")
                batch.pop("decoder_input_ids", None)
                generated = model.generate(**batch, max_new_tokens=labels.shape[1] + 2, do_sample=False)
                predictions += tokenizer.batch_decode(generated, skip_special_tokens=True)
                labels = labels.masked_fill(labels == -100, tokenizer.pad_token_id)
                references += tokenizer.batch_decode(labels, skip_special_tokens=True)

    result = {"task": task, "split": split, "examples": len(examples), "data": used, "data_note": note}
    if task == "mlm":
        total = torch.cat(sums).sum(dim=0)
        result["perplexity"] = perplexity(float(total[0] / total[1]))
        result["masked_tokens"] = int(total[1])
        return result
    if task == "classification":
        prediction = EvalPrediction(predictions=torch.cat(logits_all).numpy(), label_ids=torch.cat(labels_all).numpy())
        result.update(accuracy_metrics(prediction))
        predictions = torch.cat(logits_all).argmax(dim=-1).tolist()
        references = torch.cat(labels_all).tolist()
        if return_predictions:  # per example, in split order: paired comparisons between models
            result["predictions"], result["references"] = predictions, references
    else:
        import sacrebleu

        result["bleu"] = float(sacrebleu.corpus_bleu(predictions, [references]).score)
        result["exact_match"] = float(
            np.mean([p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)])
        )
    for name in metrics:
        result.update(_evaluate_metric(name, predictions, references))
    return result


def check_metrics(metrics, trust_metric_code: bool) -> None:
    """Each metric is a local script or an `evaluate` metric that can be found, and running its code is allowed.

    Offline (`HF_HUB_OFFLINE=1`) a Hub metric must be in the local cache; online, the Hub is asked whether
    `evaluate-metric/<name>` exists.
    """
    for name in metrics or ():
        if os.path.exists(name):
            continue
        if name.endswith(".py") or os.sep in name.strip("/") and name.startswith((".", "/", "~")):
            raise FileNotFoundError(f"metric script {name!r} does not exist; give a script path or a metric name")
        found = _hub_metric_exists(name)
        if found is False:
            raise ValueError(
                f"metric {name!r} is not a local metric script nor an `evaluate` metric on the Hub "
                f"(evaluate-metric/{name}); give a metric name such as 'accuracy', 'f1' or 'bleu', or a script path"
            )
        if found is None:
            raise ValueError(
                f"metric {name!r} is not a local metric script and the Hub cannot be reached (offline) to find it; "
                "give a metric script path, or go online (a Hub metric runs downloaded code: add "
                "--trust_metric_code to allow it, trust_metric_code=True in Python)"
            )
    if metrics and not trust_metric_code:
        raise ValueError(
            f"metrics {list(metrics)} are `evaluate` metric scripts, and loading one runs its code: add "
            "--trust_metric_code to allow it (trust_metric_code=True in Python) if you trust them"
        )


def _hub_metric_exists(name: str) -> bool | None:
    """True / False when known (the local cache, or the Hub asked); None when offline and not cached."""
    from huggingface_hub import constants

    cache = os.path.join(constants.HF_HOME, "modules", "evaluate_modules", "metrics")
    if os.path.isdir(os.path.join(cache, f"evaluate-metric--{name}")):
        return True
    if constants.HF_HUB_OFFLINE:
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().repo_exists(f"evaluate-metric/{name}" if "/" not in name else name, repo_type="space")
    except Exception:  # no network: not decidable here
        return None


def _evaluate_metric(name: str, predictions: list, references: list) -> dict:
    import evaluate

    try:
        metric = evaluate.load(name)
    except Exception as err:  # evaluate raises many kinds for a missing or offline metric
        raise ValueError(
            f"metric {name!r} could not be loaded ({err}); give a Hub metric name (needs network) or a local "
            "metric script path"
        ) from err
    values = metric.compute(predictions=predictions, references=references) or {}
    short = name.rstrip("/").rsplit("/", 1)[-1].removesuffix(".py")
    return {key if key == short else f"{short}_{key}": value for key, value in values.items()}
