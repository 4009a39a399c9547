"""Count the tokens a corpus uses and trim the tokenizer and the embeddings to them (`prune_vocabulary_`)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import torch
from torch import nn

from ..record import record_compression
from .config import VocabularyConfig

TRIMMABLE_MODELS = ("WordPiece", "Unigram")
_SPECIAL_CONFIG_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "decoder_start_token_id")


def _texts(corpus, max_texts: int | None) -> list[str]:
    if isinstance(corpus, (list, tuple)):
        texts = list(corpus)
    else:
        split = corpus["train"] if "train" in getattr(corpus, "keys", lambda: [])() else corpus
        texts = list(split["text"]) + (list(split["text_pair"]) if "text_pair" in split.column_names else [])
    return texts[:max_texts] if max_texts else texts


def used_token_ids(tokenizer, texts: list[str], min_count: int = 1, batch_size: int = 1000) -> list[int]:
    """Ids of the tokens `texts` use at least `min_count` times, plus every special token, sorted."""
    counts = Counter()
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(texts[start : start + batch_size], add_special_tokens=False)["input_ids"]
        for ids in encoded:
            counts.update(ids)
    keep = {i for i, c in counts.items() if c >= min_count} | set(tokenizer.all_special_ids)
    keep |= set(tokenizer.added_tokens_decoder)  # added tokens (T5's sentinels, ...) are kept
    if tokenizer.unk_token_id is not None:
        keep.add(tokenizer.unk_token_id)
    return sorted(keep)


def trim_tokenizer(tokenizer, keep: list[int]):
    """A copy of the fast `tokenizer` whose vocabulary is `keep` (old ids), re-numbered 0..len(keep)-1."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    data = json.loads(tokenizer.backend_tokenizer.to_str())
    kind = data["model"]["type"]
    if kind not in TRIMMABLE_MODELS:
        raise ValueError(
            f"vocabulary trimming handles {TRIMMABLE_MODELS} tokenizers (BERT, T5/mT5); this one is {kind} "
            "(BPE merges build tokens from removed pieces, so dropping them would change the tokenization)"
        )
    new_id = {old: new for new, old in enumerate(keep)}
    if kind == "WordPiece":
        data["model"]["vocab"] = {tok: new_id[i] for tok, i in data["model"]["vocab"].items() if i in new_id}
    else:
        pieces = data["model"]["vocab"]  # ids past it are added tokens, renumbered in added_tokens
        data["model"]["vocab"] = [pieces[i] for i in keep if i < len(pieces)]
        if data["model"].get("unk_id") is not None:
            data["model"]["unk_id"] = new_id[data["model"]["unk_id"]]
    for token in data.get("added_tokens") or []:
        token["id"] = new_id[token["id"]]
    _renumber_post_processor(data.get("post_processor"), new_id)
    if data.get("padding") and data["padding"].get("pad_id") is not None:
        data["padding"]["pad_id"] = new_id[data["padding"]["pad_id"]]
    backend = Tokenizer.from_str(json.dumps(data))
    specials = {k: v for k, v in tokenizer.special_tokens_map.items() if k != "additional_special_tokens"}
    trimmed = PreTrainedTokenizerFast(tokenizer_object=backend, **specials)
    trimmed.model_max_length = tokenizer.model_max_length
    trimmed.model_input_names = list(tokenizer.model_input_names)
    trimmed.padding_side, trimmed.truncation_side = tokenizer.padding_side, tokenizer.truncation_side
    return trimmed


def _renumber_post_processor(processor: dict | None, new_id: dict[int, int]) -> None:
    if not processor:
        return
    if processor.get("type") == "Sequence":
        for inner in processor.get("processors", []):
            _renumber_post_processor(inner, new_id)
    for special in (processor.get("special_tokens") or {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    for key in ("sep", "cls"):  # BertProcessing / RobertaProcessing: [token, id]
        if isinstance(processor.get(key), list):
            processor[key][1] = new_id[processor[key][1]]


@torch.no_grad()
def trim_embeddings_(model, keep: list[int]) -> None:
    """Keep the embedding (and LM head) rows `keep`, re-numbered; `config.vocab_size` follows."""
    index = torch.tensor(keep, dtype=torch.long)
    old_in = model.get_input_embeddings()
    old_out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = old_out is not None and old_out.weight is old_in.weight
    new_in = nn.Embedding(len(keep), old_in.embedding_dim, device=old_in.weight.device, dtype=old_in.weight.dtype)
    new_in.weight.copy_(old_in.weight.index_select(0, index.to(old_in.weight.device)))
    model.set_input_embeddings(new_in)
    if old_out is not None:
        new_out = nn.Linear(
            old_out.in_features,
            len(keep),
            bias=old_out.bias is not None,
            device=old_out.weight.device,
            dtype=old_out.weight.dtype,
        )
        new_out.weight.copy_(old_out.weight.index_select(0, index.to(old_out.weight.device)))
        if old_out.bias is not None:
            new_out.bias.copy_(old_out.bias.index_select(0, index.to(old_out.bias.device)))
        if tied:
            new_out.weight = new_in.weight
        model.set_output_embeddings(new_out)
    new_id = {old: new for new, old in enumerate(keep)}
    config = model.config
    for name in _SPECIAL_CONFIG_IDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value in new_id:
            setattr(config, name, new_id[value])
    config.vocab_size = len(keep)


def prune_vocabulary_(model, tokenizer, corpus, config: VocabularyConfig | None = None, **config_kwargs):
    """Trim `model`'s vocabulary (in place) to the tokens `corpus` uses; return the matching tokenizer.

    Args:
        model: a BERT / RoBERTa / XLM-R / T5 / mT5 model (any head).
        tokenizer: its fast tokenizer (WordPiece or Unigram).
        corpus: a `DatasetDict` (its train split's texts are counted) or a list of texts.
        config: a `VocabularyConfig` (or give `min_count`, `max_texts`).

    Returns:
        The trimmed tokenizer: save it with the model (`save_compressed(model, dir, tokenizer)`).

    Example:
        ```python
        tokenizer = prune_vocabulary_(model, tokenizer, load_corpus(source="rotten_tomatoes"))
        ```
    """
    config = dataclasses.replace(config or VocabularyConfig(), **config_kwargs)
    keep = used_token_ids(tokenizer, _texts(corpus, config.max_texts), config.min_count)
    for name in _SPECIAL_CONFIG_IDS:  # ids the config itself uses must survive
        value = getattr(model.config, name, None)
        if isinstance(value, int) and 0 <= value < model.get_input_embeddings().num_embeddings and value not in keep:
            keep = sorted({*keep, value})
    trimmed = trim_tokenizer(tokenizer, keep)
    original = model.get_input_embeddings().num_embeddings
    trim_embeddings_(model, keep)
    record_compression(model, config, kept=len(keep), original=original)
    return trimmed
