"""Distillation (classification, MLM, T5 seq2seq) and CompressionRecipe (YAML/JSON, validation, end to end)."""

import json
import logging

import pytest
import torch
from transformers import TrainerCallback

from tlc_hf import (
    BudgetSeq2SeqTrainingArguments,
    BudgetTrainingArguments,
    CompressionRecipe,
    DistillationConfig,
    DistillationSeq2SeqTrainer,
    DistillationTrainer,
    compression_history,
    load_compressed,
    run_recipe,
    save_compressed,
)
from tlc_hf.compression import MagnitudePruningConfig, QuantizationConfig
from tlc_hf.testing import random_batch, tiny_model, toy_dataset
from tlc_hf.training.distillation import kd_loss

logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

RECIPE_YAML = """
version: 1
name: kd-prune-qat
budget: 4s
distillation: {alpha: 0.5, temperature: 2.0}
methods:
  - {method: magnitude, sparsity: 0.5, start: 0.1, end: 0.6, ramp: linear, update_every: 2}
  - {method: quantization, backend: torchao, weight_only: true, qat: true, start: 0.5}
training: {learning_rate: 0.001, per_device_train_batch_size: 16}
"""


def test_recipe_round_trips_through_yaml_and_json(tmp_path):
    recipe = CompressionRecipe.from_yaml(RECIPE_YAML)
    assert [m.method for m in recipe.methods] == ["magnitude", "quantization"]
    assert isinstance(recipe.methods[0], MagnitudePruningConfig) and recipe.methods[1].qat is True
    assert recipe.distillation.temperature == 2.0 and recipe.needs_training
    assert CompressionRecipe.from_json(recipe.to_json()).to_dict() == recipe.to_dict()
    assert CompressionRecipe.from_yaml(recipe.to_yaml()).to_dict() == recipe.to_dict()
    for name in ("r.yaml", "r.json"):
        recipe.save(tmp_path / name)
        assert CompressionRecipe.load(tmp_path / name).to_dict() == recipe.to_dict()


@pytest.mark.parametrize(
    "text, message",
    [
        ("methods: [{method: prune_everything}]", "method='prune_everything' is not known; choose one of"),
        ("methods: [{method: magnitude, sparsity: 0.5, sparcity: 0.5}]", "fields \\['sparcity'\\] are not known"),
        ("methods: [{method: magnitude, sparsity: 1.5}]", "sparsity=1.5"),
        ("budjet: 2m", "recipe fields \\['budjet'\\] are not known"),
        ("budget: soon", "budget='soon' is not a duration"),
        ("training: {learning_rat: 0.1}", "training fields \\['learning_rat'\\] are not TrainingArguments fields"),
        ("distillation: {alpha: 2}", "alpha=2"),
        ("version: 9", "recipe version=9 is newer"),
    ],
)
def test_recipe_validation_names_the_bad_field(text, message):
    with pytest.raises(ValueError, match=message):
        CompressionRecipe.from_yaml(text)


def test_kd_loss_matches_its_formula():
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    t = 2.0
    expected = (
        torch.nn.functional.kl_div(
            torch.log_softmax(student / t, -1), torch.softmax(teacher / t, -1), reduction="batchmean"
        )
        * t
        * t
    )
    assert kd_loss(student, teacher, torch.zeros(4, dtype=torch.long), t) == pytest.approx(expected.item(), rel=1e-5)
    assert kd_loss(teacher, teacher, None, t).item() == pytest.approx(0.0, abs=1e-6)
    tokens = torch.randn(2, 5, 7)
    labels = torch.full((2, 5), -100)
    labels[0, 1] = 3
    assert kd_loss(tokens, tokens + 1.0, labels, 1.0).item() == pytest.approx(0.0, abs=1e-5)  # shift-invariant


def _classification_data(n=64):
    return toy_dataset("bert", n, seed=5)


def test_distillation_with_hidden_states_and_a_wider_teacher(tmp_path):
    student = tiny_model("roberta", "classification")  # hidden 32, 2 layers
    teacher = tiny_model("roberta", "classification", hidden_size=64, num_hidden_layers=4, seed=1)
    args = BudgetTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=8,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
    )
    trainer = DistillationTrainer(
        model=student.train(),
        args=args,
        train_dataset=_classification_data(),
        teacher_model=teacher,
        distillation=DistillationConfig(alpha=0.3, hidden_weight=1.0),
    )
    before = [p.clone() for p in trainer.projections.parameters()]
    teacher_before = [p.clone() for p in teacher.parameters()]
    trainer.train()
    assert trainer.layer_map == [[1, 2], [2, 4]]
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.projections.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, teacher.parameters(), strict=True))  # frozen
    assert not teacher.training


def test_hidden_state_projections_resume_with_the_checkpoint(tmp_path, caplog):
    import os

    from tlc_hf.compression.distillation.trainer import PROJECTIONS_NAME

    teacher = tiny_model("roberta", "classification", hidden_size=64, num_hidden_layers=4, seed=1)

    def trainer_for(student_seed):
        args = BudgetTrainingArguments(
            output_dir=str(tmp_path),
            max_steps=4,
            per_device_train_batch_size=8,
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            save_strategy="steps",
            save_steps=2,
            seed=0,
        )
        torch.manual_seed(student_seed)  # the projections' fresh initialisation differs with it
        student = tiny_model("roberta", "classification", seed=student_seed).train()
        return DistillationTrainer(
            model=student,
            args=args,
            train_dataset=_classification_data(),
            teacher_model=teacher,
            distillation=DistillationConfig(alpha=0.3, hidden_weight=1.0),
        )

    whole = trainer_for(0)
    whole.train()
    assert (tmp_path / "checkpoint-2" / PROJECTIONS_NAME).exists()
    resumed = trainer_for(7)  # other student weights and projections: both must come from the checkpoint
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    for a, b in zip(whole.projections.parameters(), resumed.projections.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    for a, b in zip(whole.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    os.remove(tmp_path / "checkpoint-2" / PROJECTIONS_NAME)  # an older checkpoint: said, not silent
    with caplog.at_level("WARNING", logger="tlc_hf.compression.distillation.trainer"):
        trainer_for(7).train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert "without the hidden-state projections" in caplog.text


def test_learned_projections_refuse_the_trainers_deepspeed_path(tmp_path):
    args = BudgetTrainingArguments(output_dir=str(tmp_path), max_steps=2, report_to="none", use_cpu=True)
    args.deepspeed = "ds_config.json"  # what --deepspeed sets (accelerate runs DeepSpeed only on accelerators)
    teacher = tiny_model("roberta", "classification", hidden_size=64, num_hidden_layers=4, seed=1)
    with pytest.raises(ValueError, match=r"hidden_weight > 0 under deepspeed: .*projections.*FSDP2") as err:
        DistillationTrainer(
            model=tiny_model("roberta", "classification"),
            args=args,
            train_dataset=_classification_data(16),
            teacher_model=teacher,
            distillation=DistillationConfig(hidden_weight=1.0),
        )
    assert "\n" not in str(err.value)


def test_teacher_cache_skips_repeated_forward_passes(tmp_path):
    teacher = tiny_model("bert", "classification", seed=2)
    calls = []
    teacher.register_forward_hook(lambda *a: calls.append(1))
    args = BudgetTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=8,
        per_device_train_batch_size=16,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
    )
    trainer = DistillationTrainer(
        model=tiny_model("bert", "classification").train(),
        args=args,
        train_dataset=_classification_data(32),
        teacher_model=teacher,
        distillation=DistillationConfig(cache_teacher=True),
    )
    trainer.train()
    assert len(calls) == 2  # 32 distinct examples, batches of 16: the teacher ran for the first epoch only


def test_t5_seq2seq_distillation_runs(tmp_path):
    student, teacher = tiny_model("t5"), tiny_model("t5", hidden_size=64, seed=3)
    batch = random_batch("t5", batch_size=32, seq_len=8, seed=6)
    data = [
        {"input_ids": i, "attention_mask": m, "labels": d}
        for i, m, d in zip(batch["input_ids"], batch["attention_mask"], batch["decoder_input_ids"], strict=True)
    ]

    class LossWatch(TrainerCallback):
        losses = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(logs["loss"])

    args = BudgetSeq2SeqTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=12,
        per_device_train_batch_size=8,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
        logging_steps=2,
        learning_rate=3e-3,
    )
    trainer = DistillationSeq2SeqTrainer(
        model=student.train(),
        args=args,
        train_dataset=data,
        teacher_model=teacher,
        distillation=DistillationConfig(alpha=0.5, temperature=1.0),
        callbacks=[LossWatch()],
    )
    trainer.train()
    assert trainer.state.global_step == 12 and LossWatch.losses[-1] < LossWatch.losses[0]


def test_recipe_kd_pruning_qat_end_to_end(tmp_path, small_corpus):
    from tlc_hf.data import train_tokenizer

    tokenizer = train_tokenizer("roberta", 400, small_corpus)
    common = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    student = tiny_model("roberta", "classification", **common)
    save_compressed(student, tmp_path / "student", tokenizer)
    from tlc_hf.compression import find_targets

    target_share = sum(m.weight.numel() for m in find_targets(student).values()) / sum(
        p.numel() for p in student.parameters()
    )
    save_compressed(
        tiny_model("roberta", "classification", hidden_size=64, seed=4, **common), tmp_path / "teacher", tokenizer
    )
    recipe = CompressionRecipe.from_yaml(RECIPE_YAML)
    report = run_recipe(
        recipe,
        str(tmp_path / "student"),
        str(tmp_path / "out"),
        teacher_dir=str(tmp_path / "teacher"),
        corpus=small_corpus,
    )
    compressed = report["compressed"]
    assert compressed["bits"] == 8 and 0 <= compressed["metrics"]["accuracy"] <= 1
    # 50% of the block weights are zero; embeddings and head stay dense. The baseline's own zeros
    # (zero-initialized biases) mostly become nonzero in fine-tuning, so they bound from above only.
    pruned = 0.5 * target_share
    assert pruned - 1e-3 <= compressed["sparsity"] <= pruned + report["baseline"]["sparsity"]
    assert report["baseline"]["sparsity"] < 0.05 and report["baseline"]["bits"] == 32  # zero-init biases
    methods = [m["method"] for m in report["methods"]]
    assert methods == ["magnitude", "quantization", "distillation", "quantization"]  # QAT, KD (training), convert
    saved = json.loads((tmp_path / "out" / "config.json").read_text())["tlc_compression"]
    assert CompressionRecipe.from_dict(saved["recipe"]).to_dict() == recipe.to_dict()
    assert (tmp_path / "out" / "README.md").exists()
    model = load_compressed(str(tmp_path / "out"))
    ids = tokenizer(["a fine film"], return_tensors="pt")
    assert model(**ids).logits.shape == (1, 2)


def test_recipe_errors_before_work(tmp_path):
    recipe = CompressionRecipe.from_yaml(RECIPE_YAML)
    save_compressed(tiny_model("bert", "classification"), tmp_path / "m")
    with pytest.raises(ValueError, match="pass teacher_dir"):
        run_recipe(recipe, str(tmp_path / "m"), str(tmp_path / "out"))
    with pytest.raises(ValueError, match="give it a budget"):
        run_recipe(
            CompressionRecipe(methods=[QuantizationConfig(backend="torchao", qat=True)]),
            str(tmp_path / "m"),
            str(tmp_path / "out"),
            corpus={"unused": None},
        )
    one_shot = run_recipe(
        CompressionRecipe(
            methods=[MagnitudePruningConfig(sparsity=0.5), QuantizationConfig(backend="simulated", bits=4)]
        ),
        str(tmp_path / "m"),
        str(tmp_path / "one"),
        report=False,
        corpus={"unused": None},
    )
    assert one_shot == {"output_dir": str(tmp_path / "one")}
    assert [m["method"] for m in compression_history(load_compressed(str(tmp_path / "one")))] == [
        "magnitude",
        "quantization",
    ]
    assert not (tmp_path / "out").exists()


@pytest.fixture
def student_dir(tmp_path, small_corpus):
    from tlc_hf.data import train_tokenizer

    tokenizer = train_tokenizer("roberta", 400, small_corpus)
    model = tiny_model("roberta", "classification", vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    save_compressed(model, tmp_path / "student", tokenizer)
    return tmp_path / "student", tokenizer


def test_lora_recovery_merges_and_keeps_sparsity(tmp_path, student_dir, small_corpus):
    from tlc_hf.compression import find_targets

    recipe = CompressionRecipe.from_yaml("""
methods: [{method: magnitude, sparsity: 0.5}]
lora: {r: 4, alpha: 8, budget: 2s}
""")
    assert CompressionRecipe.from_yaml(recipe.to_yaml()).to_dict() == recipe.to_dict()
    assert recipe.lora.r == 4 and recipe.to_dict()["lora"]["budget"] == "2s"
    run_recipe(recipe, str(student_dir[0]), str(tmp_path / "out"), corpus=small_corpus, report=False)
    model = load_compressed(str(tmp_path / "out"))
    assert type(model).__name__ == "RobertaForSequenceClassification"  # merged: no peft wrapper
    for module in find_targets(model).values():
        assert (module.weight == 0).float().mean().item() == pytest.approx(0.5, abs=0.01)
    assert [m["method"] for m in compression_history(model)] == ["magnitude", "lora_recovery"]
    assert compression_history(model)[-1]["merged"] is True


def test_lora_recovery_on_quantized_weights_keeps_an_adapter(tmp_path, student_dir, small_corpus):
    recipe = CompressionRecipe.from_yaml("""
methods: [{method: quantization, backend: torchao, weight_only: true}]
lora: {r: 4, budget: 2s}
""")
    run_recipe(recipe, str(student_dir[0]), str(tmp_path / "out"), corpus=small_corpus, report=False)
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").exists()
    model = load_compressed(str(tmp_path / "out"))
    assert type(model).__name__ == "PeftModel"
    ids = student_dir[1](["a fine film"], return_tensors="pt")
    with_adapter = model(**ids).logits
    with model.disable_adapter():
        without = model(**ids).logits
    assert not torch.allclose(with_adapter, without, atol=1e-6)  # the trained adapter is applied
    assert (
        compression_history(model)[-1]["method"] == "lora_recovery"
        and compression_history(model)[-1]["merged"] is False
    )
