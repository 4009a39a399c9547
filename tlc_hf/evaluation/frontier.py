"""The size / latency / accuracy frontier of compressed variants of one model, measured in one run.

Each variant is evaluated on the same test examples (accuracy with its Wilson interval and the paired change
against the reference), weighed on disk, counted, and timed interleaved with all the others, so its speedup
is a ratio from one run on one machine.
"""

from __future__ import annotations

import os

from .stats import paired_difference, wilson_interval


def measure_frontier(
    variants: dict,
    *,
    corpus=None,
    max_length: int = 128,
    batch_size: int = 8,
    seq_len: int = 128,
    rounds: int = 10,
    real_examples: int = 128,
    show_progress: bool = False,
) -> list[dict]:
    """Measure each model folder of `variants` (name -> folder; the first is the reference).

    Args:
        variants: name -> a folder `load_compressed` reads (fp32, pruned, ONNX int8, ...).
        corpus: the `DatasetDict` to evaluate on (its test split); default: each model's recorded data.
        max_length: tokens per test example.
        batch_size, seq_len, rounds: the interleaved latency measurement (`compare_latency`).
        real_examples: beside the fixed batch, the test texts are timed too (`compare_real_inputs`): batch-1
            latency over this many of them, throughput over all in length-sorted batches of `batch_size`; 0 skips.

    Returns:
        One row per variant: name, folder, accuracy, ci (95% Wilson), accuracy_change and change_ci (paired,
        against the reference), examples, size_mb, smaller, latency_ms, speedup, params, bits; with real
        inputs also batch1_latency_ms_p50 / _p95, throughput_examples_per_s and real_speedup.

    Example:
        ```python
        rows = measure_frontier({"fp32": "out/fp32", "int8": "out/int8"})
        plot_frontier(rows, "frontier.png", "my model")
        ```
    """
    from transformers import AutoTokenizer

    from ..compression.loading import load_compressed
    from .bench import compare_latency, compare_real_inputs, parameter_counts, size_on_disk_mb
    from .evaluate_model import evaluate_model

    if not variants:
        raise ValueError("measure_frontier needs at least one variant")
    models, measured, tokenizers = {}, {}, {}
    for name, directory in variants.items():
        models[name] = load_compressed(str(directory))
        tokenizers[name] = AutoTokenizer.from_pretrained(str(directory))
        measured[name] = evaluate_model(
            models[name],
            tokenizers[name],
            "classification",
            corpus,
            max_examples=None,
            max_length=max_length,
            show_progress=show_progress,
            return_predictions=True,
        )
    timed = compare_latency(models, batch_size=batch_size, seq_len=seq_len, rounds=rounds)
    real = {}
    if real_examples:
        from ..data.identity import resolve_data

        texts = (corpus if corpus is not None else resolve_data(next(iter(models.values())))[0].load())["test"]["text"]
        real = compare_real_inputs(
            models, tokenizers, texts, batch_size=batch_size, single_examples=real_examples, rounds=max(1, rounds // 5)
        )
    reference_name = next(iter(variants))
    reference = measured[reference_name]
    reference_size = size_on_disk_mb(variants[reference_name])
    rows = []
    for name, directory in variants.items():
        m = measured[name]
        change, change_ci = paired_difference(reference["predictions"], m["predictions"], m["references"])
        counts = parameter_counts(models[name])
        size = size_on_disk_mb(directory)
        rows.append(
            {
                "name": name,
                "dir": os.fspath(directory),
                "accuracy": m["accuracy"],
                "ci": list(wilson_interval(round(m["accuracy"] * m["examples"]), m["examples"])),
                "accuracy_change": change,
                "change_ci": change_ci,
                "examples": m["examples"],
                "size_mb": round(size, 4),
                "smaller": reference_size / size,
                "latency_ms": timed[name]["latency_ms"],
                "speedup": timed[name]["speedup"],
                "params": counts.get("params_total"),
                "bits": counts.get("bits"),
            }
        )
        if name in real:
            rows[-1].update({k: real[name][k] for k in ("batch1_latency_ms_p50", "batch1_latency_ms_p95")})
            rows[-1]["throughput_examples_per_s"] = real[name]["throughput_examples_per_s"]
            rows[-1]["real_speedup"] = real[name]["throughput_speedup"]
    return rows


def pareto_frontier(rows: list[dict]) -> list[dict]:
    """The rows no other row beats on both size (smaller) and accuracy (higher), smallest first."""
    frontier, best = [], -1.0
    for row in sorted(rows, key=lambda r: r["size_mb"]):
        if row["accuracy"] > best:
            frontier.append(row)
            best = row["accuracy"]
    return frontier


def readable_log_axis(axis) -> None:
    """Plain-number labels on a log axis (0.5, 1, 2 rather than 5x10^-1), minor labels off so none overlap."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_frontier(rows: list[dict], path: str, title: str) -> None:
    """Accuracy (with its interval) against size on disk, log x; colour = latency; dashed = Pareto frontier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.2))
    points = ax.scatter(
        [r["size_mb"] for r in rows],
        [100 * r["accuracy"] for r in rows],
        c=[r["latency_ms"] for r in rows],
        cmap="viridis_r",
        s=70,
        edgecolors="black",
        zorder=3,
    )
    for r in rows:
        ax.errorbar(
            r["size_mb"],
            100 * r["accuracy"],
            yerr=[[100 * (r["accuracy"] - r["ci"][0])], [100 * (r["ci"][1] - r["accuracy"])]],
            color="grey",
            alpha=0.4,
            zorder=2,
        )
        same_size = sorted((o for o in rows if abs(o["size_mb"] - r["size_mb"]) < 0.5), key=lambda o: o["accuracy"])
        left = same_size.index(r) % 2 == 1  # labels of stacked points alternate sides
        ax.annotate(
            f"{r['name']} ({r['speedup']:.1f}x faster)" if r is not rows[0] else r["name"],
            (r["size_mb"], 100 * r["accuracy"]),
            textcoords="offset points",
            xytext=(-6, 4) if left else (6, 4),
            ha="right" if left else "left",
            fontsize=8,
        )
    frontier = pareto_frontier(rows)
    ax.plot(
        [r["size_mb"] for r in frontier],
        [100 * r["accuracy"] for r in frontier],
        "--",
        color="tab:red",
        label="Pareto frontier (size, accuracy)",
    )
    ax.set_xscale("log")
    readable_log_axis(ax.xaxis)
    lo, hi = min(r["size_mb"] for r in rows), max(r["size_mb"] for r in rows)
    ax.set_xlim(lo / 1.6, hi * 1.6)
    ax.set_xlabel("size on disk (MB, log scale)")
    ax.set_ylabel("test accuracy (%), 95% interval")
    ax.set_title(title, fontsize=10)
    fig.colorbar(points, ax=ax, label="latency (ms), timed interleaved")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
