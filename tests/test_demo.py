"""The main job: claim 1's analysis, the summary and report.md built from report numbers (fast), and the whole
--quick run with its acceptance figures (slow: about 5 minutes, `-m slow`)."""

import json
import math

import pytest

from tlc_hf.evaluation.frontier import pareto_frontier
from tlc_hf.evaluation.stats import paired_difference, wilson_interval
from tlc_hf.workflows.demo.pretraining import analyze, learning_rate_for, size_families
from tlc_hf.workflows.demo.report import render_markdown, summarize


def _run(label, params, steps, ppl, elapsed=20.0):
    return {
        "label": label,
        "params": params,
        "steps": steps,
        "elapsed_s": elapsed,
        "tokens_per_s": steps * 8 * 64 / elapsed,
        "learning_rate": 1e-3,
        "final_perplexity": ppl,
        "curve": [[0.0, 2000.0], [elapsed, ppl]],
    }


FAMILIES = {"depth": ["B", "D"], "width": ["B", "W"]}


def _claim1(base=500.0, deeper=560.0, wider=520.0, unigram=690.0):
    runs = [_run("B", 100, 1000, base), _run("D", 140, 700, deeper), _run("W", 280, 760, wider)]
    return {**analyze(runs, FAMILIES, unigram), "budget_s": 20.0}


def test_size_families_share_the_base_and_lr_scales_with_width_and_depth():
    assert size_families("2x64", (2, 4), (2,)) == {"depth": [(2, 64), (4, 64), (8, 64)], "width": [(2, 64), (2, 128)]}
    assert learning_rate_for(2, 64, base=(2, 64), base_lr=3e-3) == pytest.approx(3e-3)
    assert learning_rate_for(4, 64, base=(2, 64), base_lr=3e-3) == pytest.approx(1.5e-3)
    assert learning_rate_for(2, 256, base=(2, 64), base_lr=3e-3) == pytest.approx(7.5e-4)


def test_claim1_ratios_and_the_family_that_won():
    claim = _claim1()
    runs = {r["label"]: r for r in claim["runs"]}
    assert runs["W"]["param_ratio"] == 2.8 and runs["D"]["step_cost_ratio"] == pytest.approx(1000 / 700, abs=1e-3)
    assert claim["winner_family"] == "width" and claim["lowest_perplexity"] == "B"
    assert claim["families"]["width"]["beat_base"] is False and not claim["not_past_unigram"]
    text = " ".join(summarize(_report(claim)))
    assert "The width family won on this hardware" in text
    assert f"{2.8 / runs['W']['step_cost_ratio']:.2f}x the base's parameters per unit of step time" in text
    assert "No larger size beat the base at equal time" in text


def test_claim1_ties_within_three_percent_and_says_when_a_larger_size_won():
    claim = _claim1(base=600.0, deeper=505.0, wider=500.0)
    assert claim["winner_family"] == "tie"
    text = " ".join(summarize(_report(claim)))
    assert "families tied" in text and "beat the smaller base at equal time: the paper's claim 1 held here" in text


def test_a_size_stuck_at_unigram_statistics_is_not_ranked():
    claim = _claim1(deeper=700.0)
    assert claim["not_past_unigram"] == ["D"] and claim["winner_family"] is None
    text = " ".join(summarize(_report(claim)))
    assert text.startswith("Claim 1 not measured: D ended no better than unigram statistics (perplexity 690)")
    assert "won on this hardware" not in text


def _report(claim1, learned=True, change=0.07, half=0.04):
    finetuned = {
        "B": {"accuracy": 0.65, "ci": [0.6, 0.69], "examples": 427, "learned": True, "learning_rate": 6e-4},
        "W": {
            "accuracy": 0.72 if learned else 0.5,
            "ci": [0.68, 0.76] if learned else [0.45, 0.55],
            "examples": 427,
            "learned": learned,
            "learning_rate": 3e-4,
        },
    }
    rows = [
        {
            "size": "B",
            "rung": "fp32",
            "size_mb": 1.0,
            "fits": True,
            "accuracy": 0.65,
            "ci": [0.6, 0.69],
            "examples": 427,
        },
        {
            "size": "W",
            "rung": "fp32",
            "size_mb": 2.8,
            "fits": False,
            "accuracy": 0.72,
            "ci": [0.68, 0.76],
            "examples": 427,
        },
        {
            "size": "W",
            "rung": "int8",
            "size_mb": 0.9,
            "fits": True,
            "accuracy": 0.72,
            "ci": [0.68, 0.76],
            "examples": 427,
        },
    ]
    comparison = {
        "size": "W",
        "fits": True,
        "rung": "int8",
        "size_mb": 0.9,
        "accuracy": 0.72,
        "ci": [0.68, 0.76],
        "change_vs_base": change,
        "change_ci": half,
        "beat_base": None if abs(change) <= half else change > 0,
        "learned": learned,
    }
    frontier = [
        {
            "name": "fp32",
            "accuracy": 0.76,
            "ci": [0.71, 0.8],
            "accuracy_change": 0.0,
            "change_ci": 0.0,
            "size_mb": 90.9,
            "smaller": 1.0,
            "latency_ms": 220.0,
            "speedup": 1.0,
        },
        {
            "name": "cpu-int8-vocab",
            "accuracy": 0.755,
            "ci": [0.71, 0.79],
            "accuracy_change": -0.005,
            "change_ci": 0.015,
            "size_mb": 16.5,
            "smaller": 5.52,
            "latency_ms": 100.0,
            "speedup": 2.2,
        },
    ]
    return {
        "preset": {
            "name": "quick",
            "pretrain": "20s",
            "finetune": "25s",
            "pretrain_source": "rotten_tomatoes",
            "vocab_size": 2048,
            "block_size": 64,
        },
        "hardware": {"cpu": "Test CPU", "cpu_flags": ["avx2"], "torch_threads": 2},
        "claim1": claim1,
        "finetuned": finetuned,
        "claim2": {
            "budget_mb": 1.0,
            "base": "B",
            "base_accuracy": 0.65,
            "base_ci": [0.6, 0.69],
            "rows": rows,
            "comparisons": [comparison],
        },
        "real_model": {
            "model": "MiniLM",
            "finetune_budget": "35s",
            "learning_rate": 1e-4,
            "recipe": "cpu-int8-vocab",
            "card": "out/README.md",
            "frontier": frontier,
            "best": frontier[1],
            "smaller": 5.52,
            "speedup": 2.2,
            "points_lost": 0.5,
        },
        "timings": {"at_stage_1_s": 0.0, "at_stage_2_s": 65.0},
        "wall_clock_s": 255.0,
    }


def test_claim2_verdicts_follow_the_paired_interval():
    text = " ".join(summarize(_report(_claim1())))
    assert "W fitted as int8 (0.90 MB) and scored 0.720 (0.680-0.760): +7.0 ± 4.0 points" in text
    assert "so it beat the smaller dense model" in text and "beat the smaller dense one? yes for W" in text
    text = " ".join(summarize(_report(_claim1(), change=0.02, half=0.04)))
    assert "did not separate from the smaller dense model" in text and "not resolved on 427 test reviews" in text
    text = " ".join(summarize(_report(_claim1(), change=-0.08, half=0.04)))
    assert "no: W scored below it beyond the paired interval" in text


def test_a_size_that_stayed_at_chance_is_a_failed_run_and_leaves_the_verdict():
    text = " ".join(summarize(_report(_claim1(), learned=False)))
    assert "W stayed at chance (the interval includes 0.5): a failure of this run" in text
    assert "Did the larger compressed model beat" not in text


def test_a_fine_tune_with_too_few_steps_is_no_finding_and_says_why():
    report = _report(_claim1(), learned=False)
    report["preset"]["min_finetune_steps"] = 300
    report["finetuned"]["B"]["steps"], report["finetuned"]["W"]["steps"] = 1200, 30
    text = " ".join(summarize(report))
    assert "Too few steps to judge: W got 30 steps in its 25s (this preset needs at least 300" in text
    assert "the machine was busy with other work or the budget is short" in text
    report["finetuned"]["W"]["steps"] = 300
    assert "Too few steps" not in " ".join(summarize(report))
    report["summary"] = summarize(report)
    assert "| W | 3.0e-04 | 300 | 0.500 | 0.450-0.550 | **no** |" in render_markdown(report)


def test_report_md_has_every_section_its_plots_and_the_summary():
    report = _report(_claim1())
    report["summary"] = summarize(report)
    text = render_markdown(report)
    for needle in (
        "![perplexity against time, depth and width families](curves.png)",
        "(compression.png)",
        "(real_frontier.png)",
        "Test CPU (avx2; 2 threads)",
        "| W | int8 | 0.900 | yes | 0.720 |",
        "| cpu-int8-vocab | 0.755 (0.710-0.790) | -0.5 ± 1.5 pt | 16.5 | 5.52x | 100.0 | 2.20x |",
    ):
        assert needle in text, needle
    assert all(f"- {line}" in text for line in report["summary"])


def test_wilson_and_paired_intervals():
    low, high = wilson_interval(350, 427)
    assert 0.77 < low < 0.79 and 0.85 < high < 0.86 and low < 350 / 427 < high
    assert paired_difference([1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]) == (0.0, 0.0)
    change, half = paired_difference([0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1])
    assert change == 0.5 and half == pytest.approx(1.96 * math.sqrt(1 / 3) / 2)
    with pytest.raises(ValueError, match="positive number of examples"):
        wilson_interval(0, 0)


def test_pareto_frontier_keeps_what_nothing_beats_on_size_and_accuracy():
    rows = [
        {"name": n, "size_mb": s, "accuracy": a}
        for n, s, a in (("big", 90, 0.80), ("int8", 20, 0.81), ("tiny", 5, 0.70), ("bad", 30, 0.75))
    ]
    assert [r["name"] for r in pareto_frontier(rows)] == ["tiny", "int8"]


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    """The acceptance of #15 on 2 CPU cores: every size learns (> 0.6 on Rotten Tomatoes), the real model
    ends >= 4x smaller at <= 2 points lost, and report.md / report.json / the card / the plots exist."""
    from tlc_hf.workflows.demo import run_demo

    out = tmp_path / "demo"
    report = run_demo(str(out), quick=True)
    for name in ("curves.png", "compression.png", "real_frontier.png", "report.json", "report.md"):
        assert (out / name).exists(), name
    saved = json.loads((out / "report.json").read_text())
    assert saved["summary"] == report["summary"]
    assert all(line in (out / "report.md").read_text() for line in report["summary"])
    for label, result in report["finetuned"].items():
        assert result["accuracy"] > 0.6, (label, result)
    assert not report["claim1"]["not_past_unigram"], report["claim1"]["runs"]
    assert all(c["fits"] for c in report["claim2"]["comparisons"])
    real = report["real_model"]
    assert real["smaller"] >= 4 and real["points_lost"] <= 2, real["best"]
    card = (out / "real_model" / real["recipe"] / "README.md").read_text()
    assert f"{real['best']['accuracy']:.4g}" in card
    print(f"quick demo: {report['wall_clock_s']} s")  # the figure for the note, not an assertion


def test_demo_refuses_more_than_one_base_size_before_any_work(tmp_path):
    from tlc_hf.workflows.demo import run_demo

    with pytest.raises(ValueError, match="give one base size DEPTHxWIDTH, e.g. 2x64"):
        run_demo(str(tmp_path / "demo"), quick=True, sizes="2x64,4x64", real_model=False)
    assert not (tmp_path / "demo").exists()


def test_presets_are_typed_records_and_the_command_shows_the_demo_log(capsys):
    import dataclasses
    import logging

    from tlc_hf.commands.demo import show_progress_lines
    from tlc_hf.workflows.demo.preset import PRESETS

    quick, default = PRESETS["quick"], PRESETS["default"]
    assert (quick.finetune, quick.finetune_lr_ratio, quick.claim2_held_out) == ("28s", 0.2, None)
    assert default.claim2_held_out == 4000 and default.depth_factors == (2, 4) and default.base == quick.base
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.finetune = "1s"
    with pytest.raises(TypeError, match="finetune_budget"):
        dataclasses.replace(quick, finetune_budget="1s")
    assert json.loads(json.dumps(quick.to_dict()))["pretrain"] == "18s"
    demo = logging.getLogger("tlc_hf.workflows.demo")
    kept = demo.handlers[:], demo.level, demo.propagate
    try:
        show_progress_lines()
        logging.getLogger("tlc_hf.workflows.demo.finetuning").info("  2x64: a line")
        assert capsys.readouterr().out == "  2x64: a line\n"
    finally:
        demo.handlers[:], demo.propagate = kept[0], kept[2]
        demo.setLevel(kept[1])
