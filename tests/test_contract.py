"""The contract every compression method and every allowed pair keeps, on tiny BERT, RoBERTa, T5 and mT5:
compress -> save by each Hugging Face path -> load by each path -> identical outputs, with the expected
parameter count, sparsity and bits (peft's tests/test_custom_models.py pattern: a new method is one row).
"""

import json
import logging

import pytest
import torch
from transformers import Trainer, TrainingArguments

from tlc_hf import (
    CompressionRecipe,
    DistillationConfig,
    QuantizationConfig,
    StructuredPruningCallback,
    compression_history,
)
from tlc_hf.compression import (
    CompressionContext,
    DepthPruningConfig,
    DropHeadConfig,
    MagnitudePruningCallback,
    MagnitudePruningConfig,
    MovementPruningConfig,
    StructuredPruningConfig,
    get_method,
    registered_methods,
)
from tlc_hf.evaluation.bench import parameter_counts
from tlc_hf.testing import (
    ENCODER_FAMILIES,
    SEQ2SEQ_FAMILIES,
    TINY_FAMILIES,
    random_batch,
    tiny_model,
    toy_dataset,
    train_tiny,
)
from tlc_hf.testing.contract import ContractCase, Trained, check_round_trip, compress_case

logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def _train(model, family, callbacks, tmp_path, steps=8, save_steps=None):
    labels = "decoder" if family in SEQ2SEQ_FAMILIES else "tokens"
    saving = dict(save_strategy="steps", save_steps=save_steps) if save_steps else {}
    return train_tiny(
        model,
        toy_dataset(family, labels=labels),
        tmp_path / "train",
        callbacks,
        steps=steps,
        logging_steps=4,
        **saving,
    )


def _outputs(model, family):
    batch = random_batch(family)
    with torch.no_grad():
        return model(**batch).logits


def _openvino_calibration(family):
    """OpenVINO static int8, calibrated on random ids (a tiny model has no tokenizer)."""
    pytest.importorskip("openvino")
    return CompressionContext(
        corpus=[{k: v.numpy() for k, v in random_batch(family, seed=s).items()} for s in range(4)]
    )


# ---- every method alone, and the allowed pairs, as data: (families, steps) -> one generic tester ----------
ALL, ENC = TINY_FAMILIES, ENCODER_FAMILIES
STRUCTURED = StructuredPruningConfig(heads=0.5, ffn=0.5)
DEPTH = DepthPruningConfig(layers=0.5)
MAGNITUDE = MagnitudePruningConfig(sparsity=0.6)
MOVEMENT = Trained(MovementPruningConfig(sparsity=0.6, start=0.0, end=0.5, update_every=2))
STRUCTURED_TRAINED = Trained(StructuredPruningConfig(heads=0.5, ffn=0.5, start=0.0, end=0.5, steps=2))
QAT = Trained(QuantizationConfig(backend="simulated", qat=True, start=0.2))
TORCHAO, ONNX = QuantizationConfig(backend="torchao"), QuantizationConfig(backend="onnxruntime")
BNB8, BNB4 = QuantizationConfig(backend="bitsandbytes", bits=8), QuantizationConfig(backend="bitsandbytes", bits=4)
OPENVINO = QuantizationConfig(backend="openvino")
KD_STRUCTURED_QAT = Trained(
    DistillationConfig(),
    StructuredPruningConfig(heads=0.5, ffn=0.5, start=0.0, end=0.4, steps=2),
    QuantizationConfig(backend="simulated", qat=True, start=0.5),
)
CASES = {
    "structured": ContractCase(ALL, (STRUCTURED,)),
    "depth": ContractCase(ALL, (DEPTH,)),
    "depth+structured+torchao": ContractCase(ALL, (DEPTH, STRUCTURED, TORCHAO)),
    "depth+structured+onnx": ContractCase(ENC, (DEPTH, STRUCTURED, ONNX)),
    "structured-callback": ContractCase(ALL, (STRUCTURED_TRAINED,)),
    "magnitude": ContractCase(ALL, (MAGNITUDE,)),
    "movement": ContractCase(ALL, (MOVEMENT,)),
    "qat-simulated": ContractCase(ALL, (QAT,)),
    "drophead": ContractCase(("bert", "t5"), (Trained(DropHeadConfig(rate=0.2, seed=0)),)),
    "torchao": ContractCase(ALL, (TORCHAO,)),
    "bnb8": ContractCase(ALL, (BNB8,)),
    "onnx": ContractCase(ENC, (ONNX,)),
    "openvino": ContractCase(ENC, (OPENVINO,), context=_openvino_calibration),
    "structured+openvino": ContractCase(ENC, (STRUCTURED, OPENVINO), context=_openvino_calibration),
    "structured+torchao": ContractCase(ALL, (STRUCTURED, TORCHAO)),
    "structured+bnb8": ContractCase(ALL, (STRUCTURED, BNB8)),
    "structured+bnb4": ContractCase(ALL, (STRUCTURED, BNB4)),
    "structured+onnx": ContractCase(ENC, (STRUCTURED, ONNX)),
    "magnitude+torchao": ContractCase(ALL, (MAGNITUDE, TORCHAO)),
    "movement+bnb8": ContractCase(("bert", "t5"), (MOVEMENT, BNB8)),
    "structured+magnitude": ContractCase(ALL, (STRUCTURED, MAGNITUDE)),
    "qat+structured": ContractCase(ALL, (STRUCTURED_TRAINED, QAT)),
    "kd+structured+qat": ContractCase(ALL, (KD_STRUCTURED_QAT,)),
}
MATRIX = [(name, family) for name, case in CASES.items() for family in case.families]


@pytest.mark.parametrize(("name", "family"), MATRIX, ids=[f"{n}-{f}" for n, f in MATRIX])
def test_every_method_round_trips_every_save_and_load_path(tmp_path, name, family):
    torch.manual_seed(0)
    case = CASES[name]
    check_round_trip(compress_case(case, family, tmp_path), family, case.expected_methods(), tmp_path)


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_a_mid_training_checkpoint_loads_with_from_pretrained(tmp_path, family):
    """Structured pruning masks during training; the checkpoint is the full shape with zero units, and the
    final model (units removed) reloads from the final save."""
    model = tiny_model(family)
    trainer = _train(
        model,
        family,
        [StructuredPruningCallback(heads=0.5, ffn=0.5, start=0.0, end=0.5, steps=2)],
        tmp_path,
        steps=8,
        save_steps=4,
    )
    checkpoint = tmp_path / "train" / "checkpoint-4"
    loaded = type(model).from_pretrained(checkpoint).eval()
    assert parameter_counts(loaded)["params_total"] == parameter_counts(tiny_model(family))["params_total"]
    trainer.save_model(str(tmp_path / "final"))
    final = type(model).from_pretrained(tmp_path / "final").eval()
    torch.testing.assert_close(_outputs(final, family), _outputs(model.eval(), family), atol=1e-5, rtol=0)
    assert parameter_counts(final)["params_total"] < parameter_counts(tiny_model(family))["params_total"]


def test_every_registered_method_has_a_contract_row():
    covered = {config.method for case in CASES.values() for config in case.configs}
    ours = {name for name in registered_methods() if get_method(name).config_class.__module__.startswith("tlc_hf.")}
    assert ours - covered <= {"lora_recovery", "vocabulary"}  # in test_distillation_recipes.py, test_vocabulary.py
    for name in registered_methods():
        assert get_method(name).describe is not None, name


@pytest.mark.parametrize(
    ("methods", "fragment"),
    [
        (
            [{"method": "quantization", "backend": "torchao"}, {"method": "magnitude", "sparsity": 0.5}],
            "'magnitude' cannot follow 'quantization (torchao)'",
        ),
        (
            [{"method": "quantization", "backend": "onnxruntime"}, {"method": "quantization", "backend": "torchao"}],
            "cannot follow 'quantization (onnxruntime)'",
        ),
        (
            [{"method": "quantization", "backend": "bitsandbytes"}, {"method": "structured", "heads": 0.5}],
            "'structured' cannot follow",
        ),
    ],
)
def test_pairs_that_cannot_compose_are_refused_before_training(methods, fragment):
    """One-shot recipes apply in the listed order; a trained recipe prunes while training, whatever the order."""
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        CompressionRecipe.from_dict({"methods": methods})
    if methods[1]["method"] != "quantization":
        CompressionRecipe.from_dict({"budget": "1h", "methods": methods})  # pruning runs during training


def test_allowed_orders_validate():
    CompressionRecipe.from_dict(
        {
            "budget": "1m",
            "methods": [
                {"method": "quantization", "backend": "torchao", "qat": True, "start": 0.5},
                {"method": "structured", "heads": 0.5},
                {"method": "drophead", "rate": 0.1},
            ],
            "distillation": {"alpha": 0.5},
            "lora": {"r": 4},
        }
    )


def test_load_best_model_at_end_records_the_restored_sparsity(tmp_path):
    """The best checkpoint is less sparse than the schedule's end: the record says what the model has."""
    model = tiny_model("bert")
    rows = toy_dataset("bert", labels="tokens")

    class WorseLater(MagnitudePruningCallback):  # make the first evaluation the best
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            metrics["eval_loss"] = float(state.global_step)

    args = TrainingArguments(
        output_dir=str(tmp_path / "t"),
        max_steps=12,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        eval_strategy="steps",
        eval_steps=4,
        save_strategy="steps",
        save_steps=4,
        load_best_model_at_end=True,
    )
    callback = WorseLater(sparsity=0.8, start=0.0, end=0.9, ramp="linear", update_every=1)
    Trainer(model=model.train(), args=args, train_dataset=rows, eval_dataset=rows[:8], callbacks=[callback]).train()
    record = compression_history(model)[-1]
    from tlc_hf.compression.masks import target_sparsity

    assert record["sparsity"] == pytest.approx(target_sparsity(callback.targets), abs=1e-4)
    assert record["sparsity"] < 0.8 - 0.1  # the restored checkpoint-4 was pruned less


def test_structured_callback_refuses_load_best_model_at_end(tmp_path):
    args = TrainingArguments(
        output_dir=str(tmp_path / "t"),
        max_steps=4,
        report_to="none",
        use_cpu=True,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        load_best_model_at_end=True,
    )
    rows = toy_dataset("bert", labels="tokens")
    trainer = Trainer(
        model=tiny_model("bert").train(),
        args=args,
        train_dataset=rows,
        eval_dataset=rows[:8],
        callbacks=[StructuredPruningCallback(heads=0.5)],
    )
    with pytest.raises(ValueError, match="load_best_model_at_end=True"):
        trainer.train()


@pytest.mark.parametrize("method", ["movement", "magnitude"])
def test_pruning_resumed_in_a_new_process_keeps_its_masks_and_scores(tmp_path, method):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "scripts" / "resume_worker.py"
    for extra in ([], ["--resume"]):
        command = [sys.executable, str(script), "--output_dir", str(tmp_path), "--method", method, *extra]
        subprocess.run(command, check=True, timeout=300, capture_output=True)
    first = json.loads((tmp_path / "sparsity.json").read_text())
    resumed = json.loads((tmp_path / "sparsity-resumed.json").read_text())
    assert first[-1][0] == 8 and first[-1][1] == pytest.approx(0.8, abs=0.01)
    assert resumed[0][0] == 9 and all(s == pytest.approx(0.8, abs=0.01) for _, s in resumed)
    if method == "movement":
        assert (tmp_path / "checkpoint-8" / "tlc_movement_scores.safetensors").exists()
