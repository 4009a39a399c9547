"""Model size for a budget: scale_config rules, parameter breakdowns, published sizes, equal-budget sweeps."""

import json

import pytest

from tlc_hf.cli import main
from tlc_hf.modeling import build_model, resolve_config
from tlc_hf.scaling import PARTS, SHIPPED_CONFIGS, param_breakdown, scale_config
from tlc_hf.scaling.sweep import parse_sizes, scaled_learning_rate, time_to_target
from tlc_hf.testing import TINY_FAMILIES, tiny_model

# Published sizes of the real checkpoints.
PUBLISHED = {
    "bert-base-uncased": 110e6,
    "roberta-base": 125e6,
    "roberta-large": 355e6,
    "xlm-roberta-large": 560e6,
    "t5-11b": 11.3e9,
    "mt5-base": 582e6,
    "mt5-large": 1.23e9,
}


@pytest.mark.parametrize("name, size", PUBLISHED.items())
def test_published_sizes_within_one_percent(name, size):
    assert param_breakdown(name)["total"] == pytest.approx(size, rel=0.01)


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_parts_sum_to_total_for_every_shipped_config(name):
    breakdown = param_breakdown(name)
    assert sum(breakdown[part] for part in PARTS) == breakdown["total"]
    assert all(breakdown[part] >= 0 for part in PARTS)
    assert breakdown["attention"] > 0 and breakdown["ffn"] > 0 and breakdown["embeddings"] > 0


def test_mt5_counts_the_checkpoints_separate_lm_head():
    mt5, t5 = param_breakdown("google/mt5-base"), param_breakdown("t5-base")
    assert mt5["other"] == 250112 * 768 and mt5["embeddings"] == 250112 * 768
    assert "separate lm_head" in mt5["notes"][0]
    assert t5["other"] == 0 and not t5["notes"]  # T5 ties its output embedding


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("task", ["base", "head"])
def test_tiny_totals_equal_a_direct_count(family, task):
    if task == "head":
        model = tiny_model(family)
    else:
        model = build_model(
            resolve_config(f"{family}-tiny"), "seq2seq" if family in ("t5", "mt5") else "mlm"
        ).base_model
    direct = sum(p.numel() for p in model.parameters())
    breakdown = param_breakdown(model)
    assert breakdown["total"] == direct
    assert sum(breakdown[part] for part in PARTS) == direct


def test_breakdown_parts_are_right_for_bert_base():
    b = param_breakdown("bert-base-uncased")
    hidden, layers, inter = 768, 12, 3072
    assert b["embeddings"] == (30522 + 512 + 2) * hidden
    assert b["attention"] == layers * 4 * (hidden * hidden + hidden)
    assert b["ffn"] == layers * (2 * hidden * inter + inter + hidden)
    assert b["other"] == hidden * hidden + hidden  # pooler
    assert b["norm"] == (2 * layers + 1) * 2 * hidden


def test_breakdown_of_a_config_costs_no_memory():
    import resource

    config = resolve_config("t5-11b")
    peak_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert param_breakdown(config)["total"] > 11e9  # 45 GB in fp32 if it were materialized
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kb) / 1024
    assert grown_mb < 200, grown_mb


@pytest.mark.parametrize("base", ["bert-base-uncased", "roberta-base", "xlm-roberta-base"])
@pytest.mark.parametrize("depth, width", [(3, 256), (6, 512), (12, 768), (18, 1024), (24, 1536)])
def test_encoder_scaling_rules_cover_the_paper_grid(base, depth, width):
    config = scale_config(base, depth, width)
    assert config.num_hidden_layers == depth and config.hidden_size == width
    assert config.num_attention_heads == width // 64
    assert config.intermediate_size == 4 * width
    assert config.vocab_size == resolve_config(base).vocab_size


@pytest.mark.parametrize("base", ["t5-base", "mt5-base"])
def test_t5_scaling_keeps_ffn_ratio_and_decoder_depth(base):
    original = resolve_config(base)
    config = scale_config(base, 6, 512)
    assert (config.d_model, config.num_heads, config.d_kv) == (512, 8, 64)
    assert config.d_ff / config.d_model == pytest.approx(original.d_ff / original.d_model, rel=0.01)
    assert config.num_layers == config.num_decoder_layers == 6
    uneven = scale_config(scale_config(base, num_decoder_layers=6, head_dim=None), 8, 512)
    assert (uneven.num_layers, uneven.num_decoder_layers) == (8, 4)  # keeps the 2:1 ratio it was given


def test_scaled_tiny_configs_build_and_count(tmp_path):
    for family in TINY_FAMILIES:
        config = scale_config(f"{family}-tiny", 3, 48, head_dim=16)
        model = build_model(config, "seq2seq" if family in ("t5", "mt5") else "mlm")
        assert param_breakdown(model)["total"] == sum(p.numel() for p in model.parameters())


def test_scale_config_bad_input():
    with pytest.raises(ValueError, match="model_type='gpt2'.*'bert', 'roberta', 'xlm-roberta', 't5', 'mt5'"):
        from transformers import GPT2Config

        scale_config(GPT2Config(), 2, 128)
    with pytest.raises(ValueError, match="hidden_size=100 is not a multiple of head_dim=64"):
        scale_config("roberta-base", 2, 100)
    with pytest.raises(ValueError, match="num_layers=0"):
        scale_config("roberta-base", 0, 128)


def test_params_command_table_and_json(capsys):
    assert main(["params", "roberta-large"]) == 0
    table = capsys.readouterr().out
    assert "355,359,744" in table and all(part in table for part in PARTS)
    assert main(["params", "mt5-base", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"name", "total", *PARTS} <= set(data) and data["total"] == param_breakdown("mt5-base")["total"]
    assert main(["params", "roberta-base", "--num_layers", "6", "--hidden_size", "512", "--json"]) == 0
    scaled = json.loads(capsys.readouterr().out)
    assert (scaled["num_layers"], scaled["hidden_size"]) == (6, 512)


def test_sweep_helpers():
    assert parse_sizes("2x64, 4x128") == [(2, 64), (4, 128)]
    with pytest.raises(ValueError, match="'2-64' is not DEPTHxWIDTH"):
        parse_sizes("2-64")
    assert scaled_learning_rate(1e-3, 64, 16, "linear") == pytest.approx(4e-3)
    assert scaled_learning_rate(1e-3, 64, 16, "sqrt") == pytest.approx(2e-3)
    assert scaled_learning_rate(1e-3, 64, 16, "none") == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="lr_scaling='cubic'"):
        scaled_learning_rate(1e-3, 64, 16, "cubic")
    assert time_to_target([[0, 900.0], [5, 400.0], [10, 200.0]], 500) == 5
    assert time_to_target([[0, 900.0]], 500) is None


def test_sweep_on_the_embedded_corpus(tmp_path, small_corpus, bpe_tokenizer):
    from tlc_hf.scaling.sweep import run_sweep

    out = tmp_path / "sweep"
    sweep = run_sweep(
        "1x32,2x64",
        output_dir=str(out),
        budget="3s",
        head_dim=16,
        batch_sizes=[8, 16],
        lr_scaling="sqrt",
        learning_rate=1e-3,
        learning_rate_for=lambda depth, width: 1e-3 * 32 / width,  # per size, then scaled per batch size
        target_perplexity=5000,
        corpus=small_corpus,
        tokenizer=bpe_tokenizer,
        block_size=64,
        max_eval_blocks=16,
        show_progress=False,
    )
    written = json.loads((out / "sweep.json").read_text())
    assert written["runs"] == sweep["runs"]
    assert [r["label"] for r in sweep["runs"]] == ["L1xH32-B8", "L1xH32-B16", "L2xH64-B8", "L2xH64-B16"]
    for run in sweep["runs"]:
        assert run["steps"] > 0 and run["tokens_per_s"] > 0 and run["params"] > 0
        # from the start to the budget: the deadline keeps the last evaluation within it
        assert run["curve"][0][0] < 0.5 and 3.0 * 0.6 <= run["curve"][-1][0] <= 3.0 * 1.03
        assert run["final_perplexity"] == run["curve"][-1][1]
        assert run["curve"][-1][1] < run["curve"][0][1]  # it learned something
    assert sweep["runs"][1]["learning_rate"] == pytest.approx(1e-3 * 2**0.5)
    assert sweep["runs"][2]["learning_rate"] == pytest.approx(5e-4)
    assert sweep["runs"][3]["learning_rate"] == pytest.approx(5e-4 * 2**0.5)
    assert sweep["recommendation"]["lowest_perplexity"] in {r["label"] for r in sweep["runs"]}
    png = (out / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
