"""The contract every compression method and every allowed pair keeps, on tiny BERT, RoBERTa, T5 and mT5:
compress -> save by each Hugging Face path -> load by each path -> identical outputs, with the expected
parameter count, sparsity and bits (peft's tests/test_custom_models.py pattern: a new method is one row).
"""

import json
import logging

import pytest
import torch
from transformers import (
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    Trainer,
    TrainingArguments,
)

from tlc_hf import (
    CompressionRecipe,
    DistillationConfig,
    DistillationTrainer,
    MovementPruningCallback,
    QATCallback,
    QuantizationConfig,
    StructuredPruningCallback,
    compression_history,
    load_compressed,
    prune_depth_,
    prune_magnitude_,
    prune_structured_,
    quantize,
    save_compressed,
)
from tlc_hf.compression import DropHeadCallback, MagnitudePruningCallback, OnnxModel, get_method, registered_methods
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

logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

AUTO = {"bert": AutoModelForMaskedLM, "roberta": AutoModelForMaskedLM}


def _auto(model):
    if getattr(model.config, "is_encoder_decoder", False):
        return AutoModelForSeq2SeqLM
    return (
        AutoModelForSequenceClassification
        if model.config.num_labels and "Classification" in type(model).__name__
        else AutoModelForMaskedLM
    )


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


# ---- every method alone, and the allowed pairs: (name, families, compress(model, family, tmp) -> model) ------
def _structured(model, family, tmp):
    prune_structured_(model, heads=0.5, ffn=0.5)
    return model


def _depth(model, family, tmp):
    prune_depth_(model, layers=0.5)
    return model


def _magnitude(model, family, tmp):
    prune_magnitude_(model, 0.6)
    return model


def _movement(model, family, tmp):
    _train(model, family, [MovementPruningCallback(sparsity=0.6, start=0.0, end=0.5, update_every=2)], tmp)
    return model.eval()


def _structured_callback(model, family, tmp):
    _train(model, family, [StructuredPruningCallback(heads=0.5, ffn=0.5, start=0.0, end=0.5, steps=2)], tmp)
    return model.eval()


def _qat(model, family, tmp):
    _train(model, family, [QATCallback(QuantizationConfig(backend="simulated", qat=True, start=0.2))], tmp)
    return model.eval()


def _drophead(model, family, tmp):
    _train(model, family, [DropHeadCallback(rate=0.2, seed=0)], tmp)
    return model.eval()


def _quantized(backend, bits=8):
    def compress(model, family, tmp):
        return quantize(model, backend=backend, bits=bits)

    return compress


def _openvino(model, family, tmp):
    """OpenVINO static int8, calibrated on random ids (a tiny model has no tokenizer)."""
    pytest.importorskip("openvino")
    calibration = [{k: v.numpy() for k, v in random_batch(family, seed=seed).items()} for seed in range(4)]
    return quantize(model, backend="openvino", calibration=calibration)


def _then(*steps):
    def compress(model, family, tmp):
        for step in steps:
            model = step(model, family, tmp)
        return model

    return compress


def _kd_structured_qat(model, family, tmp):
    teacher = tiny_model(family, seed=1)
    labels = "decoder" if family in SEQ2SEQ_FAMILIES else "tokens"
    args = TrainingArguments(
        output_dir=str(tmp / "kd"),
        max_steps=8,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
    )
    callbacks = [
        StructuredPruningCallback(heads=0.5, ffn=0.5, start=0.0, end=0.4, steps=2),
        QATCallback(QuantizationConfig(backend="simulated", qat=True, start=0.5)),
    ]
    DistillationTrainer(
        model=model.train(),
        teacher_model=teacher,
        distillation=DistillationConfig(),
        args=args,
        train_dataset=toy_dataset(family, labels=labels),
        callbacks=callbacks,
    ).train()
    return model.eval()


ALL, ENC = TINY_FAMILIES, ENCODER_FAMILIES
CASES = {
    "structured": (ALL, _structured),
    "depth": (ALL, _depth),
    "depth+structured+torchao": (ALL, _then(_depth, _structured, _quantized("torchao"))),
    "depth+structured+onnx": (ENC, _then(_depth, _structured, _quantized("onnxruntime"))),
    "structured-callback": (ALL, _structured_callback),
    "magnitude": (ALL, _magnitude),
    "movement": (ALL, _movement),
    "qat-simulated": (ALL, _qat),
    "drophead": (("bert", "t5"), _drophead),
    "torchao": (ALL, _quantized("torchao")),
    "bnb8": (ALL, _quantized("bitsandbytes", 8)),
    "onnx": (ENC, _quantized("onnxruntime")),
    "openvino": (ENC, _openvino),
    "structured+openvino": (ENC, _then(_structured, _openvino)),
    "structured+torchao": (ALL, _then(_structured, _quantized("torchao"))),
    "structured+bnb8": (ALL, _then(_structured, _quantized("bitsandbytes", 8))),
    "structured+bnb4": (ALL, _then(_structured, _quantized("bitsandbytes", 4))),
    "structured+onnx": (ENC, _then(_structured, _quantized("onnxruntime"))),
    "magnitude+torchao": (ALL, _then(_magnitude, _quantized("torchao"))),
    "movement+bnb8": (("bert", "t5"), _then(_movement, _quantized("bitsandbytes", 8))),
    "structured+magnitude": (ALL, _then(_structured, _magnitude)),
    "qat+structured": (ALL, _then(_structured_callback, _qat)),
    "kd+structured+qat": (ALL, _kd_structured_qat),
}
MATRIX = [(name, family) for name, (families, _) in CASES.items() for family in families]


def _outputs(model, family):
    batch = random_batch(family)
    with torch.no_grad():
        return model(**batch).logits


def _expected_methods(name):
    return {
        "structured-callback": ["structured"],
        "qat-simulated": ["quantization"],
        "torchao": ["quantization"],
        "bnb8": ["quantization"],
        "onnx": ["quantization"],
        "openvino": ["quantization"],
        "qat+structured": ["structured", "quantization"],
        "kd+structured+qat": ["structured", "quantization"],
    }.get(
        name,
        [
            part.split("-")[0]
            .replace("bnb8", "quantization")
            .replace("bnb4", "quantization")
            .replace("torchao", "quantization")
            .replace("onnx", "quantization")
            .replace("openvino", "quantization")
            for part in name.split("+")
        ],
    )


@pytest.mark.parametrize(("name", "family"), MATRIX, ids=[f"{n}-{f}" for n, f in MATRIX])
def test_every_method_round_trips_every_save_and_load_path(tmp_path, name, family):
    torch.manual_seed(0)
    model = CASES[name][1](tiny_model(family), family, tmp_path)
    expected = _outputs(model, family)
    counts = parameter_counts(model)
    assert [r["method"] for r in compression_history(model)] == _expected_methods(name)
    onnx = isinstance(model, OnnxModel)
    quantized = getattr(model, "hf_quantizer", None) is not None

    saves = {"save_compressed": lambda d: save_compressed(model, d), "save_pretrained": model.save_pretrained}
    if not onnx and not quantized:
        saves["sparse"] = lambda d: save_compressed(model, d, storage="sparse")
        saves["trainer.save_model"] = lambda d: Trainer(
            model=model, args=TrainingArguments(output_dir=str(tmp_path / "t"), report_to="none", use_cpu=True)
        ).save_model(d)
    for how, save in saves.items():
        directory = str(tmp_path / how)
        save(directory)
        with open(f"{directory}/config.json") as f:
            config = json.load(f)
        assert [r["method"] for r in config["tlc_compression"]["methods"]] == _expected_methods(name), how
        loaders = {  # plain transformers, after `import tlc_hf` (an ONNX export comes back as its OnnxModelFor*)
            "load_compressed": load_compressed,
            "from_pretrained": lambda d: _auto(model).from_pretrained(d, device_map="cpu").eval(),
        }
        for loader_name, load in loaders.items():
            loaded = load(directory)
            torch.testing.assert_close(
                _outputs(loaded, family), expected, atol=1e-5, rtol=0, msg=f"{how} -> {loader_name}"
            )
            assert isinstance(loaded, OnnxModel) is onnx, (how, loader_name)
            if not onnx:
                again = parameter_counts(loaded)
                assert again["params_total"] == counts["params_total"], (how, loader_name)
                assert again["params_nonzero"] == counts["params_nonzero"], (how, loader_name)
                assert again["bits"] == counts["bits"], (how, loader_name)


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
    covered = {method for name in CASES for method in _expected_methods(name)} | {"distillation"}
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
