"""One-shot `tlc-hf compress` measures what it did on the model's own test split and says what it cost."""

import json

from tlc_hf.cli import main
from tlc_hf.hub.report import CompressionReport, ModelMeasurement, one_shot_summary

TRAIN = ["train", "--config", "bert-tiny", "--task", "classification", "--source", "rotten_tomatoes"]
TRAIN += ["--max_examples", "400", "--seed", "123", "--vocab_size", "500", "--max_length", "48"]
TRAIN += ["--per_device_train_batch_size", "16", "--report_to", "none", "--disable_tqdm", "true"]
TRAIN += ["--use_cpu", "true", "--time_budget", "3s"]


def _report(before, after, size_ratio=4.0, speedup=0.8):
    return CompressionReport(
        model_name="m",
        dataset="movie-reviews",
        baseline=ModelMeasurement(metrics=before),
        compressed=ModelMeasurement(metrics=after),
        size_ratio=size_ratio,
        speedup=speedup,
        benchmark={"eval_examples": 427},
    )


def test_summary_line_and_a_drop_beyond_the_threshold_names_the_recovering_recipe():
    line, warning = one_shot_summary(_report({"accuracy": 0.808}, {"accuracy": 0.536}), 0.02, model_dir="ft")
    assert line.startswith("Measured on 427 test examples of movie-reviews: accuracy 0.808 -> 0.536 (-27.2 points)")
    assert "4.00x smaller on disk" in line and "1.25x slower" in line
    assert "accuracy fell 27.2 points (more than --max_drop 0.02)" in warning
    assert "--recipe cpu-compact --teacher ft" in warning
    line, warning = one_shot_summary(_report({"accuracy": 0.80}, {"accuracy": 0.79}), 0.02)
    assert warning is None and "(-1.0 points)" in line
    _, warning = one_shot_summary(_report({"perplexity": 10.0}, {"perplexity": 13.0}), 0.02)
    assert "perplexity rose 30%" in warning


def test_one_shot_compress_measures_on_the_models_test_split(tmp_path, capsys):
    model_dir, small = tmp_path / "model", tmp_path / "small"
    assert main([*TRAIN, "--output_dir", str(model_dir)]) == 0
    capsys.readouterr()
    argv = ["compress", str(model_dir), "--output_dir", str(small), "--prune_magnitude", "0.9", "--max_drop", "0"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    (line,) = [x for x in out.splitlines() if x.startswith("Measured on ")]
    report = json.loads((small / "compression_report.json").read_text())
    before, after = report["baseline"]["metrics"]["accuracy"], report["compressed"]["metrics"]["accuracy"]
    assert f"accuracy {before:.3f} -> {after:.3f}" in line and "x smaller on disk" in line
    assert report["data"]["source"] == "rotten_tomatoes"  # the model's recorded data, its own test split
    assert ("WARNING: accuracy fell" in err) == (before - after > 0)
