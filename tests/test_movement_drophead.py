"""Movement pruning (hard / soft) and scheduled DropHead, on BERT, RoBERTa and T5 shapes."""

import pytest
import torch
from transformers import TrainingArguments

from tlc_hf import (
    DropHeadCallback,
    MovementPruningCallback,
    MovementPruningConfig,
    compression_history,
    load_compressed,
    save_compressed,
)
from tlc_hf.compression import drophead_rate, find_targets, sparsity_report
from tlc_hf.compression.masks import get_mask
from tlc_hf.testing import random_batch, tiny_model, toy_dataset, train_tiny


def _data(family, n=48):
    return toy_dataset(family, n, seed=3, labels="decoder" if family == "t5" else "tokens")


def _train(tmp_path, model, family, callbacks, steps=20):
    return train_tiny(model, _data(family), tmp_path / "o", callbacks, steps)


@pytest.mark.parametrize("family", ["bert", "roberta", "t5"])
def test_hard_movement_reaches_target_and_bakes_masks(tmp_path, family):
    model = tiny_model(family)
    pruner = MovementPruningCallback(sparsity=0.6, start=0.1, end=0.7, update_every=2)
    trainer = _train(tmp_path, model, family, [pruner])
    targets = find_targets(model)
    assert sparsity_report(model, targets)["target_sparsity"] == pytest.approx(0.6, abs=0.005)
    assert all(get_mask(m) is None for m in targets.values())  # baked into the weights
    logged = [log["sparsity"] for log in trainer.state.log_history if "sparsity" in log]
    assert logged == sorted(logged) and logged[-1] == pytest.approx(0.6, abs=0.005)
    assert compression_history(model)[-1]["method"] == "movement"
    save_compressed(model, tmp_path / "saved", storage="sparse")
    batch = random_batch(family)
    model.eval()
    reloaded = load_compressed(str(tmp_path / "saved"))
    assert all(
        torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), model.state_dict().values(), strict=True)
    )
    assert torch.allclose(reloaded(**batch).logits, model(**batch).logits, atol=1e-5)


def test_movement_scores_differ_from_magnitude(tmp_path):
    """Movement keeps weights that grow during training, not the ones that were large at the start."""
    model = tiny_model("bert")
    start = {n: m.weight.detach().abs().clone() for n, m in find_targets(model).items()}
    pruner = MovementPruningCallback(sparsity=0.5, start=0.0, end=0.5, update_every=1)
    _train(tmp_path, model, "bert", [pruner])
    disagreements = 0
    for name, module in find_targets(model).items():
        kept = module.weight != 0
        by_start_magnitude = start[name] >= start[name].flatten().kthvalue(start[name].numel() // 2).values
        disagreements += int((kept != by_start_magnitude).sum())
    assert disagreements > 0


def test_soft_movement_prunes_by_threshold(tmp_path):
    model = tiny_model("bert")
    pruner = MovementPruningCallback(variant="soft", threshold=0.5, start=0.0, end=0.5, update_every=2)
    _train(tmp_path, model, "bert", [pruner])
    sparsity = sparsity_report(model, find_targets(model))["target_sparsity"]
    assert 0.3 < sparsity < 0.95  # about the share of standardized scores below +0.5 sd


def test_bad_movement_config():
    with pytest.raises(ValueError, match="variant='medium'"):
        MovementPruningConfig(variant="medium")
    with pytest.raises(ValueError, match="threshold=9"):
        MovementPruningConfig(variant="soft", threshold=9)


def test_drophead_schedules():
    assert drophead_rate(0.0, 0.2, "v") == pytest.approx(0.2)
    assert drophead_rate(0.5, 0.2, "v") == pytest.approx(0.0)
    assert drophead_rate(1.0, 0.2, "v") == pytest.approx(0.2)
    assert drophead_rate(0.25, 0.2, "linear") == pytest.approx(0.05)
    assert drophead_rate(0.7, 0.2, "constant") == pytest.approx(0.2)
    with pytest.raises(ValueError, match="schedule='u'"):
        drophead_rate(0.5, 0.2, "u")
    with pytest.raises(ValueError, match="rate=1.0"):
        DropHeadCallback(rate=1.0)


@pytest.mark.parametrize("family", ["bert", "roberta", "t5"])
def test_drophead_drops_whole_heads_in_training_only(tmp_path, family):
    from transformers import TrainerControl, TrainerState

    model = tiny_model(family, **({"num_heads": 4, "d_kv": 8} if family == "t5" else {"num_attention_heads": 4}))
    callback = DropHeadCallback(rate=0.5, schedule="constant", seed=0)
    state = TrainerState(max_steps=10)
    callback.on_train_begin(
        TrainingArguments(output_dir=str(tmp_path), use_cpu=True), state, TrainerControl(), model=model
    )
    o = (
        model.encoder.block[0].layer[0].SelfAttention.o
        if family == "t5"
        else model.base_model.encoder.layer[0].attention.output.dense
    )
    captured = []
    handle = o.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0].detach()))
    batch = random_batch(family, batch_size=16)
    model.eval()
    model(**batch)
    assert not (captured[-1].unflatten(-1, (4, -1)).abs().sum(dim=(1, 3)) == 0).any()  # no drop at eval
    model.train()
    model(**batch)
    # the captured input is before DropHead (registered later); compare to what the layer sees by re-running
    handle.remove()
    seen = []
    o.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    model(**batch)
    per_head = seen[-1].unflatten(-1, (4, -1)).abs().sum(dim=(1, 3))  # [batch, heads]
    dropped = per_head == 0
    assert dropped.any() and not dropped.all()
    assert dropped.float().mean().item() == pytest.approx(0.5, abs=0.2)
    callback.on_train_end(None, state, TrainerControl())
    seen.clear()
    model(**batch)
    assert not (seen[-1].unflatten(-1, (4, -1)).abs().sum(dim=(1, 3)) == 0).any()  # hook removed


def test_drophead_in_training_logs_rate(tmp_path):
    callback = DropHeadCallback(rate=0.2, schedule="v")
    trainer = _train(tmp_path, tiny_model("bert"), "bert", [callback])
    rates = [log["drophead_rate"] for log in trainer.state.log_history if "drophead_rate" in log]
    assert rates[0] > rates[1] and rates[-1] > min(rates)  # V shape: down, then up


@pytest.mark.parametrize("trainer", ["budget", "stock"])
def test_movement_scores_resume_from_a_checkpoint_moved_elsewhere(tmp_path, caplog, trainer):
    import shutil

    from safetensors.torch import load_file
    from transformers import Trainer

    from tlc_hf import BudgetTrainer
    from tlc_hf.compression.movement.callback import SCORES_NAME

    settings = dict(sparsity=0.6, start=0.0, end=1.0, update_every=2)
    train_tiny(
        tiny_model("bert"),
        _data("bert"),
        tmp_path / "o",
        [MovementPruningCallback(**settings)],
        steps=4,
        save_strategy="steps",
        save_steps=4,
    )
    moved = tmp_path / "kept" / "checkpoint-4"
    shutil.move(tmp_path / "o" / "checkpoint-4", moved)
    saved = load_file(moved / SCORES_NAME)
    pruner = MovementPruningCallback(**settings)
    args = TrainingArguments(
        output_dir=str(tmp_path / "o"),
        max_steps=5,
        per_device_train_batch_size=8,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
    )
    resumed = (BudgetTrainer if trainer == "budget" else Trainer)(
        model=tiny_model("bert"), args=args, train_dataset=_data("bert"), callbacks=[pruner]
    )
    seen = {}
    begin = pruner.on_train_begin

    def on_train_begin(*args, **kwargs):  # the scores as resuming left them
        result = begin(*args, **kwargs)
        seen.update({name: score.clone() for name, score in pruner.scores.items()})
        return result

    pruner.on_train_begin = on_train_begin
    with caplog.at_level("WARNING", logger="tlc_hf.compression.masks"):
        resumed.train(resume_from_checkpoint=str(moved))
    if trainer == "budget":  # BudgetTrainer tells its callbacks where it resumed from: the scores come back
        assert set(seen) == set(saved) and all(torch.equal(seen[n], saved[n]) for n in saved)
        assert "restart at zero" not in caplog.text
    else:  # a stock Trainer does not say: the callback cannot find them, and says so instead of going on silently
        assert all(not s.any() for s in seen.values())
        assert "resumed at step 4 without movement scores" in caplog.text and "resume_from_checkpoint" in caplog.text


@pytest.mark.parametrize("method", ["drophead", "quant_noise"])
def test_seeded_generator_resumes_where_it_stopped(tmp_path, method):
    """A seeded DropHead / Quant-Noise run resumed from checkpoint-2 of 4 in a new Trainer draws what the
    uninterrupted run drew (its generator's state comes back from the checkpoint): the same final weights."""
    from transformers import Trainer

    from tlc_hf import QuantNoiseCallback
    from tlc_hf.compression.generators import generator_file

    def callback():
        if method == "drophead":
            return DropHeadCallback(rate=0.5, seed=7)
        return QuantNoiseCallback(noise_rate=0.5, bits=4, start=0.0, end=0.0, seed=7)

    whole = train_tiny(
        tiny_model("bert"), _data("bert"), tmp_path / "o", [callback()], steps=4, save_strategy="steps", save_steps=2
    )
    checkpoint = tmp_path / "o" / "checkpoint-2"
    assert (checkpoint / generator_file(method)).exists()
    args = TrainingArguments(
        output_dir=str(tmp_path / "o"),
        max_steps=4,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
    )
    resumed = Trainer(model=tiny_model("bert").train(), args=args, train_dataset=_data("bert"), callbacks=[callback()])
    resumed.train(resume_from_checkpoint=str(checkpoint))
    expected, got = whole.model.state_dict(), resumed.model.state_dict()
    worst = max((expected[k].float() - got[k].float()).abs().max().item() for k in expected)
    assert worst == 0.0, worst
