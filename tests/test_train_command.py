"""`tlc-hf train` on the embedded corpus: each family and task trains under a budget and saves."""

import json

import pytest
from transformers import AutoModelForMaskedLM, AutoTokenizer

from tlc_hf.cli import main

COMMON = [
    "--max_examples",
    "300",
    "--vocab_size",
    "600",
    "--max_length",
    "64",
    "--block_size",
    "64",
    "--per_device_train_batch_size",
    "8",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--use_cpu",
    "true",
]


@pytest.mark.parametrize(
    "config, task, budget",
    [
        ("bert-tiny", "mlm", "3s"),
        ("roberta-tiny", "classification", "3s"),
        ("t5-tiny", "seq2seq", "4s"),
        ("mt5-tiny", "seq2seq", "4s"),
    ],
)
def test_each_family_trains_under_a_budget(tmp_path, config, task, budget):
    out = tmp_path / "out"
    code = main(
        [
            "train",
            "--config",
            config,
            "--task",
            task,
            "--time_budget",
            budget,
            "--eval_every",
            "2s",
            "--output_dir",
            str(out),
            *COMMON,
        ]
    )
    assert code == 0
    metrics = json.loads((out / "all_results.json").read_text())
    # deadline mode: stops early enough that the final evaluation and save end within the budget
    assert float(budget[:-1]) - 2.0 <= metrics["elapsed_s"] <= float(budget[:-1]) * 1.03
    assert metrics["budget_progress"] > 0.5
    assert "eval_loss" in metrics
    if task == "mlm":
        assert metrics["eval_perplexity"] > 1
    if task == "classification":
        assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    records = [json.loads(line) for line in (out / "budget_log.jsonl").read_text().splitlines()]
    evaluations = [r for r in records if "metrics" in r]
    assert evaluations and all(r["elapsed_s"] >= 2.0 for r in evaluations)
    assert records[-1]["event"] == "end" and records[-1]["ended_by"] in ("deadline", "time_budget")
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] > 0


def test_pretrain_then_finetune_from_the_checkpoint(tmp_path):
    mlm = tmp_path / "mlm"
    assert (
        main(
            [
                "train",
                "--config",
                "roberta-tiny",
                "--task",
                "mlm",
                "--time_budget",
                "2s",
                "--output_dir",
                str(mlm),
                *COMMON,
            ]
        )
        == 0
    )
    model = AutoModelForMaskedLM.from_pretrained(mlm)
    assert model.config.vocab_size == len(AutoTokenizer.from_pretrained(mlm))
    cls = tmp_path / "cls"
    assert (
        main(
            [
                "train",
                "--model_name_or_path",
                str(mlm),
                "--task",
                "classification",
                "--time_budget",
                "2s",
                "--output_dir",
                str(cls),
                *COMMON,
            ]
        )
        == 0
    )
    assert json.loads((cls / "all_results.json").read_text())["eval_accuracy"] >= 0.0


def test_train_a_scaled_config(tmp_path):
    out = tmp_path / "out"
    assert (
        main(
            [
                "train",
                "--config",
                "roberta-tiny",
                "--num_layers",
                "3",
                "--hidden_size",
                "48",
                "--head_dim",
                "16",
                "--task",
                "mlm",
                "--time_budget",
                "2s",
                "--output_dir",
                str(out),
                *COMMON,
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"]) == (3, 48, 3)


def test_task_that_does_not_fit_the_model(tmp_path, capsys):
    code = main(
        [
            "train",
            "--config",
            "t5-tiny",
            "--task",
            "mlm",
            "--time_budget",
            "2s",
            "--output_dir",
            str(tmp_path / "out"),
            *COMMON,
        ]
    )
    assert code == 1
    assert "task='mlm' does not fit model_type='t5'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_resume_from_checkpoint_true_through_the_cli(tmp_path):
    """`--resume_from_checkpoint True`, as in HF example scripts: the newest complete checkpoint in output_dir."""
    out = tmp_path / "out"
    first = ["train", "--config", "bert-tiny", "--task", "mlm", "--output_dir", str(out), *COMMON]
    assert main([*first, "--time_budget", "2s", "--save_strategy", "steps", "--save_steps", "5"]) == 0
    steps_before = json.loads((out / "trainer_state.json").read_text())["global_step"]
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    assert checkpoints
    assert (
        main(
            [
                *first,
                "--time_budget",
                "4s",
                "--save_strategy",
                "steps",
                "--save_steps",
                "5",
                "--resume_from_checkpoint",
                "True",
            ]
        )
        == 0
    )
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] > steps_before  # continued from the checkpoint, with the budget left
    elapsed = [log["elapsed_s"] for log in state["log_history"] if "elapsed_s" in log]
    assert max(elapsed) > 2.0
