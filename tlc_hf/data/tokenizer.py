"""Train a tokenizer on the corpus with `tokenizers`: WordPiece (BERT), byte-level BPE (RoBERTa), Unigram (T5).

Trained tokenizers are cached on disk and come back as `PreTrainedTokenizerFast` with the special
tokens (and post-processor) of the model family they serve.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator

from datasets import Dataset, DatasetDict
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from .cache import atomic_directory, cache_key, cache_root

logger = logging.getLogger(__name__)

TOKENIZER_KINDS = ("wordpiece", "bpe", "unigram")
FAMILY_TO_KIND = {"bert": "wordpiece", "roberta": "bpe", "xlm-roberta": "bpe", "t5": "unigram", "mt5": "unigram"}
T5_SENTINELS = 100


def resolve_kind(kind: str) -> str:
    kind = FAMILY_TO_KIND.get(kind, kind)
    if kind not in TOKENIZER_KINDS:
        raise ValueError(
            f"kind={kind!r} is not a tokenizer kind; choose one of {TOKENIZER_KINDS} "
            f"or a model family {tuple(FAMILY_TO_KIND)}"
        )
    return kind


def train_tokenizer(
    kind: str = "bpe",
    vocab_size: int = 8192,
    corpus: Dataset | DatasetDict | Iterable[str] | None = None,
    *,
    cache: bool = True,
    max_texts: int | None = None,
    **corpus_kwargs,
) -> PreTrainedTokenizerFast:
    """Train (or load from the cache) a tokenizer of `kind` on `corpus`.

    Args:
        kind: "wordpiece" (BERT-style), "bpe" (byte-level, RoBERTa-style), "unigram" (T5-style, with
            `<extra_id_0>`..`<extra_id_99>` sentinels, `<extra_id_0>` the highest id as in T5), or a
            model family name ("bert", "roberta", "t5", "mt5").
        vocab_size: total vocabulary size, special tokens and sentinels included.
        corpus: a `Dataset`/`DatasetDict` with a `text` column (its train split is used), or an iterable
            of strings. Default: the embedded corpus, loaded with `load_corpus(**corpus_kwargs)`.
        cache: reuse a tokenizer trained before with the same kind, size and corpus.
        max_texts: train on the first `max_texts` texts only. Unigram training is the slow one (about
            a minute on the whole embedded corpus on 2 CPU cores; WordPiece and BPE take seconds).
    """
    kind = resolve_kind(kind)
    minimum = 256 + (T5_SENTINELS if kind == "unigram" else 0)
    if not isinstance(vocab_size, int) or vocab_size < minimum:
        raise ValueError(f"vocab_size={vocab_size!r} must be an int >= {minimum} for kind={kind!r}")

    if corpus is None:
        from .corpus import load_corpus

        corpus = load_corpus(**corpus_kwargs)
    elif corpus_kwargs:
        raise TypeError(f"corpus options {sorted(corpus_kwargs)} apply only when corpus is None")
    if isinstance(corpus, DatasetDict):
        corpus = corpus["train"]
    if isinstance(corpus, (list, tuple, Dataset)) and len(corpus) == 0:
        raise ValueError("the corpus is empty: a tokenizer needs texts to learn its vocabulary from")

    if isinstance(corpus, Dataset) and max_texts is not None and max_texts < len(corpus):
        corpus = corpus.select(range(max_texts))
    elif max_texts is not None and not isinstance(corpus, Dataset):
        corpus = itertools.islice(corpus, max_texts)
    fingerprint = corpus._fingerprint if isinstance(corpus, Dataset) else None
    path = cache_root() / "tokenizers" / f"{kind}-{vocab_size}-{cache_key(fingerprint=fingerprint)}"
    if cache and fingerprint is not None and (path / "tokenizer.json").exists():
        logger.info("Loading cached tokenizer from %s", path)
        return PreTrainedTokenizerFast.from_pretrained(str(path))

    tokenizer = _train(kind, vocab_size, _texts(corpus))
    if cache and fingerprint is not None:
        with atomic_directory(path, overwrite=True) as tmp:
            tokenizer.save_pretrained(str(tmp))
    return tokenizer


def _texts(corpus: Dataset | Iterable[str], batch_size: int = 1000) -> Iterator[list[str]]:
    if isinstance(corpus, Dataset):
        for start in range(0, len(corpus), batch_size):
            yield corpus[start : start + batch_size]["text"]
    else:
        batch = []
        for text in corpus:
            batch.append(text)
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def _train(kind: str, vocab_size: int, batches: Iterator[list[str]]) -> PreTrainedTokenizerFast:
    if kind == "wordpiece":
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special)
        tok.train_from_iterator(batches, trainer=trainer)
        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        names = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        input_names = ["input_ids", "token_type_ids", "attention_mask"]
    elif kind == "bpe":
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
        tok.train_from_iterator(batches, trainer=trainer)
        tok.post_processor = processors.RobertaProcessing(
            ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")), trim_offsets=True
        )
        names = dict(
            bos_token="<s>",
            eos_token="</s>",
            pad_token="<pad>",
            unk_token="<unk>",
            cls_token="<s>",
            sep_token="</s>",
            mask_token="<mask>",
        )
        input_names = ["input_ids", "attention_mask"]
    else:  # unigram, T5-style
        special = ["<pad>", "</s>", "<unk>"]
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(r"\s+", " ")])
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size - T5_SENTINELS, special_tokens=special, unk_token="<unk>", max_piece_length=16
        )
        tok.train_from_iterator(batches, trainer=trainer)
        eos_id = tok.token_to_id("</s>")
        tok.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos_id)]
        )
        names = dict(eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
        input_names = ["input_ids", "attention_mask"]

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_input_names=input_names, **names)
    if kind == "unigram":
        # T5 convention: sentinels at the end of the vocabulary, <extra_id_0> the highest id.
        sentinels = [f"<extra_id_{i}>" for i in reversed(range(T5_SENTINELS))]
        fast.add_special_tokens({"additional_special_tokens": sentinels})
    return fast
