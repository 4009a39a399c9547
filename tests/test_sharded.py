"""Compression during sharded training (FSDP2, and DDP: 2 CPU ranks over gloo) gives what one process gives.

One `torchrun` group for the whole module (tests/scripts/sharded_worker.py) runs every check on a tiny
BERT (uneven shards: 65 FFN neurons) and a tiny T5; the tests read what each rank measured.
"""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import tlc_hf
from tlc_hf.compression.masks import lowest_k_masks
from tlc_hf.compression.sharding import check_engine, detect_engine, lowest_k_masks_sharded, strip_wrapper_prefixes
from tlc_hf.testing import random_batch, tiny_model
from tlc_hf.testing.processes import launch_ranks

WORKER = Path(__file__).parent / "scripts" / "sharded_worker.py"
FAMILIES = ("bert", "t5")
TRAINED = (
    "magnitude_local",
    "magnitude_global",
    "movement_hard",
    "movement_soft",
    "structured",
    "structured_gradient",
    "qat",
    "ddp_magnitude_movement_qat",
    "ddp_magnitude_global",
    "ddp_movement_soft",
    "quant_noise",
    "drophead",
    "lora",
    "kd",
    "kd_hidden",
    "kd_magnitude_qat",
    "ddp_structured",
    "ddp_structured_gradient",
    "ddp_quant_noise",
    "ddp_drophead",
    "ddp_kd",
    "ddp_kd_hidden",
    "ddp_lora",
)
ONE_SHOT = ("prune_magnitude_local", "prune_magnitude_global", "prune_structured")
REQUESTED = {  # checks with a requested sparsity of the target weights
    "prune_magnitude_local": 0.6,
    "prune_magnitude_global": 0.6,
    "magnitude_local": 0.6,
    "magnitude_global": 0.6,
    "movement_hard": 0.5,
    "kd_magnitude_qat": 0.5,
    "ddp_magnitude_global": 0.6,
}
RECORDED = {
    "prune_magnitude_local": ["magnitude"],
    "prune_magnitude_global": ["magnitude"],
    "prune_structured": ["structured"],
    "magnitude_local": ["magnitude"],
    "magnitude_global": ["magnitude"],
    "movement_hard": ["movement"],
    "movement_soft": ["movement"],
    "structured": ["structured"],
    "structured_gradient": ["structured"],
    "qat": ["quantization"],
    "ddp_magnitude_movement_qat": ["magnitude", "movement", "quantization"],
    "quant_noise": [],
    "drophead": ["drophead"],
    "lora": ["magnitude"],  # pruned before the adapter; the merge keeps the zeros
    "kd": [],
    "kd_hidden": [],
    "kd_magnitude_qat": ["magnitude", "quantization"],
    "ddp_magnitude_global": ["magnitude"],
    "ddp_movement_soft": ["movement"],
    "ddp_structured": ["structured"],
    "ddp_structured_gradient": ["structured"],
    "ddp_quant_noise": [],
    "ddp_drophead": ["drophead"],
    "ddp_kd": [],
    "ddp_kd_hidden": [],
    "ddp_lora": ["magnitude"],
}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Results of both ranks: {check/family: measurements}."""
    out = tmp_path_factory.mktemp("sharded")
    launch_ranks(WORKER, out)
    return [json.loads((out / f"results-{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("check", ONE_SHOT + TRAINED)
def test_sharded_run_matches_one_process(ranks, check, family):
    key = f"{check}/{family}"
    for result in ranks:
        assert result[key]["same_keys"], "the gathered model has other parameters than the one-process model"
        assert result[key]["zeros_equal"], "the zero pattern (masks, removed units) differs from one process"
        if result[key]["masks_equal"] is not None:
            assert result[key]["masks_equal"], "the gathered masks differ from one process"
        assert result[key]["weights_max_diff"] <= 1e-4
        # measured on the shards and summed over ranks: every rank sees the one-process sparsity
        assert result[key]["sparsity"] == pytest.approx(result[key]["reference_sparsity"], abs=1e-9) or (
            check.startswith(("structured", "prune_structured"))  # removed there, zeroed here until gathered
        )
        if check.endswith("kd_hidden"):  # the hidden-state projections, replicated: averaged like the model
            assert result[key]["projections_diff"] <= 1e-4  # every rank started from rank 0's init (broadcast)
            assert result[key]["projections_moved"] > 1e-3  # and they trained
        # the whole-saved model reloads with plain from_pretrained, with its record, and computes the same
        assert result[key]["reload_vs_reference"] <= 1e-4
        assert result[key]["params"] == result[key]["reference_params"]
        assert result[key]["methods"] == result[key]["reference_methods"] == RECORDED[check]
    assert ranks[0][key]["sparsity"] == ranks[1][key]["sparsity"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("check", sorted(REQUESTED))
def test_requested_sparsity_on_every_rank(ranks, check, family):
    for result in ranks:
        # per-module rounding of k = round(s * n) leaves at most a few weights off the fraction
        assert result[f"{check}/{family}"]["sparsity"] == pytest.approx(REQUESTED[check], abs=5e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_structured_removal_happens_on_the_gathered_model(ranks, family):
    for check in (
        "prune_structured",
        "structured",
        "structured_gradient",
        "ddp_structured",
        "ddp_structured_gradient",
    ):
        result = ranks[0][f"{check}/{family}"]
        full = ranks[0][f"qat/{family}"]["params"]  # an unpruned model of the same config
        assert result["params"] < 0.8 * full
        if check == "prune_structured":
            assert result["report"]["params_after"] is None and result["report"]["native"] is None


# ---- one process: the selection rule, engine detection and refusals ---------------------------------------
def test_sharded_selection_equals_topk_on_one_process():
    """Without a process group the radix select keeps exactly what torch.topk keeps (no ties)."""
    gen = torch.Generator().manual_seed(0)
    scores = {"a": torch.randn(33, 7, generator=gen), "b": torch.randn(5, 64, generator=gen).abs()}
    for scope in ("local", "global"):
        for sparsity in (0.0, 0.1, 0.5, 0.93):
            got = lowest_k_masks_sharded(scores, sparsity, scope)
            want = lowest_k_masks(scores, sparsity, scope)
            assert all(torch.equal(got[n], want[n]) for n in scores), (scope, sparsity)


def test_ties_at_the_threshold_give_the_exact_count():
    scores = {"a": torch.tensor([0.5, 0.5, 0.5, 0.5, 1.0, -1.0]), "b": torch.tensor([0.5, 2.0])}
    masks = lowest_k_masks_sharded(scores, 0.5, "global")  # k = 4: -1.0 and the first three 0.5s
    assert masks["a"].tolist() == [False, False, False, True, True, False]
    assert masks["b"].tolist() == [True, True]


def test_engine_detection_and_refusals():
    model = tiny_model("bert")
    assert detect_engine(model) == "none"
    assert detect_engine(model, SimpleNamespace(world_size=2, deepspeed=None, fsdp=None)) == "ddp"
    assert (
        detect_engine(model, SimpleNamespace(world_size=2, fsdp="full_shard", fsdp_config={"version": 2})) == "fsdp2"
    )
    deepspeed = SimpleNamespace(deepspeed="ds_config.json")
    assert check_engine("StructuredPruningCallback", model, deepspeed) == "deepspeed"
    with pytest.raises(ValueError, match=r"^StructuredPruningCallback cannot run under deepspeed through the Trainer"):
        check_engine("StructuredPruningCallback", model, deepspeed, needs_gradients=True)  # importance="gradient"
    # a callback not ported to DeepSpeed's fp32 masters (a user's CompressionCallback subclass)
    with pytest.raises(ValueError, match=r"^MyPruningCallback cannot run under deepspeed: .*FSDP2"):
        check_engine("MyPruningCallback", model, deepspeed)
    assert check_engine("MagnitudePruningCallback", model, SimpleNamespace(deepspeed="ds_config.json")) == "deepspeed"
    with pytest.raises(ValueError, match=r"^QATCallback cannot run under fsdp1: .*FSDP2"):
        check_engine("QATCallback", model, SimpleNamespace(deepspeed=None, fsdp="full_shard", fsdp_config={}))
    sharded_save = SimpleNamespace(
        world_size=2, fsdp="full_shard", fsdp_config={"version": 2, "state_dict_type": "SHARDED_STATE_DICT"}
    )
    with pytest.raises(
        ValueError, match=r"^MovementPruningCallback under fsdp2 with a SHARDED_STATE_DICT .*FULL_STATE_DICT"
    ):
        check_engine("MovementPruningCallback", model, sharded_save)
    assert strip_wrapper_prefixes("module._orig_mod.bert.encoder.layer.0") == "bert.encoder.layer.0"


def test_hidden_state_distillation_loss_holds_the_projections_not_the_teacher(tmp_path):
    from tlc_hf.compression.distillation import DistillationConfig
    from tlc_hf.training.sharded import distillation_loss, train_sharded

    config, teacher = DistillationConfig(hidden_weight=1.0), tiny_model("bert", hidden_size=64)
    with pytest.raises(ValueError, match=r"^distillation hidden_weight=1.0 needs the student") as err:
        distillation_loss(teacher, config)
    assert "\n" not in str(err.value)
    loss = distillation_loss(teacher, config, student=tiny_model("bert"))  # width 32 -> 64: learned projections
    assert [tuple(p.shape) for p in loss.parameters()] == [(64, 32), (64,)] * 2  # 2 layers; no teacher weight
    batch = random_batch("bert")
    batch["labels"] = batch["input_ids"]
    loss(tiny_model("bert").train(), batch).backward()
    assert all(p.grad is not None for p in loss.parameters())
    # checkpoints hold the model and its optimizer only: refused before training rather than resumed without them
    with pytest.raises(ValueError, match=r"^save_steps=1, .*hidden-state projections"):
        train_sharded(tiny_model("bert"), [batch], output_dir=str(tmp_path / "run"), loss_fn=loss, save_steps=1)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: tlc_hf.StructuredPruningCallback(heads=0.5, importance="gradient"),
            r"cannot run under deepspeed through the Trainer: .*train_sharded\(engine.*FSDP2",
        ),
        # the Trainer steps DeepSpeed inside backward: no gradients reach the callback
        (
            lambda: tlc_hf.MovementPruningCallback(sparsity=0.5),
            r"cannot run under deepspeed through the Trainer: .*train_sharded\(engine.*FSDP2",
        ),
        # units are cut on the model save_whole gathers; Trainer.save_model would save them uncut
        (
            lambda: tlc_hf.StructuredPruningCallback(heads=0.5),
            r"StructuredPruningCallback under deepspeed through the Trainer: .*train_sharded.*save_whole",
        ),
    ],
)
def test_callbacks_refuse_the_trainers_deepspeed_path_where_they_cannot_work(tmp_path, make, message):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), max_steps=10, report_to="none", use_cpu=True)
    args.deepspeed = "ds_config.json"  # what --deepspeed sets (accelerate runs DeepSpeed only on accelerators)
    model = tiny_model("bert")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    callback = make()
    with pytest.raises(ValueError, match=message) as err:
        callback.on_train_begin(args, TrainerState(max_steps=10), TrainerControl(), model=model)
    assert "\n" not in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing touched


@pytest.mark.parametrize(
    "make",
    [
        lambda: tlc_hf.MagnitudePruningCallback(sparsity=0.5),
        lambda: tlc_hf.QATCallback(bits=8),
        lambda: tlc_hf.QuantNoiseCallback(noise_rate=0.1),
        lambda: tlc_hf.DropHeadCallback(rate=0.1),
    ],
)
def test_ported_callbacks_accept_deepspeed(tmp_path, make):
    """Magnitude, QAT and Quant-Noise masks reach DeepSpeed's fp32 masters; DropHead touches no parameter
    (tests/test_deepspeed.py runs them, and structured pruning through train_sharded(engine))."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), max_steps=10, report_to="none", use_cpu=True)
    args.deepspeed = "ds_config.json"
    callback = make()
    callback.on_train_begin(args, TrainerState(max_steps=10), TrainerControl(), model=tiny_model("bert"))
    assert callback.engine == "deepspeed"


@pytest.mark.slow
def test_real_minilm_recipe_sharded_matches_one_process(tmp_path):
    """examples/fsdp2_compress.py with the real all-MiniLM-L6-v2: KD + magnitude + QAT (examples/fsdp2_recipe.yaml)
    for 4 steps on 2 gloo ranks, against the same recipe in one process from the same init on the same batches."""
    pytest.importorskip("all_minilm_l6_v2")
    example = WORKER.parents[2] / "examples" / "fsdp2_compress.py"
    launch_ranks(example, "--model", "minilm", "--output_dir", tmp_path, "--steps", "4", "--compare", timeout=900)
    for rank in (0, 1):
        result = json.loads((tmp_path / f"comparison-{rank}.json").read_text())
        assert result["zeros_equal"]
        assert result["weights_max_diff"] <= 1e-4
        assert result["sparsity"] == result["reference_sparsity"] == pytest.approx(0.5, abs=1e-4)
        assert result["methods"] == result["reference_methods"] == ["magnitude", "quantization"]
        assert result["reload_vs_reference"] <= 1e-4
