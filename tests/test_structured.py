"""Structured pruning: heads and FFN neurons physically removed, reload with the same outputs."""

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSeq2SeqLM

from tlc_hf import StructuredPruningConfig, compression_history, load_compressed, prune_structured_, save_compressed
from tlc_hf.compression.structured.units import model_units
from tlc_hf.testing import SEQ2SEQ_FAMILIES, TINY_FAMILIES, random_batch, tiny_model, toy_dataset


def four_head_model(family, task=None):
    if family in SEQ2SEQ_FAMILIES:
        return tiny_model(family, task, num_heads=4, d_kv=8)
    return tiny_model(family, task, num_attention_heads=4)


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("uniform", [False, True])
def test_half_heads_half_ffn_save_reload_same_outputs(tmp_path, family, uniform):
    model = four_head_model(family)
    batch = random_batch(family)
    params_before = sum(p.numel() for p in model.parameters())
    heads_before = sum(u.original_heads for u in model_units(model)[0])
    report = prune_structured_(model, heads=0.5, ffn=0.5, uniform=uniform)
    expected = model(**batch).logits
    assert report["params_after"] < params_before == report["params_before"]
    assert sum(p.numel() for p in model.parameters()) == report["params_after"]
    assert sum(report["heads_per_layer"]) == heads_before // 2
    assert all(h >= 1 for h in report["heads_per_layer"]) and all(n >= 1 for n in report["ffn_per_layer"])
    save_compressed(model, tmp_path / "pruned")
    loaded = load_compressed(str(tmp_path / "pruned"))
    assert torch.allclose(loaded(**batch).logits, expected, atol=1e-5)
    assert sum(p.numel() for p in loaded.parameters()) == report["params_after"]


@pytest.mark.parametrize("family", SEQ2SEQ_FAMILIES)
def test_uniform_t5_cuts_reload_natively(tmp_path, family):
    model = four_head_model(family)
    batch = random_batch(family)
    report = prune_structured_(model, heads=0.5, ffn=0.5, uniform=True)
    assert report["native"] and model.config.num_heads == 2
    model.save_pretrained(tmp_path / "plain")
    plain = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "plain").eval()
    assert torch.allclose(plain(**batch).logits, model(**batch).logits, atol=1e-5)


def test_uniform_bert_ffn_cut_reloads_natively(tmp_path):
    model = tiny_model("bert")
    batch = random_batch("bert")
    report = prune_structured_(model, heads=0.0, ffn=0.5, uniform=True)
    assert report["native"] and model.config.intermediate_size == 64
    model.save_pretrained(tmp_path / "plain")
    plain = AutoModelForMaskedLM.from_pretrained(tmp_path / "plain").eval()
    assert torch.allclose(plain(**batch).logits, model(**batch).logits, atol=1e-5)


def test_uneven_heads_differ_per_layer_and_t5_keeps_position_bias_right():
    model = four_head_model("t5")
    with torch.no_grad():  # make encoder layer 0's heads clearly more important than layer 1's
        model.encoder.block[0].layer[0].SelfAttention.o.weight.mul_(10)
    report = prune_structured_(model, heads=0.5, ffn=0.0)
    assert len(set(report["heads_per_layer"])) > 1
    batch = random_batch("t5")
    out = model(**batch).logits
    assert torch.isfinite(out).all()
    generated = model.generate(batch["input_ids"], max_new_tokens=4, do_sample=False)
    assert generated.shape[1] >= 2


def test_gradient_importance_uses_batches():
    model = four_head_model("bert", "classification")
    batch = random_batch("bert", batch_size=8)
    batches = [{**batch, "labels": torch.tensor([0, 1] * 4)}] * 3
    report = prune_structured_(model, heads=0.5, ffn=0.25, importance="gradient", dataloader=batches, num_batches=2)
    assert sum(report["heads_per_layer"]) == 4
    with pytest.raises(ValueError, match="importance='gradient' needs dataloader"):
        prune_structured_(four_head_model("bert"), importance="gradient")


def test_pruned_model_is_smaller_on_disk(tmp_path):
    model = four_head_model("bert")
    save_compressed(model, tmp_path / "dense")
    prune_structured_(model, heads=0.5, ffn=0.5)
    save_compressed(model, tmp_path / "pruned")
    size = lambda d: (d / "model.safetensors").stat().st_size  # noqa: E731
    assert size(tmp_path / "pruned") < size(tmp_path / "dense")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(heads=1.0), "heads=1.0 would remove every head"),
        (dict(ffn=1.0), "ffn=1.0 would remove every neuron"),
        (dict(heads=1.5), "heads=1.5 must be a number in \\[0, 1\\)"),
        (dict(importance="random"), "importance='random' is not allowed"),
    ],
)
def test_bad_structured_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StructuredPruningConfig(**kwargs)


def test_unsupported_model_type():
    from transformers import GPT2Config, GPT2LMHeadModel

    with pytest.raises(ValueError, match="model_type='gpt2' has no structured-pruning rule"):
        prune_structured_(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)))


def _toy_classification(n=48):
    return toy_dataset("bert", n, seed=2)


@pytest.mark.parametrize("importance", ["magnitude", "gradient"])
def test_scheduled_structured_callback_masks_then_removes(tmp_path, importance):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from tlc_hf.compression.structured import StructuredPruningCallback

    pruner = StructuredPruningCallback(heads=0.5, ffn=0.5, start=0.0, end=0.6, steps=3, importance=importance)
    seen = []

    class Watch(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            o = model.bert.encoder.layer[0].attention.output.dense.weight
            seen.append(int((o.abs().sum(dim=0) == 0).sum()))  # zeroed input columns = masked head dims

    model = four_head_model("bert", "classification").train()
    params_before = sum(p.numel() for p in model.parameters())
    args = TrainingArguments(
        output_dir=str(tmp_path / "o"),
        max_steps=20,
        per_device_train_batch_size=8,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
        logging_steps=5,
    )
    trainer = Trainer(model=model, args=args, train_dataset=_toy_classification(), callbacks=[pruner, Watch()])
    trainer.train()
    assert pruner.rounds_done == 3
    assert seen[0] == 0 and max(seen) > 0 and seen == sorted(seen)  # masked progressively, never revived
    assert sum(p.numel() for p in model.parameters()) < params_before  # physically removed at the end
    record = compression_history(model)[-1]
    assert record["method"] == "structured" and record["layout"]["linear_shapes"]
    fractions = [log["structured_fraction"] for log in trainer.state.log_history if "structured_fraction" in log]
    assert fractions[-1] == 1.0
    model.eval()
    save_compressed(model, tmp_path / "saved")
    batch = random_batch("bert")
    assert torch.allclose(load_compressed(str(tmp_path / "saved"))(**batch).logits, model(**batch).logits, atol=1e-5)


@pytest.mark.parametrize("family", SEQ2SEQ_FAMILIES)
def test_native_t5_cut_gives_attention_its_own_class_back(family):
    """mT5's attention is a copy of T5Attention, not a subclass: un-pruning restores MT5Attention, not T5's."""
    model = four_head_model(family)
    before = {name: type(m) for name, m in model.named_modules() if hasattr(m, "key_value_proj_dim")}
    batch = random_batch(family)
    report = prune_structured_(model, heads=0.5, ffn=0.5, uniform=True)
    after = {name: type(m) for name, m in model.named_modules() if name in before}
    assert report["native"] and after == before
    assert {cls.__name__ for cls in after.values()} == {"MT5Attention" if family == "mt5" else "T5Attention"}
    assert model(**batch).logits.shape[-1] == model.config.vocab_size
