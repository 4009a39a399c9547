"""`CompressionReport`: baseline vs compressed, every field measured (a field not measured is absent).

The measuring is `tlc_hf.evaluation.measure`'s; here the report is assembled, summarized and judged against
the recipe's targets."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from ..evaluation.measure import ModelMeasurement, environment, interleaved_speedup, measure_model
from ..tasks import infer_task

REPORT_NAME = "compression_report.json"


@dataclass
class CompressionReport:
    model_name: str
    task: str | None = None
    base_model: str | None = None  # a Hub id, never a local path
    base_model_note: str | None = None  # why no base model is named, when none is
    dataset: str | None = None
    data: dict | None = None  # the DataIdentity evaluated on (train/test split of the model's own data)
    data_note: str | None = None  # where that data came from, in words
    compressed: ModelMeasurement = field(default_factory=ModelMeasurement)
    baseline: ModelMeasurement | None = None
    methods: list = field(default_factory=list)
    budget_spent_s: float | None = None
    size_ratio: float | None = None  # baseline size / compressed size
    speedup: float | None = None  # baseline latency / compressed latency, the two timed interleaved
    targets: list = field(default_factory=list)  # [{target, wanted, measured, met}], from the recipe's targets
    benchmark: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    hardware: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ModelMeasurement):
                value = value.to_dict()
            if value is not None and value != {} and value != []:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CompressionReport:
        data = dict(data)
        for key in ("compressed", "baseline"):
            if data.get(key) is not None:
                data[key] = ModelMeasurement(**data[key])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, directory: str | os.PathLike) -> str:
        path = os.path.join(directory, REPORT_NAME)
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> CompressionReport:
        with open(os.path.join(directory, REPORT_NAME)) as f:
            return cls.from_dict(json.load(f))


def build_report(
    model_dir: str | os.PathLike,
    baseline_dir: str | os.PathLike | None = None,
    *,
    task: str | None = None,
    corpus=None,
    dataset: str | None = None,
    data=None,
    base_model: str | None = None,
    targets: dict | None = None,
    **measure_kwargs,
) -> CompressionReport:
    """Measure `model_dir` (and `baseline_dir`, on the same examples) and collect the recipe and budget.

    The data: `corpus` if given (name it with `dataset`), else `data` (a `DataIdentity`), else the data
    recorded in the model's config at training time; the report says which (`data`, `data_note`).
    `base_model` (a Hub id) defaults to the baseline's Hub id (see `base_model_of`), never a local path.
    With a baseline, `speedup` times both models interleaved on the same inputs (a ratio from one run, which
    separate runs cannot give on a noisy machine) and `targets` (a recipe's `targets`) are checked.
    """
    from transformers import AutoConfig

    from ..compression.loading import check_model_location
    from ..compression.record import compression_record
    from ..data.identity import resolve_data
    from .ids import base_model_of

    for location in (model_dir, baseline_dir):
        if location is not None:
            check_model_location(location)
    identity = data
    note = "a corpus given by the caller" if data is None else f"the model's data, {data.describe()}"
    if corpus is None and measure_kwargs.get("evaluate", True):
        identity, note = resolve_data(AutoConfig.from_pretrained(model_dir), data)
        corpus = identity.load()
    compressed, settings = measure_model(model_dir, task=task, corpus=corpus, **measure_kwargs)
    baseline = measure_model(baseline_dir, task=task, corpus=corpus, **measure_kwargs)[0] if baseline_dir else None
    compression = compression_record(AutoConfig.from_pretrained(model_dir))
    methods = [
        {**m, **({"storage": compression["storage"]} if compression.get("storage") == "sparse" else {})}
        for m in compression.get("methods", [])
    ]
    versions, hardware = environment()
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    size_ratio = speedup = None
    if baseline is not None and baseline.size_mb and compressed.size_mb:
        size_ratio = round(baseline.size_mb / compressed.size_mb, 4)
    if baseline is not None and measure_kwargs.get("bench", True):
        speedup = round(interleaved_speedup(baseline_dir, model_dir, **measure_kwargs), 4)
    base_model, base_model_note = base_model_of(base_model or baseline_dir)
    report = CompressionReport(
        model_name=os.path.basename(os.path.normpath(model_dir)),
        task=task or infer_task(config),
        base_model=base_model,
        base_model_note=base_model_note,
        dataset=dataset or (identity.name if identity else None),
        data=identity.to_dict() if identity else None,
        data_note=note,
        compressed=compressed,
        baseline=baseline,
        methods=methods,
        budget_spent_s=_budget_spent(model_dir),
        size_ratio=size_ratio,
        speedup=speedup,
        benchmark=settings,
        versions=versions,
        hardware=hardware,
    )
    report.targets = check_targets_met(report, targets or {})
    return report


def one_shot_summary(
    report: CompressionReport, max_drop: float = 0.02, model_dir: str = "MODEL"
) -> tuple[str, str | None]:
    """One line saying what compression cost (metric before -> after on the test split, size and speed ratios),
    and a warning when accuracy fell more than `max_drop` (or perplexity rose more than 10%), naming the
    shipped recipe that recovers it by fine-tuning.

    Example:
        ```python
        line, warning = one_shot_summary(build_report("out/small", "out/model"))
        ```
    """
    before = report.baseline.metrics if report.baseline else {}
    after = report.compressed.metrics
    parts, warning, fell = [], None, None
    if "accuracy" in before and "accuracy" in after:
        change = after["accuracy"] - before["accuracy"]
        parts.append(f"accuracy {before['accuracy']:.3f} -> {after['accuracy']:.3f} ({100 * change:+.1f} points)")
        fell = -change > max_drop and f"accuracy fell {100 * -change:.1f} points (more than --max_drop {max_drop})"
    elif "perplexity" in before and "perplexity" in after:
        change = after["perplexity"] / before["perplexity"] - 1
        parts.append(f"perplexity {before['perplexity']:.2f} -> {after['perplexity']:.2f} ({100 * change:+.0f}%)")
        fell = change > 0.1 and f"perplexity rose {100 * change:.0f}% (more than 10%)"
    if report.size_ratio:
        parts.append(f"{report.size_ratio:.2f}x smaller on disk")
    if report.speedup:
        word = "faster" if report.speedup >= 1 else "slower"
        ratio = report.speedup if report.speedup >= 1 else 1 / report.speedup
        parts.append(f"{ratio:.2f}x {word} (timed interleaved with the original)")
    examples = report.benchmark.get("eval_examples")
    where = f" on {examples} test examples of {report.dataset}" if examples else ""
    line = f"Measured{where}: {', '.join(parts)}; kept in compression_report.json"
    if fell:
        warning = (
            f"{fell}: one-shot compression has no recovery. A recipe fine-tunes after pruning and recovers it, "
            f"e.g. the shipped cpu-compact (distilled from the original): tlc-hf compress {model_dir} --recipe "
            f"cpu-compact --teacher {model_dir} --output_dir OUT"
        )
    return line, warning


def check_targets_met(report: CompressionReport, targets: dict) -> list[dict]:
    """One row per target of `report`'s compressed model against its baseline (see `judge_targets`)."""
    comp, base = report.compressed.metrics, report.baseline.metrics if report.baseline else {}
    drop = round(base["accuracy"] - comp["accuracy"], 6) if "accuracy" in comp and "accuracy" in base else None
    return judge_targets(targets, size_ratio=report.size_ratio, speedup=report.speedup, accuracy_drop=drop)


def judge_targets(targets: dict, *, size_ratio=None, speedup=None, accuracy_drop=None) -> list[dict]:
    """One row per target: what was wanted, what was measured, whether it was met (None: not measured).

    Example:
        ```python
        judge_targets({"smaller": 8}, size_ratio=8.86)  # [{"target": "smaller", ..., "met": True}]
        ```
    """
    measured = {"smaller": size_ratio, "faster": speedup, "max_accuracy_drop": accuracy_drop}
    rows = []
    for name, wanted in targets.items():
        value = measured[name]
        if name == "max_accuracy_drop":
            words, met = f"accuracy drop <= {wanted}", None if value is None else value <= wanted + 1e-12
        else:
            words, met = f">= {wanted}x {name}", None if value is None else value >= wanted
        rows.append({"target": name, "wanted": words, "measured": value, "met": met})
    return rows


def _budget_spent(model_dir) -> float | None:
    path = os.path.join(model_dir, "all_results.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f).get("elapsed_s")
    return None
