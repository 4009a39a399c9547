"""Each example runs with --tiny on CPU, offline, on local stand-in data; one as 2 processes under accelerate."""

import subprocess
import sys
from pathlib import Path

import pytest
from datasets import Dataset

from tlc_hf.testing import accelerate_launch_command

EXAMPLES = Path(__file__).parents[1] / "examples"
COMMON = [
    "--report_to",
    "none",
    "--use_cpu",
    "true",
    "--disable_tqdm",
    "true",
    "--save_strategy",
    "no",
    "--per_device_train_batch_size",
    "8",
]


def _run(cmd, timeout=420):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    return result.stdout


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """Local folders laid out like the Hub datasets the examples name (wikitext, glue/mnli, wmt16)."""
    root = tmp_path_factory.mktemp("stand_ins")
    words = ["the", "a", "film", "story", "actor", "plot", "good", "bad", "great", "dull", "scene", "music"]
    text = [" ".join(words[(i * 7 + j) % len(words)] for j in range(12 + i % 9)) for i in range(600)]
    (root / "wikitext").mkdir()
    Dataset.from_dict({"text": text}).to_csv(str(root / "wikitext" / "train.csv"))
    (root / "mnli").mkdir()
    rows = {"premise": text[:300], "hypothesis": text[300:600], "label": [i % 3 for i in range(300)]}
    for split in ("train", "validation_matched", "test_matched"):
        Dataset.from_dict(rows).to_csv(str(root / "mnli" / f"{split}.csv"))
    (root / "wmt").mkdir()
    Dataset.from_dict({"source": text[:400], "target": [t.upper() for t in text[:400]]}).to_csv(
        str(root / "wmt" / "train.csv")
    )
    return root


def test_pretrain_mlm_tiny(tmp_path, stand_ins):
    out = _run(
        [
            sys.executable,
            str(EXAMPLES / "pretrain_mlm.py"),
            "--tiny",
            "--dataset",
            str(stand_ins / "wikitext"),
            "--time_budget",
            "4s",
            "--output_dir",
            str(tmp_path / "out"),
            *COMMON,
        ]
    )
    assert "perplexity" in out and (tmp_path / "out" / "model.safetensors").exists()


def test_pretrain_mlm_tiny_two_processes(tmp_path, stand_ins):
    cmd = [
        *accelerate_launch_command(2, port=29531),
        str(EXAMPLES / "pretrain_mlm.py"),
        "--tiny",
        "--dataset",
        str(stand_ins / "wikitext"),
        "--time_budget",
        "4s",
        "--output_dir",
        str(tmp_path / "out"),
        *COMMON,
    ]
    out = _run(cmd)
    assert [line for line in out.splitlines() if line.startswith("perplexity ")].__len__() == 1  # main process only
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_glue_compress_tiny(tmp_path, stand_ins):
    out = _run(
        [
            sys.executable,
            str(EXAMPLES / "glue_compress.py"),
            "--tiny",
            "--dataset",
            str(stand_ins / "mnli"),
            "--dataset_config",
            "",
            "--time_budget",
            "4s",
            "--output_dir",
            str(tmp_path / "out"),
            *COMMON,
        ]
    )
    assert "accuracy" in out and (tmp_path / "out" / "compressed" / "README.md").exists()


def test_t5_translation_kd_tiny(tmp_path, stand_ins):
    out = _run(
        [
            sys.executable,
            str(EXAMPLES / "t5_translation_kd.py"),
            "--tiny",
            "--dataset",
            str(stand_ins / "wmt"),
            "--dataset_config",
            "",
            "--time_budget",
            "4s",
            "--output_dir",
            str(tmp_path / "out"),
            *COMMON,
        ]
    )
    assert "BLEU" in out and (tmp_path / "out" / "model.safetensors").exists()
