"""ONNX exports served like any Hugging Face model: `AutoModelFor*.from_pretrained` and `pipeline(task, model=<folder
or Hub id>)` after `import tlc_hf`, one test per task head, and on the output of every shipped ONNX recipe."""

import json
import os
import shutil

import pytest
import torch
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertForTokenClassification,
    BertModel,
    pipeline,
)

from tlc_hf import CompressionRecipe, QuantizationConfig, load_compressed, quantize, run_recipe, save_compressed
from tlc_hf.compression.quantization import (
    OnnxModel,
    OnnxModelForFeatureExtraction,
    OnnxModelForMaskedLM,
    OnnxModelForSequenceClassification,
    OnnxModelForTokenClassification,
)
from tlc_hf.testing import tiny_config, tiny_model

TEXTS = ["a fine film", "a dull movie with bad acting", "great acting and a fine story"]


@pytest.fixture(scope="module")
def tokenizer(small_corpus):
    from tlc_hf.data import train_tokenizer

    return train_tokenizer("wordpiece", 400, small_corpus)


def _labelled(model, labels):
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    return model


def _export(model, tokenizer, directory, backend="onnxruntime"):
    if backend == "openvino":
        pytest.importorskip("openvino")
    options = {"tokenizer": tokenizer, "calibration": TEXTS * 4} if backend == "openvino" else {}
    save_compressed(quantize(model, QuantizationConfig(backend=backend), **options), directory, tokenizer)
    return str(directory)


def _logits(model, tokenizer, text):
    with torch.no_grad():
        return model(**tokenizer([text], return_tensors="pt")).logits[0]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_text_classification_pipeline_and_auto_class_load_the_export_with_its_labels(tmp_path, tokenizer, backend):
    model = _labelled(tiny_model("bert", "classification", vocab_size=len(tokenizer)), ["negative", "positive"])
    directory = _export(model, tokenizer, tmp_path / "int8", backend)
    graph = {"onnxruntime": {"model.onnx"}, "openvino": {"openvino_model.xml", "openvino_model.bin"}}[backend]
    assert graph | {"config.json", "tokenizer.json"} <= set(os.listdir(directory))
    loaded = AutoModelForSequenceClassification.from_pretrained(directory)
    assert type(loaded) is OnnxModelForSequenceClassification
    assert loaded.config.id2label == {0: "negative", 1: "positive"}
    classify = pipeline("text-classification", model=directory)
    for text, result in zip(TEXTS, classify(TEXTS), strict=True):
        logits = _logits(loaded, tokenizer, text)
        assert result["label"] == loaded.config.id2label[int(logits.argmax())]
        assert result["score"] == pytest.approx(float(logits.softmax(-1).max()), abs=1e-6)
        torch.testing.assert_close(logits, _logits(model, tokenizer, text), atol=0.05, rtol=0)  # int8 of fp32
    scores = pipeline("sentiment-analysis", model=directory, top_k=None)([TEXTS[0]])[0]
    assert sorted(s["label"] for s in scores) == ["negative", "positive"]


def test_feature_extraction_of_an_exported_base_model_matches_torch(tmp_path, tokenizer):
    model = BertModel(tiny_config("bert", vocab_size=len(tokenizer))).eval()
    directory = _export(model, tokenizer, tmp_path / "embedder")
    loaded = AutoModel.from_pretrained(directory)
    assert type(loaded) is OnnxModelForFeatureExtraction
    assert loaded.output_names == ["last_hidden_state", "pooler_output"]
    features = torch.tensor(pipeline("feature-extraction", model=directory)(TEXTS[1]))[0]
    with torch.no_grad():
        expected = model(**tokenizer([TEXTS[1]], return_tensors="pt")).last_hidden_state[0]
    assert features.shape == expected.shape
    assert torch.nn.functional.cosine_similarity(features, expected, dim=-1).min() > 0.99


def test_fill_mask_pipeline_ranks_by_the_exported_logits(tmp_path, tokenizer):
    model = tiny_model("bert", "mlm", vocab_size=len(tokenizer))
    directory = _export(model, tokenizer, tmp_path / "mlm")
    assert type(AutoModelForMaskedLM.from_pretrained(directory)) is OnnxModelForMaskedLM
    text = f"a fine {tokenizer.mask_token}"
    predictions = pipeline("fill-mask", model=directory, top_k=3)(text)
    loaded = OnnxModel.from_pretrained(directory)
    ids = tokenizer([text], return_tensors="pt")
    position = int((ids["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0])
    top = loaded(**ids).logits[0, position].topk(3).indices.tolist()
    assert [p["token"] for p in predictions] == top


def test_token_classification_pipeline_labels_tokens_with_the_exported_head(tmp_path, tokenizer):
    labels = ["O", "B-THING", "I-THING"]
    config = tiny_config("bert", vocab_size=len(tokenizer), num_labels=3)
    model = _labelled(BertForTokenClassification(config).eval(), labels)
    directory = _export(model, tokenizer, tmp_path / "ner")
    loaded = AutoModelForTokenClassification.from_pretrained(directory)
    assert type(loaded) is OnnxModelForTokenClassification
    entities = pipeline("token-classification", model=directory, ignore_labels=[])(TEXTS[0])
    ids = tokenizer([TEXTS[0]], return_tensors="pt")
    predicted = loaded(**ids).logits[0].argmax(-1).tolist()[1:-1]  # without [CLS] and [SEP]
    assert [e["entity"] for e in entities] == [labels[i] for i in predicted]


def test_a_head_the_export_does_not_have_is_refused_naming_the_right_class(tmp_path, tokenizer):
    directory = _export(tiny_model("bert", "classification", vocab_size=len(tokenizer)), tokenizer, tmp_path / "c")
    with pytest.raises(ValueError, match="text-classification graph.*OnnxModelForSequenceClassification"):
        AutoModelForMaskedLM.from_pretrained(directory)
    with pytest.raises(ValueError, match="AutoModelForCausalLM cannot load it"):
        from transformers import AutoModelForCausalLM

        AutoModelForCausalLM.from_pretrained(directory)
    with pytest.raises(ValueError, match="runs on the CPU only"):
        OnnxModel.from_pretrained(directory).to("cuda")
    with pytest.raises(ValueError, match=r"\['attn_implementation'\] do not apply to an ONNX export"):
        OnnxModel.from_pretrained(directory, attn_implementation="sdpa")
    torch_folder = tmp_path / "torch"
    save_compressed(tiny_model("bert", "classification"), torch_folder)
    with pytest.raises(ValueError, match="is not a tlc_hf ONNX export"):
        OnnxModelForSequenceClassification.from_pretrained(torch_folder)
    assert not isinstance(AutoModelForSequenceClassification.from_pretrained(torch_folder), OnnxModel)


def test_an_export_loads_by_hub_id_through_the_hub_cache(tmp_path, tokenizer, monkeypatch):
    """Hub ids resolve through `cached_file`: an export laid out as a Hub cache snapshot loads offline by its id."""
    directory = _export(tiny_model("bert", "classification", vocab_size=len(tokenizer)), tokenizer, tmp_path / "c")
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--org--tiny-onnx" / "snapshots" / commit
    shutil.copytree(directory, snapshot)
    (cache / "models--org--tiny-onnx" / "refs").mkdir()
    (cache / "models--org--tiny-onnx" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = AutoModelForSequenceClassification.from_pretrained("org/tiny-onnx", cache_dir=str(cache))
    assert type(loaded) is OnnxModelForSequenceClassification and loaded.path.startswith(str(snapshot))
    by_id = pipeline(
        "text-classification",
        model=loaded,
        tokenizer=AutoTokenizer.from_pretrained("org/tiny-onnx", cache_dir=str(cache)),
    )
    assert by_id(TEXTS)[0] == pipeline("text-classification", model=directory)(TEXTS)[0]


def _tiny_classifier(tmp_path, tokenizer, layers=2):
    model = tiny_model("bert", "classification", vocab_size=len(tokenizer), num_hidden_layers=layers)
    save_compressed(_labelled(model, ["negative", "positive"]), tmp_path / "base", tokenizer)
    return str(tmp_path / "base")


@pytest.mark.parametrize("name", ["cpu-int8", "cpu-int8-vocab", "cpu-compact"])
def test_every_shipped_onnx_recipe_output_serves_in_a_pipeline_by_folder(tmp_path, tokenizer, small_corpus, name):
    base = _tiny_classifier(tmp_path, tokenizer, layers=3)
    recipe = CompressionRecipe.load(name).to_dict()
    if recipe.get("budget"):  # a few steps instead of the recipe's minutes
        recipe["budget"] = None
        recipe["training"] = {**recipe.get("training", {}), "max_steps": 4, "per_device_train_batch_size": 8}
    out = str(tmp_path / "out")
    teacher = base if recipe.get("distillation") else None
    run_recipe(CompressionRecipe.from_dict(recipe), base, out, teacher_dir=teacher, corpus=small_corpus, report=False)
    with open(f"{out}/config.json") as f:
        assert json.load(f)["id2label"] == {"0": "negative", "1": "positive"}
    classify = pipeline("text-classification", model=out)
    assert type(classify.model) is OnnxModelForSequenceClassification
    served = AutoTokenizer.from_pretrained(out)
    reference = load_compressed(out)
    for text, result in zip(TEXTS, classify(TEXTS), strict=True):
        logits = _logits(reference, served, text)
        assert result["label"] == ["negative", "positive"][int(logits.argmax())]
