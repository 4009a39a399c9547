"""Vocabulary trimming: keep only the tokens a corpus uses (the standard trick for mT5 / XLM-R, whose
embeddings are most of the model), with the tokenizer and the model kept consistent and reloadable.

The model's embedding rows (and LM head rows) are selected and re-numbered; the tokenizer's vocabulary is
re-numbered the same way. The new size lives in the standard `config.vocab_size`, so plain
`from_pretrained` reloads it; the tokenizer saves and reloads as usual.
"""

from __future__ import annotations

from ..base import CliOption, CompressionMethod, register_method
from ..compress import CompressionResult
from .config import VocabularyConfig
from .prune import TRIMMABLE_MODELS, _texts, prune_vocabulary_, trim_embeddings_, trim_tokenizer, used_token_ids

__all__ = [
    "TRIMMABLE_MODELS",
    "VocabularyConfig",
    "_texts",
    "prune_vocabulary_",
    "trim_embeddings_",
    "trim_tokenizer",
    "used_token_ids",
]


def _apply(model, config, context):
    """Trim to the context's data (its train split); the trimmed tokenizer comes back in the result."""
    tokenizer = prune_vocabulary_(model, context.tokenizer, context.load_corpus(), config)
    return CompressionResult(config.method, config, model, tokenizer=tokenizer)


def _describe(record: dict) -> str:
    kept, original = record.get("kept"), record.get("original")
    share = f" ({kept / original:.0%})" if kept and original else ""
    return f"vocabulary trimmed to the {kept:,} tokens the training data uses{share} of {original:,}"


register_method(
    CompressionMethod(
        config_class=VocabularyConfig,
        apply=_apply,
        requires=lambda config: {"tokenizer", "data"},
        describe=_describe,
        cli=(CliOption("prune_vocabulary", "keep tokens the training data uses at least this often", type=int),),
        from_cli=lambda args: VocabularyConfig(min_count=args.prune_vocabulary) if args.prune_vocabulary else None,
        cli_order=5,
    )
)
