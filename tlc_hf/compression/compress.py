"""`compress_(model, config, context)`: the one entry point that applies any registered method, in the shape of
torchao's `quantize_`, and `CompressionResult`, the typed record it returns for every method.

The rule for names ending in `_`: they change the model in place. `compress_` returns a `CompressionResult`;
the older per-method functions (`prune_magnitude_`, `prune_structured_`, `prune_depth_`, `prune_vocabulary_`)
keep their return types (a dict, a dict, the model, the tokenizer) as thin wrappers, for code written against
them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .base import CompressionConfig, get_method
from .context import CompressionContext, check_requirements
from .record import compression_history


@dataclass
class CompressionResult:
    """What one method did to a model (the config says what was asked; this says what was done, measured).

    Args:
        method: the registered method's name.
        config: the config that was applied.
        model: the model afterwards (the same object, changed in place, unless the method had to build a new
            one: a backend quantization, an ONNX export, a merged adapter).
        records: the entries the method added to the model's compression history (config fields + outputs).
        tokenizer: the tokenizer to save with the model (changed by vocabulary trimming; else the context's).
        artifacts: folder name -> object with `save_pretrained`, saved beside the model (a LoRA adapter).
        params_before: parameters before (counted on the model), or None where the method cannot count them.
        params_after: parameters after, or None (an exported graph, a model still sharded).
    """

    method: str
    config: CompressionConfig
    model: Any
    records: list[dict] = field(default_factory=list)
    tokenizer: Any = None
    artifacts: dict[str, Any] = field(default_factory=dict)
    params_before: int | None = None
    params_after: int | None = None


def compress_(
    model: nn.Module,
    config: CompressionConfig,
    context: CompressionContext | None = None,
    *,
    step: str = "apply",
) -> CompressionResult:
    """Apply one compression method to `model` (in place where the method allows) and return what it did.

    Args:
        model: a transformers model (BERT, RoBERTa, XLM-R, T5, mT5; any head).
        config: a registered method's config, e.g. `StructuredPruningConfig(heads=0.5)`.
        context: what the method may need besides the model (`CompressionContext`); checked against the
            method's `requires` before the model is touched.
        step: "apply" (one-shot) or "finalize" (after a fine-tuning that ran the method's callback).

    Returns:
        A `CompressionResult`; use `result.model` (a backend quantization returns a new object).

    Example:
        ```python
        result = compress_(model, StructuredPruningConfig(heads=0.5, ffn=0.5))
        result.params_before, result.params_after
        ```
    """
    if step not in ("apply", "finalize"):
        raise ValueError(f"step={step!r} is not allowed; choose one of ('apply', 'finalize')")
    context = context or CompressionContext()
    method = get_method(config.method)
    hook = method.apply if step == "apply" else method.finalize or method.apply
    if hook is None:
        raise ValueError(
            f"method {config.method!r} has no one-shot form (it acts while training: its callback or trainer); "
            "run it in a recipe with a budget"
        )
    check_requirements([config], context.provides(), where="compress_")
    before = len(compression_history(model))
    params_before = _params(model)
    out = hook(model, config, context)
    result = out if isinstance(out, CompressionResult) else CompressionResult(config.method, config, out)
    result = dataclasses.replace(
        result,
        config=config,
        records=result.records or compression_history(result.model)[before:],
        tokenizer=result.tokenizer if result.tokenizer is not None else context.tokenizer,
        params_before=params_before,
        params_after=_params(result.model),
    )
    return result


def _params(model) -> int | None:
    parameters = getattr(model, "parameters", None)
    return sum(p.numel() for p in parameters()) if callable(parameters) else None
