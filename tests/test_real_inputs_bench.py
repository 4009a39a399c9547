"""Benchmarks on real inputs: length-sorted, dynamically padded batches and batch-1 latency, in `tlc-hf bench`."""

import json

import pytest

from tlc_hf import QuantizationConfig, quantize, save_compressed
from tlc_hf.evaluation.bench import compare_real_inputs, real_input_batches
from tlc_hf.testing import tiny_model


@pytest.fixture(scope="module")
def tokenizer(small_corpus):
    from tlc_hf.data import train_tokenizer

    return train_tokenizer("wordpiece", 400, small_corpus)


def test_real_batches_are_length_sorted_and_padded_to_their_own_longest(tokenizer, small_corpus):
    texts = small_corpus["test"]["text"][:50]
    batches = real_input_batches(tokenizer, texts, batch_size=8, max_length=64)
    assert sum(len(b["input_ids"]) for b in batches) == 50 and len(batches) == 7
    widths = [b["input_ids"].shape[1] for b in batches]
    assert widths == sorted(widths) and widths[-1] <= 64
    for batch in batches:  # the longest example of each batch has no padding
        assert int(batch["attention_mask"].sum(1).max()) == batch["input_ids"].shape[1]
    assert widths[0] < widths[-1]


def test_compare_real_inputs_times_every_model_on_the_same_texts(tokenizer, small_corpus):
    texts = small_corpus["test"]["text"][:40]
    small = tiny_model("bert", "classification", vocab_size=len(tokenizer))
    large = tiny_model("bert", "classification", vocab_size=len(tokenizer), hidden_size=256, intermediate_size=1024)
    onnx = quantize(large, QuantizationConfig(backend="onnxruntime"))
    models = {"large": large, "small": small, "onnx": onnx}
    timed = compare_real_inputs(models, dict.fromkeys(models, tokenizer), texts, single_examples=10, rounds=2)
    assert timed["large"]["throughput_speedup"] == 1.0  # ratios to the first model
    ratio = timed["small"]["throughput_examples_per_s"] / timed["large"]["throughput_examples_per_s"]
    assert timed["small"]["throughput_speedup"] == pytest.approx(ratio)  # which is faster: a benchmark's question
    for row in timed.values():
        assert row["examples"] == 40 and row["batch1_examples"] == 10 and row["rounds"] == 2
        assert 0 < row["batch1_latency_ms_p50"] <= row["batch1_latency_ms_p95"]
        assert 0 < row["padding_share"] < 1 and row["mean_tokens"] > 1
    with pytest.raises(ValueError, match="at least one model and one text"):
        compare_real_inputs(models, dict.fromkeys(models, tokenizer), [])


def test_bench_reports_real_input_figures_beside_the_fixed_batch(tmp_path, tokenizer, capsys):
    from tlc_hf.cli import main

    base = tiny_model("bert", "classification", vocab_size=len(tokenizer))
    save_compressed(base, tmp_path / "fp32", tokenizer)
    save_compressed(quantize(base, QuantizationConfig(backend="onnxruntime")), tmp_path / "int8", tokenizer)
    common = ["--runs", "2", "--rounds", "1", "--real_examples", "8"]
    assert main(["bench", str(tmp_path / "int8"), "--baseline", str(tmp_path / "fp32"), *common]) == 0
    result = json.loads(capsys.readouterr().out)
    real = result["real_inputs"]
    assert result["latency_ms_p50"] > 0 and result["seq_len"] == 128  # the fixed-shape figure stays
    assert real["batch1_examples"] == 8 and real["throughput_examples_per_s"] > 0 and real["examples"] > 8
    assert real["baseline"]["throughput_examples_per_s"] > 0 and real["throughput_speedup_vs_baseline"] > 0
    assert "split_seed" in real["data"]
    save_compressed(base, tmp_path / "bare")  # no tokenizer: the fixed figure only, and why
    assert main(["bench", str(tmp_path / "bare"), *common]) == 0
    assert "holds no tokenizer" in json.loads(capsys.readouterr().out)["real_inputs"]["skipped"]


def test_multiply_adds_are_counted_from_the_graph_and_the_int8_peak_is_measured():
    from tlc_hf.evaluation.hardware import graph_multiply_adds, onnxruntime_int8_peak

    hidden, inner, layers, batch, seq = 32, 128, 2, 2, 16
    onnx = quantize(tiny_model("bert", "classification"), QuantizationConfig(backend="onnxruntime"))
    counted = graph_multiply_adds(onnx.path, batch_size=batch, seq_len=seq)
    tokens = batch * seq
    linear = layers * tokens * (4 * hidden * hidden + 2 * hidden * inner)  # Q, K, V, output; FFN in and out
    attention = layers * 2 * batch * seq * seq * hidden  # QK^T and AV over all heads
    head = batch * (hidden * hidden + hidden * 2)  # pooler and classifier on [CLS]
    assert counted["unshaped_nodes"] == []
    assert counted["int8"] == linear + head  # the weight matrix multiplies are int8
    assert counted["total"] == linear + head + attention  # attention's stay in float
    peak = onnxruntime_int8_peak(128, 128, 128, repeats=3)
    assert peak["gmacs_best"] >= peak["gmacs_median"] > 0 and peak["shape"] == [128, 128, 128]
