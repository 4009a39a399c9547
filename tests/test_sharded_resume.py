"""Resuming a sharded (FSDP2, 2 CPU ranks over gloo) run from its checkpoint in new processes restores the
masks and movement scores: the resumed run ends where the uninterrupted one does, on 2 ranks and in one process.

tests/scripts/sharded_resume_worker.py trains gradual magnitude (global) and movement (hard, soft) pruning on
a tiny BERT and T5 for 6 steps (FSDP2; movement hard under DDP as well): one process and 2 ranks uninterrupted, and 2 ranks that save `checkpoint-3`
(mid-schedule, between two mask updates) and stop. New processes resume that checkpoint (2 ranks, then one
process) from other initial weights and train steps 4-6. Also: gather_whole / save_whole on meta weights.
"""

import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM

from tlc_hf.testing import tiny_model
from tlc_hf.testing.processes import launch_ranks
from tlc_hf.training.sharded import gather_whole, save_whole, train_sharded

WORKER = Path(__file__).parent / "scripts" / "sharded_resume_worker.py"
CASES = [
    (check, family) for check in ("magnitude_global", "movement_hard", "movement_soft") for family in ("bert", "t5")
]
CASES.append(("movement_hard_ddp", "bert"))  # DDP replicas: the same checkpoint code, get_state_dict strips module.
META = r"^{}: bert\.embeddings\.word_embeddings\.weight is on the meta device .*model\.to_empty\(device=\.\.\.\)"


def _worker():
    spec = importlib.util.spec_from_file_location("sharded_resume_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"first": [rank 0, rank 1], "resume": [rank 0, rank 1], "resume-1": [one process], "out": folder}."""
    out = tmp_path_factory.mktemp("sharded_resume")
    for phase in ("first", "resume"):  # the first processes stop at checkpoint-3 and end; fresh ones resume
        launch_ranks(WORKER, out, phase)
    read = lambda name: json.loads((out / name).read_text())  # noqa: E731
    return {
        "first": [read(f"first-2-{rank}.json") for rank in (0, 1)],
        "resume": [read(f"resume-2-{rank}.json") for rank in (0, 1)],
        # this process, without a process group, resumes the 2-rank checkpoints (DCP reshards them)
        "resume-1": [json.loads(json.dumps(_worker().resume(str(out), sharded=False)))],
        "out": out,
    }


@pytest.mark.parametrize("check, family", CASES)
def test_checkpoint_holds_model_optimizer_callback_files_and_state(runs, check, family):
    for result in runs["first"]:
        entry = result[f"{check}/{family}"]
        assert entry["stopped_steps"] == [1, 2, 3]
        # each rank's torch RNG state, the DCP shards, the callbacks' files, the state written last
        expected = ["rng_state_0.safetensors", "rng_state_1.safetensors", "sharded_state", "trainer_state.json"]
        if check.startswith("movement"):
            expected.insert(3, "tlc_movement_scores.safetensors")  # saved whole by rank 0
        assert entry["checkpoint_files"] == expected
        assert entry["leftovers"] == []  # the temp folder was renamed into place


@pytest.mark.parametrize("check, family", CASES)
@pytest.mark.parametrize("world", ["resume", "resume-1"])
def test_resumed_run_matches_uninterrupted_and_one_process(runs, world, check, family):
    """Masks and scores right after the resume equal those at step 3; at the end masks are identical, scores
    and weights within float noise, the sparsity the same on every rank."""
    for result in runs[world]:
        entry = result[f"{check}/{family}"]
        assert entry["steps"] == [4, 5, 6]  # only the remaining batches were trained
        for other in ("uninterrupted", "reference"):  # 2 ranks without a stop; one process
            seen = entry[other]
            assert seen["masks_at_resume_equal"], f"masks rebuilt at resume differ from {other}'s at step 3"
            assert seen["masks_at_end_equal"], f"final masks differ from {other}'s"
            assert seen["pruned_at_end"] > 0
            assert seen["zeros_equal"]
            assert seen["weights_max_diff"] <= 1e-4
            assert entry["sparsity"] == pytest.approx(seen["sparsity"], abs=1e-9)
            if check.startswith("movement"):  # relative to the largest score
                assert seen["scores_at_resume_diff"] <= 1e-5
                assert seen["scores_at_end_diff"] <= 1e-5
            else:
                assert seen["scores_at_resume_diff"] is None
        if check.startswith("movement"):
            # saved whole, each rank took its shard back: bit for bit what the scores were at step 3
            assert entry["uninterrupted"]["scores_at_resume_diff"] == 0.0
    if world == "resume":
        assert runs[world][0][f"{check}/{family}"]["sparsity"] == runs[world][1][f"{check}/{family}"]["sparsity"]


@pytest.mark.parametrize("world", ["resume", "resume-1"])
def test_the_comparison_sees_scores_that_were_not_restored(runs, world):
    """Control: the same resume from a copy of the checkpoint without its scores file ends with other masks."""
    for result in runs[world]:
        assert result["movement_hard/bert"]["control_without_scores"] == {"masks_at_end_equal": False}


def test_meta_weights_are_refused_on_two_ranks_and_gathered_once_materialised(runs):
    for result in runs["first"]:
        meta = result["meta"]
        for action in ("gather_whole", "save_whole"):
            assert meta[action] is not None and "\n" not in meta[action]
            assert re.match(META.format(action), meta[action])
        assert not meta["save_dir_exists"]
        # fully_shard on meta, to_empty, weights broadcast from rank 0: real weights gathered and saved
        assert meta["materialised_max_diff"] == 0.0
        assert meta["reloaded_max_diff"] == 0.0


# ---- one process: meta weights and bad resume arguments --------------------------------------------------
def test_meta_model_in_one_process_is_refused_in_one_line(tmp_path):
    with torch.device("meta"):
        model = AutoModelForMaskedLM.from_config(tiny_model("bert").config)
    with pytest.raises(ValueError, match=META.format("gather_whole")):
        gather_whole(model)
    with pytest.raises(ValueError, match=META.format("save_whole")) as err:
        save_whole(model, str(tmp_path / "saved"))
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_bad_resume_arguments_are_refused_before_training(runs, tmp_path):
    model = tiny_model("bert")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = {"input_ids": torch.ones(2, 4, dtype=torch.long), "labels": torch.ones(2, 4, dtype=torch.long)}
    checkpoint = runs["out"] / "magnitude_global" / "bert" / "run" / "checkpoint-3"
    cases = [
        (dict(resume_from_checkpoint=True), r"^resume_from_checkpoint=True: no complete checkpoint-N folder in"),
        (
            dict(resume_from_checkpoint=str(checkpoint)),
            r"is not a checkpoint-N folder of output_dir=.*pass output_dir",
        ),
        (dict(resume_from_checkpoint=str(tmp_path / "checkpoint-3")), r"has no readable trainer_state\.json"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            train_sharded(model, [batch] * 6, output_dir=str(tmp_path), **kwargs)
        assert "\n" not in str(err.value)
    # the right folder, other batches: the schedules would follow another step / max_steps
    with pytest.raises(ValueError, match=r"saved with max_steps=6, this run has 4 batches"):
        train_sharded(model, [batch] * 4, output_dir=str(checkpoint.parent), resume_from_checkpoint=str(checkpoint))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded or trained


@pytest.mark.parametrize("method", ["drophead", "quant_noise"])
def test_resumed_run_draws_what_the_uninterrupted_run_drew(tmp_path, method):
    """Dropout (the torch RNG, saved per rank) and a seeded DropHead / Quant-Noise generator (saved by the
    callback) continue after a resume as without the stop: train_sharded resumed at checkpoint-2 of 4, in this
    process, from other initial weights, ends on the uninterrupted run's weights exactly."""
    from tlc_hf import DropHeadCallback, QuantNoiseCallback
    from tlc_hf.compression.generators import generator_file
    from tlc_hf.testing import random_batch

    def callbacks():
        if method == "drophead":
            return [DropHeadCallback(rate=0.5, seed=7)]
        return [QuantNoiseCallback(noise_rate=0.5, bits=4, start=0.0, end=0.0, seed=7)]

    batches = [random_batch("bert", batch_size=4, seed=step) for step in range(4)]
    for batch in batches:
        batch["labels"] = batch["input_ids"].clone()
    torch.manual_seed(0)
    whole = tiny_model("bert")
    assert whole.config.hidden_dropout_prob > 0  # dropout draws from the torch RNG
    train_sharded(whole, batches, callbacks(), output_dir=str(tmp_path), save_steps=2)
    checkpoint = tmp_path / "checkpoint-2"
    assert (checkpoint / "rng_state_0.safetensors").exists() and (checkpoint / generator_file(method)).exists()
    torch.manual_seed(1)  # another RNG state than at the stop: the checkpoint's must come back
    resumed = tiny_model("bert", seed=1)
    train_sharded(resumed, batches, callbacks(), output_dir=str(tmp_path), resume_from_checkpoint=str(checkpoint))
    expected, got = whole.state_dict(), resumed.state_dict()
    assert max(float((expected[k] - got[k]).abs().max()) for k in expected) == 0.0
