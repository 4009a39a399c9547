"""tlc_hf: Train Large, Then Compress, as a drop-in part of Hugging Face training scripts.

Public names are imported lazily, so `import tlc_hf` and `tlc-hf --help` stay fast.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import TYPE_CHECKING

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_LAZY = {
    "parse_duration": "tlc_hf.budget.duration",
    "BudgetClock": "tlc_hf.budget.clock",
    "WallClockBudgetCallback": "tlc_hf.budget.callback",
    "time_lr_lambda": "tlc_hf.budget.schedules",
    "TIME_LR_SCHEDULES": "tlc_hf.budget.schedules",
    "BudgetTrainingArguments": "tlc_hf.training.arguments",
    "BudgetSeq2SeqTrainingArguments": "tlc_hf.training.arguments",
    "BudgetTrainer": "tlc_hf.training.trainer",
    "BudgetSeq2SeqTrainer": "tlc_hf.training.trainer",
    "find_resumable_checkpoint": "tlc_hf.training.checkpoints",
    "DistillationConfig": "tlc_hf.compression.distillation",
    "DistillationTrainer": "tlc_hf.compression.distillation",
    "DistillationSeq2SeqTrainer": "tlc_hf.compression.distillation",
    "shard_model_": "tlc_hf.training.sharded",
    "train_sharded": "tlc_hf.training.sharded",
    "gather_whole": "tlc_hf.training.sharded",
    "save_whole": "tlc_hf.training.sharded",
    "detect_engine": "tlc_hf.compression.sharding",
    "CompressionRecipe": "tlc_hf.compression.recipe",
    "run_recipe": "tlc_hf.workflows.recipe",
    "load_corpus": "tlc_hf.data.corpus",
    "DataIdentity": "tlc_hf.data.identity",
    "prune_magnitude_": "tlc_hf.compression.magnitude",
    "MagnitudePruningConfig": "tlc_hf.compression.magnitude",
    "MagnitudePruningCallback": "tlc_hf.compression.magnitude",
    "save_compressed": "tlc_hf.compression.loading",
    "compression_history": "tlc_hf.compression.record",
    "compress_": "tlc_hf.compression.compress",
    "CompressionResult": "tlc_hf.compression.compress",
    "CompressionContext": "tlc_hf.compression.context",
    "CompressionMethod": "tlc_hf.compression.base",
    "register_method": "tlc_hf.compression.base",
    "DropHeadConfig": "tlc_hf.compression.drophead",
    "prune_structured_": "tlc_hf.compression.structured",
    "prune_depth_": "tlc_hf.compression.depth",
    "DepthPruningConfig": "tlc_hf.compression.depth",
    "compare_latency": "tlc_hf.evaluation.bench",
    "prune_vocabulary_": "tlc_hf.compression.vocabulary",
    "VocabularyConfig": "tlc_hf.compression.vocabulary",
    "StructuredPruningConfig": "tlc_hf.compression.structured",
    "StructuredPruningCallback": "tlc_hf.compression.structured",
    "MovementPruningConfig": "tlc_hf.compression.movement",
    "MovementPruningCallback": "tlc_hf.compression.movement",
    "DropHeadCallback": "tlc_hf.compression.drophead",
    "quantize": "tlc_hf.compression.quantization",
    "QuantizationConfig": "tlc_hf.compression.quantization",
    "QATCallback": "tlc_hf.compression.quantization",
    "QuantNoiseCallback": "tlc_hf.compression.quantization",
    "OnnxModel": "tlc_hf.compression.quantization",
    "OnnxModelForSequenceClassification": "tlc_hf.compression.quantization",
    "OnnxModelForTokenClassification": "tlc_hf.compression.quantization",
    "OnnxModelForMaskedLM": "tlc_hf.compression.quantization",
    "OnnxModelForFeatureExtraction": "tlc_hf.compression.quantization",
    "load_compressed": "tlc_hf.compression.loading",
    "sparsity_report": "tlc_hf.compression.masks",
    "scale_config": "tlc_hf.scaling.scale",
    "param_breakdown": "tlc_hf.scaling.breakdown",
    "run_sweep": "tlc_hf.scaling.sweep",
    "plan": "tlc_hf.planning.plan",
    "Plan": "tlc_hf.planning.plan",
    "evaluate_model": "tlc_hf.evaluation.evaluate_model",
    "benchmark_model": "tlc_hf.evaluation.bench",
    "CompressionReport": "tlc_hf.hub.report",
    "build_report": "tlc_hf.hub.report",
    "render_model_card": "tlc_hf.hub.card",
    "push_compressed_to_hub": "tlc_hf.hub.push",
    "train_tokenizer": "tlc_hf.data.tokenizer",
    "build_mlm_dataset": "tlc_hf.data.mlm",
    "mlm_collator": "tlc_hf.data.mlm",
    "MLMCollator": "tlc_hf.data.mlm",
    "apply_fixed_mask": "tlc_hf.data.mlm",
    "build_classification_dataset": "tlc_hf.data.tasks",
    "build_seq2seq_dataset": "tlc_hf.data.tasks",
}

__all__ = ["__version__", *sorted(_LAZY)]


class _InstallWithTransformers(importlib.abc.MetaPathFinder):
    """Installs tlc_hf's loading hooks right after `transformers.modeling_utils` is imported, so that
    `import tlc_hf` stays fast (no torch) and plain `from_pretrained` rebuilds compressed models."""

    target = "transformers.modeling_utils"

    def find_spec(self, fullname, path, target=None):
        if fullname != self.target:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            from .compression.hf_integration import install

            install()

        spec.loader.exec_module = exec_module
        return spec


def _install_hooks() -> None:
    if _InstallWithTransformers.target in sys.modules:
        from .compression.hf_integration import install

        install()
    elif not any(isinstance(f, _InstallWithTransformers) for f in sys.meta_path):
        sys.meta_path.insert(0, _InstallWithTransformers())


_install_hooks()


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tlc_hf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover
    from .budget.callback import WallClockBudgetCallback  # noqa: F401
    from .budget.clock import BudgetClock  # noqa: F401
    from .budget.duration import parse_duration  # noqa: F401
    from .budget.schedules import TIME_LR_SCHEDULES, time_lr_lambda  # noqa: F401
    from .data.corpus import load_corpus  # noqa: F401
    from .data.mlm import MLMCollator, apply_fixed_mask, build_mlm_dataset, mlm_collator  # noqa: F401
    from .data.tasks import build_classification_dataset, build_seq2seq_dataset  # noqa: F401
    from .data.tokenizer import train_tokenizer  # noqa: F401
    from .training.arguments import BudgetSeq2SeqTrainingArguments, BudgetTrainingArguments  # noqa: F401
    from .training.checkpoints import find_resumable_checkpoint  # noqa: F401
    from .training.trainer import BudgetSeq2SeqTrainer, BudgetTrainer  # noqa: F401
