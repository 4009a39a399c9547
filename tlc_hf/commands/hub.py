"""`tlc-hf evaluate`, `bench`, `card`, `push`: measure a model folder, write its card, push it."""

from __future__ import annotations

import argparse
import json
import sys

from ..data.identity import add_data_arguments, data_from_arguments


def _add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="a folder written by save_compressed / save_pretrained, or a Hub id")
    parser.add_argument("--revision", default=None, help="for a Hub id: the branch, tag or commit (default: main)")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_argument(parser)
    parser.add_argument("--task", choices=("mlm", "classification", "seq2seq"), default=None)
    add_data_arguments(parser)
    parser.add_argument("--split", default="test")
    parser.add_argument("--max_examples", type=int, default=512)
    parser.add_argument("--metric", action="append", default=[], help="an `evaluate` metric name or script path")
    parser.add_argument(
        "--trust_metric_code", action="store_true", help="allow --metric scripts to run (they are Python code)"
    )


def run_evaluate(args: argparse.Namespace, rest: list[str]) -> int:
    from transformers import AutoTokenizer

    from ..compression.loading import load_compressed, model_folder
    from ..evaluation.evaluate_model import check_metrics, evaluate_model

    if args.max_examples < 1:
        raise ValueError(f"--max_examples {args.max_examples}: give a positive number of test examples")
    check_metrics(args.metric, args.trust_metric_code)
    folder = model_folder(args.model_dir, revision=args.revision)
    model = load_compressed(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    result = evaluate_model(
        model,
        tokenizer,
        args.task,
        data=data_from_arguments(args),
        split=args.split,
        max_examples=args.max_examples,
        metrics=args.metric,
        trust_metric_code=args.trust_metric_code,
    )
    print(json.dumps(result, indent=2))
    return 0


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_argument(parser)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument(
        "--baseline",
        default=None,
        help="a reference model folder (e.g. the fp32 fine-tuned model): both are timed interleaved on the same "
        "inputs and the speedup is printed; a model slower than its baseline is called out",
    )
    parser.add_argument(
        "--real_examples",
        type=int,
        default=256,
        help="beside the fixed batch: batch-1 latency over this many test texts of the model's own data, and "
        "throughput over the whole test split in length-sorted, dynamically padded batches of --batch_size; "
        "0 skips it",
    )


def run_bench(args: argparse.Namespace, rest: list[str]) -> int:
    import torch

    from ..compression.loading import load_compressed, model_folder
    from ..evaluation.bench import benchmark_model, check_seq_len, compare_latency, cpu_description

    device = check_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    folder = model_folder(args.model_dir, revision=args.revision)
    model = load_compressed(folder, device=device)
    check_seq_len(model, args.seq_len)  # before a baseline is loaded
    result = benchmark_model(
        model,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        runs=args.runs,
        rounds=args.rounds,
        model_dir=folder,
    )
    result.update(cpu_description() if device == "cpu" else {})
    baseline = baseline_folder = None
    if args.baseline is not None:
        baseline_folder = model_folder(args.baseline)
        baseline = load_compressed(baseline_folder, device=device)
        timed = compare_latency(
            {"baseline": baseline, "model": model},
            batch_size=args.batch_size,
            seq_len=args.seq_len,
            rounds=args.rounds,
        )
        result["baseline"] = args.baseline
        result["baseline_latency_ms"] = timed["baseline"]["latency_ms"]
        result["speedup_vs_baseline"] = timed["model"]["speedup"]
    if args.real_examples and not getattr(model.config, "is_encoder_decoder", False):
        result["real_inputs"] = _bench_real_inputs(args, folder, model, baseline, baseline_folder)
    print(json.dumps(result, indent=2))
    if result.get("speedup_vs_baseline", 1.0) < 1.0:
        print(
            f"tlc-hf bench: warning: {args.model_dir} is {1 / result['speedup_vs_baseline']:.2f}x slower than "
            f"{args.baseline} on this machine ({result.get('cpu', device)}); on this CPU serve the baseline, or "
            "compress with a backend that is faster here (tlc-hf compress --export onnx)",
            file=sys.stderr,
        )
    return 0


def _bench_real_inputs(args, folder: str, model, baseline, baseline_folder: str | None) -> dict:
    """`compare_real_inputs` on the test split of the model's recorded data (the baseline interleaved)."""
    from transformers import AutoTokenizer

    from ..data.identity import resolve_data
    from ..evaluation.bench import compare_real_inputs

    identity, note = resolve_data(model)
    if not _has_tokenizer(folder):
        return {"skipped": f"{args.model_dir} holds no tokenizer, so it cannot read real texts"}
    models, tokenizers = {"model": model}, {"model": AutoTokenizer.from_pretrained(folder)}
    if baseline is not None and _has_tokenizer(baseline_folder):
        models["baseline"], tokenizers["baseline"] = baseline, AutoTokenizer.from_pretrained(baseline_folder)
    else:
        baseline = None
    texts = identity.load()["test"]["text"]
    timed = compare_real_inputs(
        models, tokenizers, texts, batch_size=args.batch_size, single_examples=args.real_examples, rounds=args.rounds
    )
    row = {**timed["model"], "data": identity.describe(), "data_note": note}
    row.pop("throughput_speedup")
    if baseline is not None:
        row["baseline"] = {k: timed["baseline"][k] for k in ("batch1_latency_ms_p50", "throughput_examples_per_s")}
        row["throughput_speedup_vs_baseline"] = 1 / timed["baseline"]["throughput_speedup"]
    return row


def _has_tokenizer(location: str) -> bool:
    """Whether a model folder or Hub id holds a saved tokenizer (transformers would build an empty one)."""
    from transformers.utils import cached_file

    return any(
        cached_file(location, name, _raise_exceptions_for_missing_entries=False) is not None
        for name in ("tokenizer_config.json", "tokenizer.json")
    )


DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def check_device(device: str) -> str:
    """`device` if this torch can use it; a one-line error naming the allowed ones otherwise."""
    import torch

    kind = device.split(":", 1)[0]
    if kind not in DEVICE_TYPES:
        raise ValueError(f"--device {device!r} is not a device; choose one of {DEVICE_TYPES} (e.g. cuda:0)")
    available = {"cpu": True, "cuda": torch.cuda.is_available()}
    available["mps"] = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    available["xpu"] = hasattr(torch, "xpu") and torch.xpu.is_available()
    if not available[kind]:
        raise ValueError(
            f"--device {device!r}: this torch ({torch.__version__}) has no {kind} device; use --device cpu"
        )
    return device


def add_card_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_argument(parser)
    parser.add_argument(
        "--output_dir",
        default=None,
        help="where README.md, compression_report.json and the plot go (default: the model's folder; for a Hub "
        "id, a new folder named after the repo)",
    )
    parser.add_argument("--baseline", default=None, help="the uncompressed model (a folder or Hub id)")
    parser.add_argument("--task", choices=("mlm", "classification", "seq2seq"), default=None)
    parser.add_argument(
        "--repo_id", default=None, help="the Hub id the card's snippet loads from (default: MODEL if a Hub id)"
    )
    parser.add_argument("--base_model", default=None, help="the Hub id of the model it was made from")
    add_data_arguments(parser)
    parser.add_argument("--max_examples", type=int, default=512)
    parser.add_argument("--runs", type=int, default=10)


def run_card(args: argparse.Namespace, rest: list[str]) -> int:
    import os

    from ..compression.loading import model_folder
    from ..hub.card import render_model_card
    from ..hub.report import build_report

    local = os.path.isdir(args.model_dir)
    folder = model_folder(args.model_dir, revision=args.revision)
    report = build_report(
        folder,
        model_folder(args.baseline) if args.baseline else None,
        task=args.task,
        base_model=args.base_model or (args.baseline if args.baseline and not os.path.isdir(args.baseline) else None),
        data=data_from_arguments(args),
        max_examples=args.max_examples,
        runs=args.runs,
    )
    output_dir = args.output_dir or (args.model_dir if local else args.model_dir.split("/")[-1])
    if not local:
        report.model_name = args.model_dir.split("/")[-1]
    os.makedirs(output_dir, exist_ok=True)
    report.save(output_dir)
    render_model_card(report, repo_id=args.repo_id or (None if local else args.model_dir), output_dir=output_dir)
    print(f"Wrote {output_dir}/README.md, compression_report.json and the plot")
    return 0


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir")
    parser.add_argument("repo_id", help="user-or-org/name")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--token", default=None)


def run_push(args: argparse.Namespace, rest: list[str]) -> int:
    from ..hub.push import push_compressed_to_hub

    url = push_compressed_to_hub(args.model_dir, args.repo_id, private=args.private, token=args.token)
    if url:
        print(f"Pushed {args.model_dir} to {args.repo_id}: {url}")
    return 0
