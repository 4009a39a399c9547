"""Which modules a method compresses: per-architecture rules for BERT, RoBERTa, XLM-R, T5 and mT5.

Default targets are the Linear layers inside the transformer blocks (attention q/k/v/o and FFN).
Embeddings and the classifier / LM head are left alone unless asked for: Movva et al. (2022) find that
pruning embeddings costs much accuracy.
"""

from __future__ import annotations

import re

from torch import nn

from .sharding import strip_wrapper_prefixes, unwrap_model

SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "t5", "mt5")
_BLOCK = re.compile(r"(^|\.)(layer|block)\.\d+\.")


def find_targets(
    model: nn.Module,
    target_modules: str | None = None,
    include_embeddings: bool = False,
    include_head: bool = False,
) -> dict[str, nn.Module]:
    """Name -> module for the Linear (and, if asked, Embedding) modules to compress.

    `target_modules` is a regular expression matched against module names (`re.search`); it replaces the
    architecture rule. Raises `ValueError` for an unsupported model type (without `target_modules`) and
    when nothing matches.
    """
    model = unwrap_model(model)  # DDP / torch.compile: the model itself
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if target_modules is None and model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"model_type={model_type!r} has no built-in target rule; supported: {SUPPORTED_MODEL_TYPES}. "
            "Pass target_modules='<regex over module names>' to choose modules yourself."
        )
    pattern = None
    if target_modules is not None:
        try:
            pattern = re.compile(target_modules)
        except (re.error, TypeError) as err:
            raise ValueError(
                f"target_modules={target_modules!r} is not a valid regular expression over module names ({err})"
            ) from err
    targets = {}
    for name, module in model.named_modules():
        name = strip_wrapper_prefixes(name)  # DDP, FSDP1, torch.compile: the names of the model itself
        if pattern is not None:
            if pattern.search(name) and isinstance(module, (nn.Linear, nn.Embedding)):
                targets[name] = module
            continue
        if isinstance(module, nn.Linear):
            if _BLOCK.search(name) or include_head:
                targets[name] = module
        elif isinstance(module, nn.Embedding) and include_embeddings and "relative_attention_bias" not in name:
            targets[name] = module
    if include_head and not include_embeddings:
        # a tied LM decoder shares the word embedding: pruning it would prune the embedding too
        targets = {n: m for n, m in targets.items() if not _shares_input_embedding(model, m)}
    if not targets:
        raise ValueError(
            f"target_modules={target_modules!r} matched no Linear/Embedding module of {type(model).__name__}"
        )
    return targets


def _shares_input_embedding(model: nn.Module, module: nn.Module) -> bool:
    inputs = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    return inputs is not None and getattr(module, "weight", None) is inputs.weight
