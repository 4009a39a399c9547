"""The planner (`tlc-hf plan`, `tlc_hf.plan`): deployed size computed from the shape, latency measured on a
random model of that shape, the loss-vs-time fit, the ranked plan and its outputs."""

import copy
import math
import os

import onnx
import pytest
import torch
from onnx import numpy_helper

from tlc_hf.compression.depth import DepthPruningConfig, prune_depth_
from tlc_hf.compression.loading import save_compressed
from tlc_hf.compression.quantization import QuantizationConfig, quantize
from tlc_hf.compression.recipe import CompressionRecipe
from tlc_hf.compression.structured import prune_structured_
from tlc_hf.modeling import build_model
from tlc_hf.planning import (
    Deployment,
    PlanRequest,
    compressed_config,
    deployed_weight_bytes,
    deployment_of,
    parse_latency,
    parse_size,
)
from tlc_hf.testing import tiny_config


def _trained_like(config, task):
    """A model of `config` whose every weight differs (as after training: no two biases equal, so the ONNX
    exporter cannot fold identical constants into one)."""
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(config), task, num_labels=2)  # pruning edits the model's config
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    return model.eval()


def _onnx_weight_bytes(directory) -> int:
    graph = onnx.load(os.path.join(directory, "model.onnx")).graph
    return sum(numpy_helper.to_array(initializer).nbytes for initializer in graph.initializer)


@pytest.mark.parametrize(
    "family, task, granularity", [("bert", "classification", "per_channel"), ("roberta", "mlm", "per_tensor")]
)
def test_onnx_int8_size_equals_the_saved_models_weight_bytes(tmp_path, family, task, granularity):
    config = tiny_config(family, vocab_size=1000, hidden_size=64)
    predicted = deployed_weight_bytes(config, task, Deployment("onnx-int8", granularity))
    model = quantize(_trained_like(config, task), QuantizationConfig(backend="onnxruntime", granularity=granularity))
    save_compressed(model, tmp_path / "int8")
    assert predicted["bytes"] == pytest.approx(_onnx_weight_bytes(tmp_path / "int8"), rel=0.02)
    assert predicted["params"] == sum(p.numel() for p in _trained_like(config, task).parameters())


def test_float_size_equals_the_saved_safetensors(tmp_path):
    config = tiny_config("bert", vocab_size=1000, hidden_size=64)
    save_compressed(_trained_like(config, "classification"), tmp_path / "fp32")
    on_disk = os.path.getsize(tmp_path / "fp32" / "model.safetensors")  # weights + a small JSON header
    assert deployed_weight_bytes(config, "classification")["bytes"] == pytest.approx(on_disk, rel=0.02)


def test_sparse_storage_size_equals_the_saved_file(tmp_path):
    from tlc_hf import prune_magnitude_

    config = tiny_config("bert", vocab_size=1000, hidden_size=64)
    model = _trained_like(config, "classification")
    prune_magnitude_(model, 0.75)
    save_compressed(model, tmp_path / "sparse", storage="sparse")
    on_disk = os.path.getsize(tmp_path / "sparse" / "model.safetensors")
    predicted = deployed_weight_bytes(config, "classification", Deployment(sparsity=0.75, sparse_storage=True))
    assert predicted["bytes"] == pytest.approx(on_disk, rel=0.02)
    assert predicted["bytes"] < deployed_weight_bytes(config, "classification")["bytes"]


def test_a_recipes_shape_is_the_shape_its_methods_leave(tmp_path):
    """cpu-compact's depth and FFN cuts and int8, predicted from the recipe, against the real methods applied."""
    recipe = CompressionRecipe.load("cpu-compact")
    config = tiny_config("bert", vocab_size=1000, hidden_size=64, num_hidden_layers=6)
    predicted_config = compressed_config(config, recipe, kept_vocab=1000)
    assert predicted_config.num_hidden_layers == 4 and predicted_config.intermediate_size == 128
    deployment = deployment_of(recipe)
    assert deployment == Deployment("onnx-int8", "per_tensor")
    model = _trained_like(config, "classification")
    prune_depth_(model, DepthPruningConfig(layers=1 / 3, strategy="alternate"))
    prune_structured_(model, heads=0.0, ffn=0.5, uniform=True)
    int8 = quantize(model, QuantizationConfig(backend="onnxruntime", granularity=deployment.granularity))
    save_compressed(int8, tmp_path / "compact")
    predicted = deployed_weight_bytes(predicted_config, "classification", deployment)
    assert predicted["bytes"] == pytest.approx(_onnx_weight_bytes(tmp_path / "compact"), rel=0.02)
    with pytest.raises(ValueError, match="kept size needs a tokenizer"):
        compressed_config(config, CompressionRecipe.load("cpu-int8-vocab"))
    assert compressed_config(config, CompressionRecipe.load("cpu-int8-vocab"), kept_vocab=300).vocab_size == 300


@pytest.mark.parametrize(
    "text, expected", [("20MB", 20e6), ("1.5GB", 1.5e9), ("512KiB", 512 * 1024), ("20 mib", 20 * 2**20), (1000, 1000)]
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["-5MB", "20XB", "MB", "0", -1, "twenty"])
def test_parse_size_refuses_bad_sizes_in_one_line(bad):
    with pytest.raises(ValueError, match="max_size=.*expected a positive number of bytes") as caught:
        parse_size(bad)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text, expected", [("15ms", 15.0), ("0.2s", 200.0), ("800us", 0.8), ("15", 15.0), (2.5, 2.5)])
def test_parse_latency(text, expected):
    assert parse_latency(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(max_latency="15 minutes"), "max_latency='15 minutes' is not a latency; expected a positive number"),
        (dict(max_latency=0), "max_latency=0 must be > 0"),
        (dict(task="ner"), "task='ner' is not known; choose one of"),
        (dict(device="tpu"), "device='tpu' is not known; choose one of ('cpu', 'cuda')"),
        (dict(sweep_fraction=0.9), "sweep_fraction=0.9 must lie in (0, 0.5]"),
        (dict(latency_seq_len=0), "latency_seq_len=0 must be a positive int"),
    ],
)
def test_plan_request_refuses_bad_settings_in_one_line(settings, message):
    target = dict(time_budget="10m", max_size="20MB", max_latency="15ms")
    with pytest.raises(ValueError) as caught:
        PlanRequest.parse(**{**target, **settings})
    assert message in str(caught.value) and "\n" not in str(caught.value)


def _op_types(onnx_model) -> list[str]:
    return sorted(node.op_type for node in onnx.load(onnx_model.path).graph.node)


def test_latency_is_measured_on_the_real_backend_with_the_compressed_shape(tmp_path):
    """The planner's latency path (a random model of the predicted shape through ONNX Runtime int8) runs the
    same graph as the real compressed model: same ops, same input names, same weight shapes; both time
    (how close the two times are is `benchmarks/plan_latency.py`, not a test: a shared CPU moves timings)."""
    from tlc_hf import OnnxModel, compare_latency
    from tlc_hf.planning.latency import measure_latency, shape_model

    recipe = CompressionRecipe.from_yaml(
        "methods: [{method: depth, layers: 0.5}, {method: quantization, backend: onnxruntime}]"
    )
    config = tiny_config("bert", vocab_size=1000, hidden_size=64, num_hidden_layers=4)
    model = _trained_like(config, "classification")
    prune_depth_(model, DepthPruningConfig(layers=0.5))
    save_compressed(quantize(model, QuantizationConfig(backend="onnxruntime")), tmp_path / "real")
    real = OnnxModel.from_pretrained(tmp_path / "real")
    predicted = shape_model(compressed_config(config, recipe), "classification", deployment_of(recipe))
    assert isinstance(predicted, OnnxModel)
    assert _op_types(predicted) == _op_types(real) and predicted.input_names == real.input_names
    shapes = [
        sorted(tuple(i.dims) for i in onnx.load(m.path).graph.initializer if len(i.dims) == 2)
        for m in (predicted, real)
    ]
    assert shapes[0] == shapes[1]
    timed = compare_latency({"real": real, "predicted": predicted}, batch_size=1, seq_len=64, rounds=5)
    assert all(0 < row["latency_ms"] < math.inf for row in timed.values())
    measured = measure_latency(compressed_config(config, recipe), "classification", deployment_of(recipe), runs=3)
    assert measured["backend"] == "onnxruntime-int8" and 0 < measured["latency_ms"] < math.inf
    assert measured["file_bytes"] == pytest.approx(os.path.getsize(tmp_path / "real" / "model.onnx"), rel=0.02)


@pytest.mark.slow
def test_minilm_shape_size_and_latency_predictions(tmp_path):
    """The real all-MiniLM-L6-v2 compressed with cpu-int8 against the planner's prediction for its shape: weight
    bytes within 2%; the planner measures a latency for the shape (batch 1 x 128, ONNX Runtime int8) as the real
    model has one. How close the two times are is `benchmarks/plan_latency.py` (a timing, not a test)."""
    pytest.importorskip("all_minilm_l6_v2")
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from tlc_hf import OnnxModel, benchmark_model
    from tlc_hf.planning.latency import measure_latency
    from tlc_hf.pretrained import minilm_dir

    recipe = CompressionRecipe.load("cpu-int8")
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2).eval()
    deployment = deployment_of(recipe)
    save_compressed(quantize(model, recipe.methods[0]), tmp_path / "real")
    config = compressed_config(AutoConfig.from_pretrained(minilm_dir(), num_labels=2), recipe)
    predicted = deployed_weight_bytes(config, "classification", deployment)
    on_disk = os.path.getsize(tmp_path / "real" / "model.onnx")
    print(
        f"MiniLM cpu-int8: predicted {predicted['bytes']:,} B, weights {_onnx_weight_bytes(tmp_path / 'real'):,} B, file {on_disk:,} B"
    )
    assert predicted["bytes"] == pytest.approx(_onnx_weight_bytes(tmp_path / "real"), rel=0.02)
    assert predicted["bytes"] == pytest.approx(on_disk, rel=0.02)
    settings = dict(batch_size=1, seq_len=128, runs=20, rounds=5)
    shape = measure_latency(config, "classification", deployment, **settings)
    real = benchmark_model(OnnxModel.from_pretrained(tmp_path / "real"), warmup=2, **settings)
    print(f"MiniLM cpu-int8 latency: predicted {shape['latency_ms']:.2f} ms, real {real['latency_ms_p50']:.2f} ms")
    assert shape["backend"] == "onnxruntime-int8" and (shape["batch_size"], shape["seq_len"]) == (1, 128)
    assert 0 < shape["latency_ms"] <= shape["latency_ms_p95"] < math.inf
    assert 0 < real["latency_ms_p50"] <= real["latency_ms_p95"] < math.inf
    assert shape["file_bytes"] == pytest.approx(on_disk, rel=0.02)  # the shape's export is the real one's size


def test_power_law_fit_recovers_a_known_law_and_widens_with_distance():
    from tlc_hf.planning.fit import fit_power_law

    exact = [[t, 7.0 * t**-0.2] for t in (5, 10, 20, 40, 80)]
    fit = fit_power_law(exact)
    assert fit.slope == pytest.approx(-0.2) and fit.predict(7200)["loss"] == pytest.approx(7.0 * 7200**-0.2)
    noisy = [[t, loss * (1.03 if i % 2 else 0.97)] for i, (t, loss) in enumerate(exact)]
    fit = fit_power_law(noisy, start_s=4)
    near, far = fit.predict(100), fit.predict(7200)
    assert near["low"] < near["loss"] < near["high"]
    assert far["high"] / far["low"] > near["high"] / near["low"]  # farther out, less certain
    with pytest.raises(ValueError, match="needs at least 2"):
        fit_power_law([[0, 9.0], [3, 8.0]], start_s=2)


TINY_PLAN = [
    "--base", "roberta-tiny", "--sizes", "1x32,2x32", "--sweep_fraction", "0.3", "--batch_size", "8",
    "--seq_len", "64", "--max_examples", "600", "--vocab_size", "1000", "--latency_seq_len", "64",
    "--min_steps", "10",  # a shared CPU can slow a probe 30x; a 1x32 model must not be dropped for it
]  # fmt: skip


def test_plan_command_on_tiny_configs(tmp_path, capsys):
    """`tlc-hf plan` end to end with a small budget: both candidates timed, swept, fitted and compressed to a
    size only int8 reaches; the outputs written, the recipe loadable by `tlc-hf compress --recipe`."""
    import json

    from tlc_hf.cli import main

    out = tmp_path / "plan"
    threads = torch.get_num_threads()
    args = ["plan", "--time_budget", "40s", "--max_size", "150KB", "--max_latency", "50ms", "--output_dir", str(out)]
    assert main(args + TINY_PLAN) == 0
    printed = capsys.readouterr().out
    assert torch.get_num_threads() == threads  # training, ONNX export and ONNX Runtime leave torch's threads
    assert "| rank | candidate" in printed and "cpu-int8" in printed
    assert sorted(os.listdir(out)) == ["plan.json", "plan.md", "plan.png", "recipe.yaml", "sweep"]
    saved = json.loads((out / "plan.json").read_text())
    assert saved["budget_s"] == 40 and saved["max_size_bytes"] == 150e3 and saved["sweep_s_per_candidate"] == 6.0
    assert {c["label"] for c in saved["candidates"]} == {"L1xH32", "L2xH32"}
    best = saved["candidates"][0]
    assert saved["recommended"] == best["label"] and best["fits"] and best["recipe"] == "cpu-int8"
    assert best["loss_low"] < best["predicted_loss"] < best["loss_high"]
    assert best["steps_in_budget"] >= 10 and best["tokens_in_budget"] == best["steps_in_budget"] * 8 * 64
    assert [o["recipe"] for o in best["options"]][:2] == ["none", "cpu-int8"]  # cheapest first; float too big
    assert best["options"][0]["size_bytes"] > 150e3 >= best["size_bytes"]
    assert best["latency_ms"] <= 50 and best["size_bytes"] < best["file_bytes"] <= 150e3  # + the ONNX graph
    recipe = CompressionRecipe.load(out / "recipe.yaml")
    assert recipe.to_dict() == CompressionRecipe.load("cpu-int8").to_dict()
    assert "Recommendation" in (out / "plan.md").read_text()


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--max_size", "-5MB", "max_size='-5MB' is not a size"),
        ("--max_size", "20XB", "max_size='20XB' is not a size"),
        ("--time_budget", "2 fortnights", "time_budget='2 fortnights' is not a duration"),
        ("--max_latency", "0.001ms", "is below one transformer layer measured here"),
    ],
)
def test_plan_bad_input_is_one_line(tmp_path, capsys, flag, value, message):
    from tlc_hf.cli import main

    args = {"--time_budget": "40s", "--max_size": "1MB", "--max_latency": "50ms", flag: value}
    argv = ["plan", *[f"{k}={v}" for k, v in args.items()], "--output_dir", str(tmp_path / "p"), *TINY_PLAN]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_a_target_no_candidate_meets_names_the_closest_and_what_must_give():
    from tlc_hf.planning import PlanRequest
    from tlc_hf.planning.recommend import recommend
    from tlc_hf.planning.result import CandidatePlan

    def candidate(label, size, latency):
        c = CandidatePlan(label, "depth", 2, 64, 10**6, 0.01, 1000, 10**6, 1e-3, predicted_loss=5.0)
        c.recipe, c.size_bytes, c.latency_ms = "cpu-int8", size, latency
        c.options = [{"recipe": "cpu-int8", "size_bytes": size, "latency_ms": latency}]
        return c

    request = PlanRequest.parse("10m", "2MB", "5ms")
    label, text = recommend([candidate("L2xH64", 3e6, 9.0), candidate("L4xH64", 5e6, 14.0)], request)
    assert label is None
    assert "No candidate meets 2 MB and 5 ms" in text and "Closest: L2xH64 with cpu-int8: 3.00 MB, 9.00 ms" in text
    assert "a larger size (the smallest candidate compresses to 3.00 MB)" in text
    assert "a slower latency (the fastest measured is 9.00 ms)" in text
