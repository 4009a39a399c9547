"""Compression callbacks on DeepSpeed ZeRO-2 / ZeRO-3 (2 CPU ranks over gloo) give what one process gives.

One `torchrun` group for the whole module (tests/scripts/deepspeed_worker.py) trains a tiny BERT and a tiny T5
as DeepSpeed engines through `tlc_hf.train_sharded`; the tests read what each rank measured. deepspeed is not a
tlc_hf dependency: the module is skipped without it. Run it from the side venv of examples/ACCELERATE.md:

    /work/dsvenv/bin/python -m pytest tests/test_deepspeed.py
"""

import json
from pathlib import Path

import pytest

from tlc_hf.testing.processes import launch_ranks, rank_env

pytest.importorskip("deepspeed")

WORKER = Path(__file__).parent / "scripts" / "deepspeed_worker.py"
STAGES = ("zero2", "zero3")
FAMILIES = ("bert", "t5")
CHECKS = (
    "prune_magnitude_local",
    "prune_magnitude_global",
    "prune_structured",
    "plain",
    "magnitude_local",
    "magnitude_global",
    "movement_hard",
    "movement_soft",
    "qat",
    "quant_noise",
    "structured",
    "structured_gradient",
    "drophead",
    "kd_magnitude_qat",
)
# ZeRO-3 with every parameter gathered per forward (param_persistence_threshold 0): the large-model path
UNPERSISTED = tuple(c for c in CHECKS if c != "plain" and not c.startswith("prune_"))  # every training method
REQUESTED = {
    "prune_magnitude_local": 0.6,
    "prune_magnitude_global": 0.6,
    "magnitude_local": 0.6,
    "magnitude_global": 0.6,
    "movement_hard": 0.5,
    "kd_magnitude_qat": 0.5,
}
RECORDED = {
    "prune_magnitude_local": ["magnitude"],
    "prune_magnitude_global": ["magnitude"],
    "prune_structured": ["structured"],
    "plain": [],
    "magnitude_local": ["magnitude"],
    "magnitude_global": ["magnitude"],
    "movement_hard": ["movement"],
    "movement_soft": ["movement"],
    "qat": ["quantization"],
    "quant_noise": [],
    "structured": ["structured"],
    "structured_gradient": ["structured"],
    "drophead": ["drophead"],
    "kd_magnitude_qat": ["magnitude", "quantization"],
}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Results of both ranks: {stage/check/family: measurements}."""
    out = tmp_path_factory.mktemp("deepspeed")
    launch_ranks(WORKER, out, env=rank_env(DS_ACCELERATOR="cpu"), timeout=900)
    return [json.loads((out / f"results-{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.parametrize(
    "stage, check",
    [(stage, check) for stage in STAGES for check in CHECKS] + [("zero3-unpersisted", check) for check in UNPERSISTED],
)
@pytest.mark.parametrize("family", FAMILIES)
def test_deepspeed_run_matches_one_process(ranks, stage, check, family):
    key = f"{stage}/{check}/{family}"
    for rank in ranks:
        result = rank[key]
        assert result["same_keys"]
        # the gathered model's weights: the one-process values, zeros where it has zeros (structured: units
        # removed there and on the gathered model alike)
        assert result["weights_max_diff"] <= 1e-4
        assert result["zeros_equal"], "the model's zero pattern differs from one process"
        # DeepSpeed's fp32 masters (the full shapes: not comparable once structured pruning removed units)
        if not check.startswith(("structured", "prune_structured")):
            assert result["masters_max_diff"] <= 1e-4
            assert result["masters_zeros_equal"], "pruned fp32 master weights came back after an optimizer step"
            assert result["sparsity"] == pytest.approx(result["reference_sparsity"], abs=1e-9)
        if result["masks_equal"] is not None:
            assert result["masks_equal"], "the gathered masks differ from one process"
        assert result["reload_vs_reference"] <= 1e-4
        assert result["params"] == result["reference_params"]
        assert result["methods"] == result["reference_methods"] == RECORDED[check]
    assert ranks[0][key]["sparsity"] == ranks[1][key]["sparsity"]


@pytest.mark.parametrize(
    "stage, check",
    [(stage, check) for stage in STAGES for check in sorted(REQUESTED)]
    + [("zero3-unpersisted", check) for check in sorted(REQUESTED) if check in UNPERSISTED],
)
@pytest.mark.parametrize("family", FAMILIES)
def test_requested_sparsity_on_every_rank(ranks, stage, check, family):
    for result in ranks:
        assert result[f"{stage}/{check}/{family}"]["sparsity"] == pytest.approx(REQUESTED[check], abs=5e-4)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("stage", STAGES)
def test_masking_the_model_copy_alone_lets_pruned_weights_come_back(ranks, stage, family):
    """The control: masks applied to the model's parameters but not to DeepSpeed's fp32 masters (what the
    callbacks did before) are undone by the next optimizer step, and the test above would see it."""
    result = ranks[0][f"{stage}/control_model_copy_only/{family}"]
    assert not result["masters_zeros_equal"]
    assert result["masters_max_diff"] > 1e-4


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("stage", STAGES)
def test_structured_removal_happens_on_the_gathered_model(ranks, stage, family):
    """Masked units during training (the ZeRO parameters keep their shapes), removed on the gathered whole model."""
    full = ranks[0][f"{stage}/plain/{family}"]["params"]  # an unpruned model of the same config
    for check in ("prune_structured", "structured", "structured_gradient"):
        for rank in ranks:
            result = rank[f"{stage}/{check}/{family}"]
            assert result["params"] < 0.8 * full
            if check == "prune_structured":  # decided when gathered
                assert result["report"]["params_after"] is None and result["report"]["native"] is None
            assert result["sparsity"] > 0.15  # the masked columns, zero on every rank until the save


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("stage", STAGES)
def test_learned_projections_are_refused_on_an_engine(ranks, stage, family):
    """train_sharded refuses hidden-state projections (the teacher twice the student's width) on a DeepSpeed
    engine, whose optimizer does not hold them: one line, before any step."""
    for rank in ranks:
        result = rank[f"{stage}/refused_projections/{family}"]
        assert result["refusal"] is not None, "train_sharded trained learned projections on a DeepSpeed engine"
        assert "\n" not in result["refusal"]
        assert "hidden-state projections" in result["refusal"] and "DeepSpeed engine" in result["refusal"]
        assert result["engine_steps"] == 0
