"""Bad input gets one clear line naming the bad value and what is allowed, never a library traceback."""

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
    return root


CASES = [
    # (argv with {root}, fragment of the one-line error)
    (["evaluate", "{root}/broken"], "not readable safetensors"),
    (["evaluate", "{root}/garbage"], "not readable safetensors"),
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
        ["bench", "{root}/good", "--seq_len", "5000"],
        "--seq_len 5000 is longer than the model's max_position_embeddings",
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
        "--per_device_train_batch_size -3: give a positive batch size",
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
