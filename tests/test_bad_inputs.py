"""Bad input gets one clear line naming the bad value and what is allowed, never a library traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tlc_hf.cli import main
from tlc_hf.compression import save_compressed
from tlc_hf.testing import tiny_model


@pytest.fixture(scope="module")
def folders(tmp_path_factory, small_corpus):
    from tlc_hf.data import train_tokenizer

    root = tmp_path_factory.mktemp("bad")
    tokenizer = train_tokenizer("bert", 300, small_corpus)
    model = tiny_model("bert", "classification", vocab_size=len(tokenizer))
    save_compressed(model, root / "good", tokenizer)
    broken = root / "broken"
    save_compressed(model, broken, tokenizer)
    (broken / "model.safetensors").write_bytes((broken / "model.safetensors").read_bytes()[:100])
    garbage = root / "garbage"
    save_compressed(model, garbage, tokenizer)
    (garbage / "model.safetensors").write_bytes(b"not a safetensors file at all")
    (root / "bad.yaml").write_text("methods: [\n  {method: magnitude\n")
    (root / "python.yaml").write_text("methods: !!python/object/apply:os.system ['echo pwned']\n")
    (root / "regex.yaml").write_text("methods:\n  - {method: magnitude, target_modules: '('}\n")
    (root / "version.yaml").write_text("version: one\nmethods: []\n")
    (root / "mapping.yaml").write_text("methods: {method: magnitude}\n")
    (root / "bad.json").write_text('{"methods": [}')
    (root / "kd.yaml").write_text("distillation: 0.5\nbudget: 1m\n")
    (root / "a_file").write_text("x")
    (root / "notjson.json").write_text("hello, not JSON")
    (root / "neg_batch.yaml").write_text(
        "budget: 1m\nmethods: [{method: magnitude, sparsity: 0.5}]\ntraining: {per_device_train_batch_size: -4}\n"
    )
    return root


CASES = [
    # (argv with {root}, fragment of the one-line error)
    (["evaluate", "{root}/broken"], "weights file {root}/broken/model.safetensors is not readable safetensors"),
    (["evaluate", "{root}/garbage"], "weights file {root}/garbage/model.safetensors is not readable safetensors"),
    (
        [
            "train",
            "--model_name_or_path",
            "{root}/broken",
            "--task",
            "classification",
            "--time_budget",
            "2s",
            "--output_dir",
            "{root}/t9",
        ],
        "safetensors",
    ),
    (["compress", "{root}/broken", "--output_dir", "{root}/o1", "--prune_magnitude", "0.5"], "safetensors"),
    (["evaluate", "{root}/does/not/exist"], "model folder '{root}/does/not/exist' does not exist"),
    (["bench", "./missing-model"], "model folder './missing-model' does not exist"),
    (["evaluate", "{root}/a_file"], "is a file; give the model's folder"),
    (
        ["compress", "{root}/good", "--output_dir", "{root}/o2", "--recipe", "{root}/bad.yaml"],
        "is not valid YAML at line",
    ),
    (["compress", "{root}/good", "--output_dir", "{root}/o3", "--recipe", "{root}/python.yaml"], "is not valid YAML"),
    (
        ["compress", "{root}/good", "--output_dir", "{root}/o4", "--recipe", "{root}/regex.yaml"],
        "is not a valid regular expression",
    ),
    (
        ["compress", "{root}/good", "--output_dir", "{root}/o5", "--recipe", "{root}/bad.json"],
        "is not valid JSON: line 1",
    ),
    (["compress", "{root}/good", "--output_dir", "{root}/o6", "--recipe", "{root}/nope.yaml"], "is not a file"),
    (["evaluate", "{root}/good", "--task", "seq2seq"], "task='seq2seq' does not fit BertForSequenceClassification"),
    (["evaluate", "{root}/good", "--max_examples", "0"], "--max_examples 0: give a positive number"),
    (["evaluate", "{root}/good", "--max_examples", "-1"], "--max_examples -1: give a positive number"),
    (["evaluate", "{root}/good", "--metric", "accuracy"], "add --trust_metric_code to allow it"),
    (
        ["evaluate", "{root}/good", "--metric", "nosuchmetric"],
        "metric 'nosuchmetric' is not a local metric script and the Hub cannot be reached",
    ),
    (["evaluate", "{root}/good", "--metric", "./no/such/metric.py"], "metric script './no/such/metric.py' does not"),
    (["card", "{root}/missing/folder"], "model folder '{root}/missing/folder' does not exist"),
    (
        ["compress", "{root}/good", "--output_dir", "{root}/a_file/sub", "--prune_magnitude", "0.5"],
        "output folder '{root}/a_file/sub' lies under '{root}/a_file', which is a file",
    ),
    (
        ["demo", "--quick", "--no_real_model", "--output_dir", "{root}/a_file/sub"],
        "output folder '{root}/a_file/sub' lies under '{root}/a_file', which is a file",
    ),
    (
        ["compress", "{root}/good", "--output_dir", "{root}/o10", "--recipe", "{root}/neg_batch.yaml"],
        "training.per_device_train_batch_size=-4: give a positive batch size",
    ),
    (["params", "{root}/notjson.json"], "config file {root}/notjson.json is not valid JSON"),
    (
        ["bench", "{root}/good", "--seq_len", "5000"],
        "seq_len=5000 (--seq_len) is longer than the model's max_position_embeddings",
    ),
    (["bench", "{root}/good", "--device", "quantum"], "--device 'quantum' is not a device; choose one of"),
    (["bench", "{root}/good", "--device", "cuda"], "has no cuda device; use --device cpu"),
    (
        ["compress", "{root}/good", "--output_dir", "{root}/o7", "--recipe", "{root}/version.yaml"],
        "version='one' must be an integer",
    ),
    (
        ["compress", "{root}/good", "--output_dir", "{root}/o8", "--recipe", "{root}/mapping.yaml"],
        "must be a list of mappings",
    ),
    (
        ["compress", "{root}/good", "--output_dir", "{root}/o9", "--recipe", "{root}/kd.yaml"],
        "distillation=0.5 must be a mapping",
    ),
    (["train", "--config", "nosuch-config", "--output_dir", "{root}/t1"], "config 'nosuch-config' is not a tiny name"),
    (
        ["sweep", "--sizes", "2x64", "--base", "nosuch-config", "--output_dir", "{root}/s1"],
        "config 'nosuch-config' is not a tiny name",
    ),
    (["compress", "{root}/good", "--output_dir", "", "--prune_magnitude", "0.5"], "the output folder is empty"),
    (["compress", "{root}/good", "--output_dir", "{root}/a_file", "--prune_magnitude", "0.5"], "is a file"),
    (["params", "nosuch-config"], "config 'nosuch-config' is not a tiny name"),
    (
        ["train", "--model_name_or_path", "./nope", "--task", "classification", "--output_dir", "{root}/t2"],
        "model folder './nope' does not exist",
    ),
    (
        ["train", "--config", "bert-tiny", "--time_budget", "-5s", "--output_dir", "{root}/t3"],
        "--time_budget -5s: a duration must be positive",
    ),
    (
        ["train", "--config", "bert-tiny", "--time_budget", "5s", "--output_dir", "{root}/a_file"],
        "is a file; give a folder",
    ),
    (["train", "--config", "bert-tiny", "--time_budget", "5s", "--output_dir", ""], "--output_dir is empty"),
    (
        ["train", "--config", "bert-tiny", "--time_budget", "5s", "--output_dir", "{root}/good"],
        "is not empty; pass --overwrite_output_dir",
    ),
    (
        [
            "train",
            "--config",
            "bert-tiny",
            "--time_budget",
            "5s",
            "--per_device_train_batch_size",
            "-3",
            "--output_dir",
            "{root}/t4",
        ],
        "per_device_train_batch_size=-3: give a positive batch size",
    ),
]


@pytest.mark.parametrize(("argv", "fragment"), CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_bad_input_is_one_clear_line(folders, capsys, argv, fragment):
    import torch

    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main([a.format(root=folders) for a in argv])
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("tlc-hf ")]
    assert code == 1
    assert len(errors) == 1 and errors[0].startswith(f"tlc-hf {argv[0]}: error: "), stderr
    assert fragment.format(root=folders) in errors[0]
    assert "Traceback" not in stderr


def test_debug_shows_the_traceback(folders):
    with pytest.raises(ValueError, match="--max_examples 0"):
        main(["--debug", "evaluate", str(folders / "good"), "--max_examples", "0"])


def test_a_bug_shows_its_traceback_and_a_missing_field_is_one_line(tmp_path, capsys, monkeypatch):
    """A KeyError is a bug in tlc_hf (its traceback); user data lacking a field is one line (MissingFieldError)."""
    from datasets import Dataset, DatasetDict

    import tlc_hf.scaling
    from tlc_hf import load_corpus
    from tlc_hf.errors import MissingFieldError, run_script

    DatasetDict(test=Dataset.from_dict({"text": ["a review"] * 12, "label": [0, 1] * 6})).save_to_disk(tmp_path / "d")
    assert run_script(lambda: load_corpus(str(tmp_path / "d")), prog="script") == 1
    stderr = capsys.readouterr().err
    assert f"script: error: dataset '{tmp_path / 'd'}' (config None) has no 'train' split; it has ['test']" in stderr
    assert "Traceback" not in stderr
    with pytest.raises(MissingFieldError) as caught:
        load_corpus(str(tmp_path / "d"))
    assert caught.value.field == "train" and isinstance(caught.value, ValueError)

    def bug(*args, **kwargs):
        return {}["total"]

    with pytest.raises(KeyError, match="total"):
        run_script(bug, prog="script")
    monkeypatch.setattr(tlc_hf.scaling, "param_breakdown", bug)
    with pytest.raises(KeyError, match="total"):
        main(["params", "bert-tiny"])
    assert "tlc-hf params: internal error, a bug in tlc_hf" in capsys.readouterr().err


def _api_cases(root):
    """(call, exception type, fragment): the API gives the same line as the CLI wherever both exist."""
    from tlc_hf import (
        BudgetTrainingArguments,
        CompressionRecipe,
        DistillationConfig,
        benchmark_model,
        build_report,
        evaluate_model,
        load_compressed,
        load_corpus,
        param_breakdown,
    )
    from tlc_hf.workflows.demo import run_demo

    model = tiny_model("bert", "classification")
    recipe = {"budget": "1m", "methods": [{"method": "magnitude", "sparsity": 0.5}]}
    return [
        (lambda: load_compressed(root / "broken"), ValueError, f"weights file {root}/broken/model.safetensors is not"),
        (lambda: load_compressed(root / "garbage"), ValueError, f"weights file {root}/garbage/model.safetensors is"),
        (
            lambda: CompressionRecipe.from_yaml((root / "python.yaml").read_text()),
            ValueError,
            "recipe text is not valid YAML at line 1: could not determine a constructor",
        ),
        (lambda: CompressionRecipe.from_json('{"methods": [}'), ValueError, "recipe text is not valid JSON: line 1"),
        (
            lambda: benchmark_model(model, seq_len=5000),
            ValueError,
            "seq_len=5000 (--seq_len) is longer than the model's max_position_embeddings",
        ),
        (
            lambda: evaluate_model(model, None, "classification", metrics=["nosuchmetric"]),
            ValueError,
            "metric 'nosuchmetric' is not a local metric script",
        ),
        (lambda: build_report(str(root / "missing" / "folder")), FileNotFoundError, "does not exist"),
        (lambda: save_compressed(model, root / "a_file" / "sub"), NotADirectoryError, "which is a file"),
        (lambda: run_demo(str(root / "a_file" / "sub"), quick=True, real_model=False), NotADirectoryError, "a file"),
        (
            lambda: CompressionRecipe.from_dict({**recipe, "training": {"per_device_train_batch_size": -4}}),
            ValueError,
            "training.per_device_train_batch_size=-4: give a positive batch size",
        ),
        (lambda: DistillationConfig(hidden_weight="x"), ValueError, "hidden_weight='x' must be a number >= 0"),
        (lambda: param_breakdown(str(root / "notjson.json")), ValueError, "is not valid JSON"),
        (
            lambda: BudgetTrainingArguments(output_dir=str(root / "t"), per_device_train_batch_size=-4),
            ValueError,
            "per_device_train_batch_size=-4: give a positive batch size",
        ),
        (lambda: load_corpus("wmt16", "ro-en"), ConnectionError, "dataset 'wmt16' cannot be reached on the Hub"),
    ]


API_CASE_NAMES = [
    "load_compressed-truncated",
    "load_compressed-garbage",
    "from_yaml-python-tag",
    "from_json-syntax",
    "benchmark_model-seq_len",
    "evaluate_model-unknown-metric",
    "build_report-missing-folder",
    "save_compressed-under-a-file",
    "run_demo-under-a-file",
    "recipe-negative-batch",
    "DistillationConfig-hidden_weight",
    "param_breakdown-not-json",
    "BudgetTrainingArguments-negative-batch",
    "load_corpus-unreachable",
]


@pytest.mark.parametrize("index", range(len(API_CASE_NAMES)), ids=API_CASE_NAMES)
def test_api_bad_input_is_one_clear_line(folders, index):
    call, error, fragment = _api_cases(folders)[index]
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert fragment in message and "\n" not in message, message
    assert type(caught.value).__module__ in ("builtins", "json.decoder"), type(caught.value)


EXAMPLES = Path(__file__).parents[1] / "examples"
EXAMPLE_FLAGS = ["--time_budget", "4s", "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true"]
EXAMPLE_FLAGS += ["--save_strategy", "no", "--per_device_train_batch_size", "8"]


@pytest.mark.parametrize("script", ["glue_compress.py", "t5_translation_kd.py"])
def test_example_with_an_unreachable_dataset_is_one_line(tmp_path, script):
    """Offline, the example's Hub dataset cannot be reached: one line naming it, exit code 1."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    model = ["--config", "bert-tiny"] if script == "glue_compress.py" else []  # a model needing no download
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *model, "--output_dir", str(tmp_path / "out"), *EXAMPLE_FLAGS],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{script}: error: ")]
    assert result.returncode == 1 and len(errors) == 1, result.stderr[-3000:]
    assert "cannot be reached on the Hub" in errors[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("script", ["glue_compress.py", "t5_translation_kd.py", "pretrain_mlm.py"])
def test_example_tiny_runs_without_a_dataset(tmp_path, script):
    """--tiny needs no --dataset and no download: the embedded reviews or generated pairs."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    cmd = [sys.executable, str(EXAMPLES / script), "--tiny", "--output_dir", str(tmp_path / "out"), *EXAMPLE_FLAGS]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert any(word in result.stdout for word in ("accuracy", "BLEU", "perplexity")), result.stdout[-2000:]


def test_api_bad_inputs_are_clear(tmp_path):
    from tlc_hf import load_corpus, param_breakdown, train_tokenizer

    with pytest.raises(TypeError, match="source=42 must be a model, a config, or a name"):
        param_breakdown(42)
    with pytest.raises(ValueError, match="the corpus is empty"):
        train_tokenizer("wordpiece", 300, [])
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    with pytest.raises(ValueError, match="has no rows"):
        load_corpus(str(empty))
