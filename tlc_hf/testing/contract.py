"""The compression contract as data (peft's `tests/test_custom_models.py` pattern): a row names the families
and the steps; one generic tester compresses a tiny model by the row and proves every save path and every load
path gives back the same outputs, parameter counts, bits and compression record.

A step is a config applied one-shot through `compress_`, or `Trained(...)`: configs that act during one short
fine-tuning (their callbacks; a method that supplies the trainer, like distillation, with a tiny teacher).
Adding a method = its folder + one `ContractCase` row; a method from outside tlc_hf uses the same tester.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import (
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    Trainer,
    TrainingArguments,
)

from ..compression.base import get_method
from ..compression.compress import compress_
from ..compression.context import CompressionContext
from ..compression.loading import load_compressed, save_compressed
from ..compression.quantization import OnnxModel
from ..compression.record import compression_history
from ..evaluation.bench import parameter_counts
from . import SEQ2SEQ_FAMILIES, random_batch, tiny_model, toy_dataset, train_tiny


class Trained:
    """Configs that act together during one short fine-tuning (8 steps on a toy dataset)."""

    def __init__(self, *configs):
        self.configs = configs


@dataclass(frozen=True)
class ContractCase:
    """One row: `steps` applied in order to a tiny model of each of `families`.

    Args:
        families: tiny families the row runs on ("bert", "roberta", "t5", "mt5").
        steps: configs (one-shot, `compress_`) and `Trained(...)` groups, in order.
        context: `context(family) -> CompressionContext` for the one-shot steps (e.g. calibration data).
    """

    families: tuple[str, ...]
    steps: tuple
    context: Callable[[str], CompressionContext] | None = field(default=None, compare=False)

    @property
    def configs(self) -> list:
        return [c for step in self.steps for c in (step.configs if isinstance(step, Trained) else (step,))]

    def expected_methods(self) -> list[str]:
        """The methods the compressed model records, in order (a trainer-supplying method, like distillation,
        is recorded by the recipe that runs it, not by its trainer)."""
        return [c.method for c in self.configs if get_method(c.method).trainer is None]


def compress_case(case: ContractCase, family: str, tmp_path) -> torch.nn.Module:
    """A tiny model of `family` compressed by `case`'s steps."""
    model = tiny_model(family)
    context = case.context(family) if case.context is not None else CompressionContext()
    for step in case.steps:
        if isinstance(step, Trained):
            model = _train(model, family, step.configs, tmp_path)
        else:
            model = compress_(model, step, context).model
    return model


def _train(model, family, configs, tmp_path):
    callbacks, trainer_class, extra = [], Trainer, {}
    context = CompressionContext(teacher=tiny_model(family, seed=1))
    for config in configs:
        method = get_method(config.method)
        callback = method.callback(config) if method.callback is not None else None
        if callback is not None:
            callbacks.append(callback)
        if method.trainer is not None:
            trainer_class, extra = method.trainer(config, context, family in SEQ2SEQ_FAMILIES)
    labels = "decoder" if family in SEQ2SEQ_FAMILIES else "tokens"
    dataset = toy_dataset(family, labels=labels)
    train_tiny(
        model, dataset, tmp_path / "train", callbacks, steps=8, logging_steps=4, trainer_class=trainer_class, **extra
    )
    return model.eval()


def _auto(model):
    if getattr(model.config, "is_encoder_decoder", False):
        return AutoModelForSeq2SeqLM
    if model.config.num_labels and "Classification" in type(model).__name__:
        return AutoModelForSequenceClassification
    return AutoModelForMaskedLM


def _outputs(model, family):
    with torch.no_grad():
        return model(**random_batch(family)).logits


def check_round_trip(model, family: str, expected_methods: list[str], tmp_path) -> None:
    """Save `model` by every Hugging Face path that fits it and load each by `load_compressed` and plain
    `from_pretrained`: the outputs, parameter counts, bits and recorded methods must come back the same."""
    expected = _outputs(model, family)
    counts = parameter_counts(model)
    assert [r["method"] for r in compression_history(model)] == expected_methods
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
        assert [r["method"] for r in config["tlc_compression"]["methods"]] == expected_methods, how
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
