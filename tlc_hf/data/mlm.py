"""Masked-language-model data: tokenize, concatenate, cut into blocks; mask 15% with the 80/10/10 rule."""

from __future__ import annotations

import logging

from datasets import Dataset, DatasetDict, load_from_disk
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase

from .cache import atomic_directory, cache_key, cache_root

logger = logging.getLogger(__name__)


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A stable hash of a fast tokenizer's full definition (vocabulary, rules, special tokens)."""
    return cache_key(tokenizer=tokenizer.backend_tokenizer.to_str(), special=tokenizer.all_special_tokens)


def build_mlm_dataset(
    tokenizer: PreTrainedTokenizerBase,
    corpus: DatasetDict | None = None,
    *,
    block_size: int = 128,
    cache: bool = True,
    num_proc: int | None = None,
    **corpus_kwargs,
) -> DatasetDict:
    """Blocks of `block_size` token ids from every split of `corpus` (default: the embedded corpus).

    Each document is tokenized with its special tokens, documents are concatenated, and the stream is cut
    into equal blocks (the tail is dropped), as in transformers' `run_mlm.py`. Results are cached on disk,
    keyed by the tokenizer, the corpus fingerprint and the block size. Mask them with `mlm_collator`.
    """
    if not isinstance(block_size, int) or block_size < 8:
        raise ValueError(f"block_size={block_size!r} must be an int >= 8")
    if block_size > tokenizer.model_max_length:
        raise ValueError(
            f"block_size={block_size} exceeds the tokenizer's model_max_length={tokenizer.model_max_length}"
        )
    if corpus is None:
        from .corpus import load_corpus

        corpus = load_corpus(**corpus_kwargs)
    elif corpus_kwargs:
        raise TypeError(f"corpus options {sorted(corpus_kwargs)} apply only when corpus is None")

    key = cache_key(
        tokenizer=tokenizer_fingerprint(tokenizer),
        corpus={split: ds._fingerprint for split, ds in corpus.items()},
        block_size=block_size,
    )
    path = cache_root() / "mlm" / key
    if cache and (path / "dataset_dict.json").exists():
        logger.info("Loading cached MLM blocks from %s", path)
        return load_from_disk(str(path))

    blocks = DatasetDict({split: _blocks(ds, tokenizer, block_size, num_proc) for split, ds in corpus.items()})
    if cache:
        with atomic_directory(path, overwrite=True) as tmp:
            blocks.save_to_disk(str(tmp))
        return load_from_disk(str(path))
    return blocks


def _blocks(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, block_size: int, num_proc: int | None) -> Dataset:
    def tokenize_and_group(texts):
        ids = tokenizer(texts, add_special_tokens=True, return_attention_mask=False)["input_ids"]
        stream = [token for doc in ids for token in doc]
        usable = len(stream) - len(stream) % block_size
        return {"input_ids": [stream[i : i + block_size] for i in range(0, usable, block_size)]}

    return dataset.map(
        tokenize_and_group,
        input_columns="text",
        batched=True,
        batch_size=1000,
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        desc=f"Tokenizing into blocks of {block_size}",
    )


def mlm_collator(
    tokenizer: PreTrainedTokenizerBase,
    mlm_probability: float = 0.15,
    seed: int | None = None,
    pad_to_multiple_of: int | None = None,
) -> DataCollatorForLanguageModeling:
    """BERT masking: `mlm_probability` of the non-special tokens are chosen; of those 80% become the mask
    token, 10% a random token, 10% stay. Labels are -100 except at chosen positions."""
    if tokenizer.mask_token is None:
        raise ValueError(
            f"{type(tokenizer).__name__} has no mask token; MLM needs one (train_tokenizer('wordpiece'|'bpe') has)"
        )
    if not 0 < mlm_probability < 1:
        raise ValueError(f"mlm_probability={mlm_probability} must lie in (0, 1)")
    return DataCollatorForLanguageModeling(
        tokenizer=tokenizer,
        mlm=True,
        mlm_probability=mlm_probability,
        mask_replace_prob=0.8,
        random_replace_prob=0.1,
        pad_to_multiple_of=pad_to_multiple_of,
        seed=seed,
    )


class MLMCollator:
    """Masks blocks for training; passes blocks that already carry `labels` (a fixed eval mask) through.

    One collator serves both sides of a `Trainer`: training batches are masked afresh each time,
    evaluation batches from `apply_fixed_mask` keep the same mask every evaluation, so perplexities
    taken at different times (or of different models) are comparable.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, mlm_probability: float = 0.15, seed: int | None = None):
        self.masker = mlm_collator(tokenizer, mlm_probability=mlm_probability, seed=seed)

    def __call__(self, features: list[dict]) -> dict:
        if features and "labels" in features[0]:
            import torch

            return {key: torch.tensor([f[key] for f in features]) for key in features[0]}
        return self.masker(features)


def apply_fixed_mask(
    blocks: Dataset, tokenizer: PreTrainedTokenizerBase, seed: int = 0, mlm_probability: float = 0.15
) -> Dataset:
    """Mask equal-length blocks once, with a seeded generator: `input_ids` (masked) and `labels` columns."""
    masker = mlm_collator(tokenizer, mlm_probability=mlm_probability, seed=seed)

    def mask(batch_ids):
        masked = masker([{"input_ids": ids} for ids in batch_ids])
        return {"input_ids": masked["input_ids"].tolist(), "labels": masked["labels"].tolist()}

    return blocks.map(mask, input_columns="input_ids", batched=True, batch_size=256, desc="Fixing the eval mask")
