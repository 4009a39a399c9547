"""Depth pruning (whole layers), recipe targets in the report and card, interleaved latency, `auto` backend."""

import json

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

from tlc_hf import (
    CompressionRecipe,
    DepthPruningConfig,
    QuantizationConfig,
    compare_latency,
    compression_history,
    prune_depth_,
    run_recipe,
    save_compressed,
)
from tlc_hf.compression.depth import layers_to_keep
from tlc_hf.testing import random_batch, tiny_model
from tlc_hf.training.distillation import _layer_map_for


@pytest.mark.parametrize(
    ("strategy", "expected"), [("top", [0, 1, 2]), ("bottom", [3, 4, 5]), ("alternate", [0, 2, 5])]
)
def test_layers_to_keep_follows_the_strategy(strategy, expected):
    assert layers_to_keep(6, DepthPruningConfig(layers=0.5, strategy=strategy)) == expected
    assert layers_to_keep(6, DepthPruningConfig(layers=0.5, strategy="bottom"), first_is_required=True)[0] == 0
    assert layers_to_keep(6, DepthPruningConfig(keep=[4, 1])) == [1, 4]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"layers": 1.0}, "fraction in"),
        ({"strategy": "middle"}, "strategy"),
        ({"keep": []}, "non-empty"),
        ({"keep": [0, 0]}, "twice"),
    ],
)
def test_bad_depth_configs_say_what_is_wrong(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        DepthPruningConfig(**kwargs)


def test_depth_pruned_bert_equals_the_kept_layers_and_reloads_with_from_pretrained(tmp_path):
    model = tiny_model("bert", "classification", num_hidden_layers=4)
    batch = random_batch("bert")
    kept_modules = [model.bert.encoder.layer[i] for i in (0, 3)]
    prune_depth_(model, keep=[0, 3])
    assert list(model.bert.encoder.layer) == kept_modules and model.config.num_hidden_layers == 2
    assert compression_history(model)[-1]["kept"] == {"encoder.layer": [0, 3]}
    with torch.no_grad():
        expected = model(**batch).logits
    model.save_pretrained(tmp_path / "m")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    assert reloaded.config.num_hidden_layers == 2
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, expected, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="do not exist"):
        prune_depth_(reloaded, keep=[5])


def test_depth_pruned_t5_keeps_the_position_bias_block_and_generates(tmp_path):
    model = tiny_model("t5", num_layers=4, num_decoder_layers=4)
    prune_depth_(model, layers=0.5, strategy="bottom")  # block 0 stays: it holds the relative position bias
    assert compression_history(model)[-1]["kept"] == {"encoder.block": [0, 3], "decoder.block": [0, 3]}
    assert model.config.num_layers == model.config.num_decoder_layers == 2
    assert [block.layer[0].SelfAttention.layer_idx for block in model.decoder.block] == [0, 1]
    batch = random_batch("t5")
    with torch.no_grad():
        expected = model(**batch).logits
        generated = model.generate(input_ids=batch["input_ids"], max_new_tokens=4, do_sample=False)
    save_compressed(model, tmp_path / "t")
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "t").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, expected, atol=1e-6, rtol=0)
        assert torch.equal(
            reloaded.generate(input_ids=batch["input_ids"], max_new_tokens=4, do_sample=False), generated
        )


def test_depth_after_structured_is_refused_naming_the_order():
    from tlc_hf import prune_structured_

    model = tiny_model("bert")
    prune_structured_(model, heads=0.5, ffn=0.5)
    with pytest.raises(ValueError, match="put method 'depth' before 'structured'"):
        prune_depth_(model, layers=0.5)


def test_distillation_maps_a_depth_pruned_student_to_the_layers_it_came_from():
    student = tiny_model("bert", num_hidden_layers=6)
    prune_depth_(student, layers=0.5, strategy="alternate")  # kept 0, 2, 5 -> hidden states 1, 3, 6
    assert _layer_map_for(student, 3, 6) == [[1, 1], [2, 3], [3, 6]]
    assert _layer_map_for(tiny_model("bert"), 2, 4) == [[1, 2], [2, 4]]  # no depth record: by relative depth


def _trained_classifier(tmp_path, small_corpus):
    from tlc_hf.data import train_tokenizer

    tokenizer = train_tokenizer("wordpiece", 1000, small_corpus)
    model = tiny_model("bert", "classification", vocab_size=len(tokenizer), num_hidden_layers=4)
    save_compressed(model, tmp_path / "base", tokenizer)
    return tmp_path / "base"


def test_a_recipe_that_misses_its_targets_still_saves_and_its_report_says_which(tmp_path, small_corpus):
    base = _trained_classifier(tmp_path, small_corpus)
    recipe = CompressionRecipe.from_dict(
        {
            "training": {"max_steps": 4, "per_device_train_batch_size": 8},
            "methods": [{"method": "depth", "layers": 0.5}],
            "targets": {"smaller": 100, "faster": 1.0, "max_accuracy_drop": 0.5},
        }
    )
    report = run_recipe(recipe, str(base), str(tmp_path / "out"), corpus=small_corpus)
    assert (tmp_path / "out" / "config.json").exists()
    verdicts = {t["target"]: t for t in report["targets"]}
    assert verdicts["smaller"]["met"] is False and verdicts["smaller"]["measured"] == report["size_ratio"] < 100
    assert verdicts["max_accuracy_drop"]["met"] is True  # half the layers of a random model: within 50 points
    assert report["speedup"] > 0 and verdicts["faster"]["measured"] == report["speedup"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "**missed**" in card and ">= 100x smaller" in card and "Faster by (timed interleaved)" in card
    saved = json.loads((tmp_path / "out" / "compression_report.json").read_text())
    assert saved["targets"] == report["targets"]


@pytest.mark.parametrize(
    ("targets", "fragment"),
    [
        ({"tiny": 2}, "not a target"),
        ({"smaller": "8x"}, "non-negative number"),
        ({"max_accuracy_drop": 1}, "fraction"),
    ],
)
def test_bad_targets_are_refused(targets, fragment):
    with pytest.raises(ValueError, match=fragment):
        CompressionRecipe.from_dict({"methods": [], "targets": targets})


def test_compare_latency_times_models_interleaved_and_ratios_to_the_first():
    small, large = tiny_model("bert"), tiny_model("bert", hidden_size=256, intermediate_size=1024)
    timed = compare_latency({"small": small, "large": large}, batch_size=4, seq_len=32, rounds=3)
    assert timed["small"]["speedup"] == 1.0
    assert timed["large"]["latency_ms"] > 0
    assert timed["large"]["speedup"] == pytest.approx(timed["small"]["latency_ms"] / timed["large"]["latency_ms"])
    with pytest.raises(ValueError, match="rounds=0"):
        compare_latency({"small": small}, rounds=0)


def test_auto_backend_resolves_to_the_fastest_installed_for_this_device(monkeypatch, tmp_path):
    import tlc_hf.compression.quantization.choice as choice
    import tlc_hf.compression.quantization.config as config

    monkeypatch.setenv("TLC_HF_CACHE", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    measured = []

    def measure(candidates):  # the real one times a MiniLM-shaped probe per runtime (a minute)
        measured.append(list(candidates))
        return {"onnxruntime": {"latency_ms": 30.0}, "openvino": {"latency_ms": 20.0}}

    monkeypatch.setattr(choice, "measure_cpu_runtimes", measure)
    real_find_spec = config.importlib.util.find_spec
    installed = {"onnxruntime", "onnxscript", "onnx"}
    monkeypatch.setattr(
        config.importlib.util, "find_spec", lambda name: real_find_spec(name) if name in installed else None
    )
    assert QuantizationConfig(backend="auto").backend == "onnxruntime" and measured == []  # one runtime: no timing
    installed |= {"openvino", "nncf"}
    assert QuantizationConfig(backend="auto").backend == "openvino"  # both: the measured faster one
    assert QuantizationConfig(backend="auto").backend == "openvino"
    assert measured == [["onnxruntime", "openvino"]]  # measured once, then cached per CPU
    assert len(list((tmp_path / "cpu_runtime").glob("*.json"))) == 1
    monkeypatch.setattr(config.importlib.util, "find_spec", lambda name: None)
    assert QuantizationConfig(backend="auto").backend == "torchao"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert QuantizationConfig(backend="auto").backend == "torchao"


def test_bench_against_a_baseline_reports_the_speedup_and_calls_out_a_slower_model(tmp_path, capsys, monkeypatch):
    """The speedup is the interleaved timing's; a model slower than its baseline is called out. Which of two
    models is faster is a timing (benchmarks/), so the second and third runs fix the timing's answer."""
    import tlc_hf.evaluation.bench as bench
    from tlc_hf.cli import main

    save_compressed(tiny_model("bert"), tmp_path / "small")
    save_compressed(tiny_model("bert", hidden_size=256, intermediate_size=1024), tmp_path / "large")
    common = ["--batch_size", "4", "--seq_len", "32", "--runs", "3", "--rounds", "3", "--device", "cpu"]
    assert main(["bench", str(tmp_path / "small"), "--baseline", str(tmp_path / "large"), *common]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["speedup_vs_baseline"] > 0 and result["baseline_latency_ms"] > 0
    assert ("slower than" in captured.err) == (result["speedup_vs_baseline"] < 1)
    assert result["cpu"] and "torch_threads" in result
    for model_ms, slower in ((5.0, False), (20.0, True)):  # the baseline timed at 10 ms
        monkeypatch.setattr(
            bench,
            "compare_latency",
            lambda models, ms=model_ms, **_: {
                "baseline": {"latency_ms": 10.0, "speedup": 1.0},
                "model": {"latency_ms": ms, "speedup": 10.0 / ms},
            },
        )
        assert main(["bench", str(tmp_path / "large"), "--baseline", str(tmp_path / "small"), *common]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["speedup_vs_baseline"] == 10.0 / model_ms
        assert ("slower than" in captured.err) is slower
    assert "2.00x slower than" in captured.err and "on this machine" in captured.err


def test_compare_latency_feeds_ids_every_model_has():
    full, trimmed = tiny_model("bert"), tiny_model("bert", vocab_size=40)
    timed = compare_latency({"full": full, "trimmed": trimmed}, batch_size=2, seq_len=16, rounds=1, calls=1)
    assert set(timed) == {"full", "trimmed"}


def test_shipped_recipes_load_by_name_and_validate():
    from tlc_hf.compression.recipe import shipped_recipes

    names = shipped_recipes()
    assert {"cpu-int8", "cpu-compact"} <= set(names)
    for name in names:
        recipe = CompressionRecipe.load(name)
        assert recipe.name == name and recipe.targets  # each says what it is expected to reach
    compact = CompressionRecipe.load("cpu-compact")
    assert [m.method for m in compact.methods][:1] == ["depth"] and compact.distillation is not None
    with pytest.raises(FileNotFoundError, match="nor a shipped recipe"):
        CompressionRecipe.load("cpu-nonexistent")
