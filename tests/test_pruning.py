"""Unstructured pruning: one-shot magnitude (vs torch.nn.utils.prune), gradual, storage, reload."""

import copy
import json
import os

import pytest
import torch
from torch.nn.utils import prune as torch_prune
from transformers import AutoModelForMaskedLM, AutoModelForSeq2SeqLM, Trainer, TrainerCallback

from tlc_hf import (
    BudgetTrainer,
    BudgetTrainingArguments,
    MagnitudePruningCallback,
    MagnitudePruningConfig,
    compression_history,
    load_compressed,
    prune_magnitude_,
    save_compressed,
    sparsity_report,
)
from tlc_hf.budget import clock as clock_module
from tlc_hf.compression import CompressionConfig, find_targets, ramp_value
from tlc_hf.compression.masks import get_mask
from tlc_hf.compression.storage import load_sparse_state_dict, save_sparse_state_dict
from tlc_hf.testing import TINY_FAMILIES, random_batch, tiny_model, toy_dataset, train_tiny

_AUTO = {
    "bert": AutoModelForMaskedLM,
    "roberta": AutoModelForMaskedLM,
    "t5": AutoModelForSeq2SeqLM,
    "mt5": AutoModelForSeq2SeqLM,
}


def _break_ties(model):
    """Distinct magnitudes, so masks are unique ("ties aside")."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 1e-4)
    return model


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_one_shot_local_equals_torch_l1_unstructured(family):
    model = _break_ties(tiny_model(family))
    reference = copy.deepcopy(model)
    embedding_before = model.get_input_embeddings().weight.clone()
    report = prune_magnitude_(model, 0.6)
    expected = find_targets(reference)
    for module in expected.values():
        torch_prune.l1_unstructured(module, "weight", amount=0.6)
    ours = find_targets(model)
    assert set(ours) == set(expected)
    for name, module in expected.items():
        assert torch.equal(ours[name].weight, module.weight), name
    assert torch.equal(model.get_input_embeddings().weight, embedding_before)  # untouched by default
    assert report["target_sparsity"] == pytest.approx(0.6, abs=1e-3)


@pytest.mark.parametrize("family", ["bert", "t5"])
def test_one_shot_global_equals_torch_global_unstructured(family):
    model = _break_ties(tiny_model(family))
    reference = copy.deepcopy(model)
    prune_magnitude_(model, 0.7, scope="global")
    expected = find_targets(reference)
    torch_prune.global_unstructured(
        [(m, "weight") for m in expected.values()], pruning_method=torch_prune.L1Unstructured, amount=0.7
    )
    ours = find_targets(model)
    for name, module in expected.items():
        assert torch.equal(ours[name].weight, module.weight), name
    per_module = sparsity_report(model, ours)["per_module"]
    assert len({round(v, 2) for v in per_module.values()}) > 1  # one threshold, uneven per module


def test_default_targets_are_block_linears_only():
    bert = find_targets(tiny_model("bert", "classification"))
    assert all(".layer." in name for name in bert) and len(bert) == 2 * 6
    t5 = find_targets(tiny_model("mt5"))
    assert all(".block." in name for name in t5)
    assert not any("relative_attention_bias" in name for name in t5)
    with_head = find_targets(tiny_model("bert", "classification"), include_head=True)
    assert "classifier" in with_head and "bert.pooler.dense" in with_head
    with_embeddings = find_targets(tiny_model("bert"), include_embeddings=True)
    assert "bert.embeddings.word_embeddings" in with_embeddings


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sparsity=1.0), "sparsity=1.0 must be a number in \\[0, 1\\)"),
        (dict(sparsity=-0.1), "sparsity=-0.1"),
        (dict(scope="layer"), "scope='layer' is not allowed; choose one of \\('local', 'global'\\)"),
        (dict(ramp="exp"), "ramp='exp'"),
        (dict(start=0.5, end=0.2), "end=0.2 must be >= start=0.5"),
        (dict(update_every=0), "update_every=0"),
    ],
)
def test_bad_config_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MagnitudePruningConfig(**kwargs)


def test_bad_targets_and_model_types():
    with pytest.raises(ValueError, match="target_modules='nothing_here' matched no"):
        prune_magnitude_(tiny_model("bert"), 0.5, config=MagnitudePruningConfig(target_modules="nothing_here"))
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    with pytest.raises(ValueError, match="model_type='gpt2' has no built-in target rule"):
        prune_magnitude_(gpt2, 0.5)


def test_config_json_round_trip_and_unknown_fields():
    config = MagnitudePruningConfig(sparsity=0.8, scope="global", ramp="linear", end=0.5)
    again = CompressionConfig.from_json(config.to_json())
    assert again == config and isinstance(again, MagnitudePruningConfig)
    assert config.to_dict()["method"] == "magnitude" and "tlc_hf_version" in config.to_dict()
    with pytest.warns(UserWarning, match="ignoring unknown fields \\['from_the_future'\\]"):
        CompressionConfig.from_dict({**config.to_dict(), "from_the_future": 1})
    with pytest.raises(ValueError, match="method='os.system' is not a tlc_hf compression method"):
        CompressionConfig.from_dict({"method": "os.system"})


def test_cubic_schedule():
    assert ramp_value(0.0, 0.0, 0.8, 0.1, 0.5) == 0.0
    assert ramp_value(0.3, 0.0, 0.8, 0.1, 0.5) == pytest.approx(0.8 * (1 - 0.5**3))
    assert ramp_value(0.3, 0.0, 0.8, 0.1, 0.5, "linear") == pytest.approx(0.4)
    assert ramp_value(0.9, 0.0, 0.8, 0.1, 0.5) == 0.8


def _toy_data(n=64):
    return toy_dataset("bert", n, labels="tokens")


class ZeroWatcher(TrainerCallback):
    """After every step: weights under a mask are exactly zero."""

    def __init__(self, pruner):
        self.pruner, self.checked = pruner, 0

    def on_step_end(self, args, state, control, **kwargs):
        for module in self.pruner.targets.values():
            mask = get_mask(module)
            if mask is not None:
                assert not module.weight[~mask].any()
                self.checked += 1


def test_gradual_magnitude_reaches_target_and_stays_after_reload(tmp_path):
    pruner = MagnitudePruningCallback(sparsity=0.8, start=0.1, end=0.7, update_every=3)
    watcher = ZeroWatcher(pruner)
    model = tiny_model("bert")
    trainer = train_tiny(model, _toy_data(), tmp_path / "out", [pruner, watcher], steps=40, learning_rate=5e-3)
    assert watcher.checked > 0
    sparsities = [log["sparsity"] for log in trainer.state.log_history if "sparsity" in log]
    assert sparsities == sorted(sparsities) and sparsities[0] < 0.8  # ramps up
    report = sparsity_report(model, find_targets(model))
    assert report["target_sparsity"] == pytest.approx(0.8, abs=0.005)
    model.save_pretrained(tmp_path / "plain")
    reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path / "plain")
    assert sparsity_report(reloaded, find_targets(reloaded))["target_sparsity"] == pytest.approx(0.8, abs=0.005)
    assert compression_history(model)[-1]["method"] == "magnitude"


def test_gradual_pruning_follows_the_time_budget(tmp_path, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(clock_module, "monotonic", lambda: now[0])

    class Tick(TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            now[0] += 1.0

    pruner = MagnitudePruningCallback(sparsity=0.5, start=0.0, end=0.5, ramp="linear", update_every=1)
    args = BudgetTrainingArguments(
        output_dir=str(tmp_path / "out"),
        time_budget="20s",
        time_deadline=False,  # exactly 20 one-second steps
        per_device_train_batch_size=8,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
    )
    trainer = BudgetTrainer(
        model=tiny_model("bert").train(), args=args, train_dataset=_toy_data(), callbacks=[Tick(), pruner]
    )
    assert pruner.budget is trainer.budget_callback  # linked by BudgetTrainer
    seen = {}

    class Probe(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            seen[state.global_step] = pruner.current_sparsity

    trainer.add_callback(Probe())
    trainer.train()
    assert seen[5] == pytest.approx(0.25) and seen[10] == pytest.approx(0.5) and seen[20] == pytest.approx(0.5)


def test_step_schedule_without_limit_asks_for_the_budget(tmp_path):
    pruner = MagnitudePruningCallback(sparsity=0.5)
    args = BudgetTrainingArguments(
        output_dir=str(tmp_path / "out"),
        time_budget="5s",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
    )
    trainer = Trainer(model=tiny_model("bert"), args=args, train_dataset=_toy_data(), callbacks=[pruner])
    with pytest.raises(ValueError, match="cannot tell progress.*Pass budget="):
        trainer.train()


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("storage", ["dense", "sparse"])
def test_save_compressed_and_load_back_identical(tmp_path, family, storage):
    model = tiny_model(family)
    prune_magnitude_(model, 0.75)
    batch = random_batch(family)
    expected = model(**batch).logits
    out = tmp_path / "model"
    save_compressed(model, out, storage=storage)
    config = json.loads((out / "config.json").read_text())
    assert config["tlc_compression"]["storage"] == storage
    assert ("quantization_config" in config) == (storage == "sparse")  # sparse storage decodes on load
    loaded = load_compressed(str(out))
    assert torch.equal(loaded(**batch).logits, expected)
    plain = _AUTO[family].from_pretrained(str(out))  # plain transformers loading, after `import tlc_hf`
    assert torch.equal(plain(**batch).logits, expected)
    assert getattr(plain, "hf_quantizer", None) is None  # decoded: a plain float model again
    assert compression_history(loaded)[0]["sparsity"] == 0.75


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_sparse_storage_is_identical_and_smaller(tmp_path, sparsity):
    torch.manual_seed(0)
    weight = torch.randn(256, 512)
    weight[torch.rand_like(weight) < sparsity] = 0
    state = {"w": weight, "bias": torch.randn(256), "tied": weight}
    save_sparse_state_dict(state, str(tmp_path / "s.safetensors"))
    from safetensors.torch import save_file

    save_file({"w": weight, "bias": state["bias"]}, str(tmp_path / "d.safetensors"))
    loaded = load_sparse_state_dict(str(tmp_path / "s.safetensors"))
    assert torch.equal(loaded["w"], weight) and torch.equal(loaded["tied"], weight)
    ratio = os.path.getsize(tmp_path / "d.safetensors") / os.path.getsize(tmp_path / "s.safetensors")
    assert ratio >= {0.5: 1.7, 0.75: 2.5, 0.9: 5.0}[sparsity], ratio


def test_save_compressed_never_leaves_a_half_written_folder(tmp_path, monkeypatch):
    model = tiny_model("bert")
    prune_magnitude_(model, 0.5)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("tlc_hf.compression.loading.save_sparse_state_dict", boom)
    with pytest.raises(OSError, match="disk full"):
        save_compressed(model, tmp_path / "out", storage="sparse")
    assert not (tmp_path / "out").exists() and os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="storage='zip' is not known"):
        save_compressed(model, tmp_path / "out", storage="zip")
