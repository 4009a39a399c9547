"""The main job's summary logic (fast), and the whole quick demo (slow: about 3 minutes, `-m slow`)."""

import json

import pytest

from tlc_hf.workflows.demo import summarize


def _report(best_method="magnitude (sparse storage)"):
    return {
        "preset": {"pretrain": 30},
        "finetuned": {"S": {"accuracy": 0.74}, "L": {"accuracy": 0.5}},
        "memory_budget_mb": 1.5,
        "best": {"size": "S", "method": best_method, "level": 0.5, "size_mb": 1.3, "accuracy": 0.73},
    }


def _sweep(large_wins):
    return {
        "runs": [
            {"label": "S", "params": 1, "final_perplexity": 900 if not large_wins else 1200, "tokens_per_s": 300},
            {"label": "L", "params": 4, "final_perplexity": 1100 if not large_wins else 800, "tokens_per_s": 100},
        ]
    }


def test_summary_says_when_the_large_model_did_not_win_and_why():
    text = summarize(_report(), _sweep(large_wins=False))
    assert "S reached the lowest MLM perplexity (900)" in text
    assert "largest size (L) did not win at equal time" in text and "3.0x fewer tokens per second" in text
    assert "S with magnitude (sparse storage) 0.5 (1.30 MB, accuracy 0.730)" in text


def test_summary_when_the_large_model_wins_and_nothing_compressed_fits_better():
    text = summarize(_report("fp32"), _sweep(large_wins=True))
    assert "L reached the lowest" in text and "did not win" not in text
    assert "uncompressed (fp32)" in text


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    from tlc_hf.workflows.demo import run_demo

    report = run_demo(str(tmp_path / "demo"), quick=True)
    for name in ("curves.png", "compression.png", "report.json", "sweep.json", "best_model/README.md"):
        assert (tmp_path / "demo" / name).exists(), name
    assert json.loads((tmp_path / "demo" / "report.json").read_text())["summary"] == report["summary"]
    assert report["best"]["size_mb"] <= report["memory_budget_mb"]
