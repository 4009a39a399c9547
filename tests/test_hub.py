"""Reports, model cards (golden files, model-index), bench, evaluate (pushes and pulls: test_hub_server.py)."""

import json
import os
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from tlc_hf import prune_magnitude_, prune_structured_, save_compressed
from tlc_hf.evaluation import benchmark_model, evaluate_model
from tlc_hf.hub import CompressionReport, ModelMeasurement, render_model_card
from tlc_hf.testing import tiny_model

GOLDEN = Path(__file__).parent / "golden"


def fixed_report(task="classification", methods=None):
    return CompressionReport(
        model_name="tiny-pruned",
        task=task,
        base_model="org/tiny-base",
        dataset="movie-reviews",
        baseline=ModelMeasurement(
            size_mb=0.39,
            params=94786,
            nonzero_params=94722,
            sparsity=0.0007,
            bits=32,
            metrics={"accuracy": 0.81, "f1": 0.8},
            latency_ms_p50=7.5,
            latency_ms_p95=8.1,
        ),
        compressed=ModelMeasurement(
            size_mb=0.21,
            params=60000,
            nonzero_params=30000,
            sparsity=0.5,
            bits=32,
            metrics={"accuracy": 0.79, "f1": 0.78},
            latency_ms_p50=5.0,
            latency_ms_p95=5.5,
        ),
        methods=methods
        if methods is not None
        else [
            {"method": "magnitude", "sparsity": 0.5, "scope": "global"},
            {"method": "structured", "heads": 0.5, "ffn": 0.25, "importance": "magnitude", "native": False},
        ],
        budget_spent_s=120.0,
        benchmark={
            "eval_split": "test",
            "eval_examples": 200,
            "batch_size": 8,
            "seq_len": 128,
            "runs": 10,
            "rounds": 3,
            "device": "cpu",
        },
        versions={"tlc_hf": "0.0.0", "torch": "2.x"},
        hardware={"cpu": "test-cpu", "cpu_count": 2},
    )


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("card_classification_structured", dict()),
        (
            "card_mlm_magnitude_native",
            dict(task="mlm", methods=[{"method": "magnitude", "sparsity": 0.8, "scope": "local"}]),
        ),
    ],
)
def test_card_matches_golden(tmp_path, name, kwargs):
    report = fixed_report(**kwargs)
    if kwargs.get("task") == "mlm":
        for m in (report.baseline, report.compressed):
            m.metrics = {"perplexity": 42.5 if m is report.baseline else 47.25}
    card = render_model_card(report, repo_id="org/tiny-pruned", output_dir=tmp_path)
    golden = GOLDEN / f"{name}.md"
    if os.environ.get("TLC_HF_UPDATE_GOLDEN"):
        golden.write_text(str(card))
    assert str(card) == golden.read_text()
    assert (tmp_path / "README.md").read_text() == golden.read_text()
    assert (tmp_path / "accuracy_vs_size.png").read_bytes()[:4] == b"\x89PNG"


def test_card_metadata_and_model_index_parse():
    card = render_model_card(fixed_report(), repo_id="org/tiny-pruned")
    header = yaml.safe_load(str(card).split("---")[1])
    assert header["library_name"] == "transformers"
    assert {"tlc_hf", "compressed", "magnitude", "structured"} <= set(header["tags"])
    assert header["base_model"] == "org/tiny-base" and header["datasets"] == ["movie-reviews"]
    name, results = model_index_to_eval_results(header["model-index"])
    assert name == "org/tiny-pruned"
    assert {(r.metric_type, r.metric_value) for r in results} == {("accuracy", 0.79), ("f1", 0.78)}
    reparsed = ModelCard(str(card))
    assert [r.metric_value for r in reparsed.data.eval_results] == [0.79, 0.78]


def test_card_snippet_loads_with_from_pretrained_onnx_included():
    for methods in ([{"method": "magnitude", "sparsity": 0.5}], None):  # None: structured + magnitude
        snippet = str(render_model_card(fixed_report(methods=methods), repo_id="o/n"))
        assert "import tlc_hf" in snippet and 'AutoModelForSequenceClassification.from_pretrained("o/n")' in snippet
    onnx = [{"method": "quantization", "backend": "onnxruntime", "bits": 8}]
    snippet = str(render_model_card(fixed_report(methods=onnx), repo_id="o/n"))
    assert "ONNX Runtime export" in snippet and 'AutoModelForSequenceClassification.from_pretrained("o/n")' in snippet


@pytest.mark.parametrize("onnx", [False, True], ids=["torch", "onnx"])
def test_card_snippet_runs(tmp_path, small_corpus, onnx):
    from tlc_hf import QuantizationConfig, quantize
    from tlc_hf.compression import OnnxModel
    from tlc_hf.data import train_tokenizer

    tokenizer = train_tokenizer("bert", 300, small_corpus)
    model = tiny_model("bert", "classification", vocab_size=len(tokenizer), num_attention_heads=4)
    prune_structured_(model, heads=0.5, ffn=0.5)
    if onnx:
        model = quantize(model, QuantizationConfig(backend="onnxruntime"))
    out = tmp_path / "model"
    save_compressed(model, out, tokenizer)
    methods = [{"method": "quantization", "backend": "onnxruntime", "bits": 8}] if onnx else None
    card = str(render_model_card(fixed_report(methods=methods), repo_id=str(out)))
    snippet = card.split("```python\n")[1].split("```")[0]
    namespace = {}
    exec(compile(snippet, "card-snippet", "exec"), namespace)  # noqa: S102 - our own generated code
    assert namespace["model"].config.num_labels == 2
    assert isinstance(namespace["model"], OnnxModel) is onnx


def test_report_leaves_out_what_was_not_measured(tmp_path):
    report = CompressionReport(model_name="m", compressed=ModelMeasurement(size_mb=1.0))
    data = report.to_dict()
    assert data == {"model_name": "m", "compressed": {"size_mb": 1.0}}
    report.save(tmp_path)
    assert CompressionReport.load(tmp_path) == report


def test_bench_figures_of_two_models():
    small = tiny_model("bert", hidden_size=128, num_attention_heads=2)
    big = tiny_model("bert", hidden_size=128, num_attention_heads=2, num_hidden_layers=8)
    small_result = benchmark_model(small, batch_size=8, seq_len=64, runs=8, rounds=3)
    big_result = benchmark_model(big, batch_size=8, seq_len=64, runs=8, rounds=3)
    for result in (small_result, big_result):
        assert result["latency_ms_p50"] > 0 and result["throughput_examples_per_s"] > 0
        assert result["latency_ms_p95"] >= result["latency_ms_p50"]
        assert result["params_nonzero"] <= result["params_total"]
    assert big_result["params_total"] > small_result["params_total"]  # which is faster: a benchmark's question
    with pytest.raises(ValueError, match="runs=0"):
        benchmark_model(small, runs=0)


def test_evaluate_model_core_metrics_and_a_local_metric_script(tmp_path, small_corpus, bpe_tokenizer):
    script = tmp_path / "always_one.py"
    script.write_text(
        "import datasets\n"
        "import evaluate\n"
        "class AlwaysOne(evaluate.Metric):\n"
        "    def _info(self):\n"
        "        return evaluate.MetricInfo(description='', citation='', inputs_description='',\n"
        "            features=datasets.Features({'predictions': datasets.Value('int64'),\n"
        "                                        'references': datasets.Value('int64')}))\n"
        "    def _compute(self, predictions, references):\n"
        "        return {'always_one': 1.0, 'count': len(predictions)}\n"
    )
    model = tiny_model(
        "roberta", "classification", vocab_size=len(bpe_tokenizer), pad_token_id=bpe_tokenizer.pad_token_id
    )
    with pytest.raises(
        ValueError,
        match=r"loading one runs its code: add --trust_metric_code to allow it \(trust_metric_code=True in Python\)",
    ):
        evaluate_model(model, bpe_tokenizer, corpus=small_corpus, max_examples=40, metrics=[str(script)])
    result = evaluate_model(
        model,
        bpe_tokenizer,
        corpus=small_corpus,
        max_examples=40,
        metrics=[str(script)],
        trust_metric_code=True,
        show_progress=False,
    )
    assert result["task"] == "classification" and result["examples"] == 40
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["f1"] <= 1
    assert result["always_one"] == 1.0 and result["always_one_count"] == 40
    mlm = tiny_model("roberta", "mlm", vocab_size=len(bpe_tokenizer), pad_token_id=bpe_tokenizer.pad_token_id)
    result = evaluate_model(
        mlm, bpe_tokenizer, corpus=small_corpus, max_examples=20, block_size=64, show_progress=False
    )
    assert result["perplexity"] > 1 and result["masked_tokens"] > 0
    with pytest.raises(ValueError, match="split='dev'"):
        evaluate_model(mlm, bpe_tokenizer, corpus=small_corpus, split="dev")


def test_evaluate_seq2seq_bleu(small_corpus):
    from tlc_hf.data import train_tokenizer

    t5_tokenizer = train_tokenizer("t5", 1000, small_corpus)
    model = tiny_model("t5", vocab_size=len(t5_tokenizer))
    result = evaluate_model(
        model, t5_tokenizer, corpus=small_corpus, max_examples=8, max_length=32, show_progress=False
    )
    assert result["task"] == "seq2seq" and 0 <= result["bleu"] <= 100 and 0 <= result["exact_match"] <= 1


def test_the_shipped_demo_card_is_a_hub_card_of_its_report(tmp_path):
    """docs/demo's card names a Hub base model (never the path of the run that wrote it) and is what the card
    renderer makes of the report beside it."""
    from tlc_hf.hub.ids import is_hub_id

    folder = Path(__file__).parents[1] / "docs" / "demo" / "cpu-compact-card"
    report = CompressionReport.load(folder)
    assert is_hub_id(report.base_model) and ModelCard.load(folder / "README.md").data.base_model == report.base_model
    render_model_card(report, output_dir=tmp_path)
    assert (tmp_path / "README.md").read_text() == (folder / "README.md").read_text()


def test_model_cards_template_copy_is_the_shipped_one():
    from tlc_hf.hub.card import template_path

    repo_copy = Path(__file__).parents[1] / "model_cards" / "model_card_template.md"
    assert repo_copy.read_text() == Path(template_path()).read_text()


def test_card_bench_evaluate_commands(tmp_path, small_corpus, capsys):
    from tlc_hf.cli import main
    from tlc_hf.data import train_tokenizer

    tokenizer = train_tokenizer("bert", 300, small_corpus)
    base = tiny_model("bert", "classification", vocab_size=len(tokenizer), num_attention_heads=4)
    save_compressed(base, tmp_path / "base", tokenizer)
    prune_magnitude_(base, 0.5)
    save_compressed(base, tmp_path / "pruned", tokenizer, storage="sparse")
    assert main(["bench", str(tmp_path / "pruned"), "--runs", "2", "--rounds", "1", "--seq_len", "16"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["size_on_disk_mb"] > 0 and bench["params_nonzero"] < bench["params_total"]
    assert main(["evaluate", str(tmp_path / "pruned"), "--max_examples", "16"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["accuracy"] <= 1
    assert (
        main(
            [
                "card",
                str(tmp_path / "pruned"),
                "--baseline",
                str(tmp_path / "base"),
                "--max_examples",
                "16",
                "--runs",
                "2",
                "--repo_id",
                "org/tiny",
            ]
        )
        == 0
    )
    report = CompressionReport.load(tmp_path / "pruned")
    assert report.compressed.size_mb < report.baseline.size_mb  # sparse storage measured smaller
    assert report.compressed.sparsity > report.baseline.sparsity
    assert "accuracy" in report.compressed.metrics and report.compressed.latency_ms_p50 > 0
    assert report.compressed.real_throughput_examples_per_s > 0 and report.baseline.real_batch1_latency_ms_p50 > 0
    assert report.benchmark["real_examples"] > 16  # the whole test split, beside the 16 evaluated
    card = (tmp_path / "pruned" / "README.md").read_text()
    assert 'from_pretrained("org/tiny")' in card and "import tlc_hf" in card and "model-index" in card
    assert "Throughput, real test texts" in card and "sorted by length and padded per batch" in card
