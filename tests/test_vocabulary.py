"""Vocabulary trimming: the tokens a corpus uses, tokenizer and model kept consistent and reloadable."""

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSeq2SeqLM, AutoTokenizer

from tlc_hf import CompressionRecipe, compression_history, prune_vocabulary_, run_recipe, save_compressed
from tlc_hf.data import train_tokenizer
from tlc_hf.testing import tiny_model


@pytest.fixture(scope="module")
def wordpiece(small_corpus):
    return train_tokenizer("wordpiece", 2000, small_corpus)


@pytest.fixture(scope="module")
def unigram(small_corpus):
    return train_tokenizer("unigram", 2000, small_corpus, max_texts=800)


def _model(family, tokenizer):
    overrides = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    if family == "t5":
        overrides.update(eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    return tiny_model(family, **overrides)


@pytest.mark.parametrize("family", ["bert", "t5"])
def test_trimmed_model_and_tokenizer_give_the_same_outputs_on_seen_text(tmp_path, small_corpus, request, family):
    tokenizer = request.getfixturevalue("wordpiece" if family == "bert" else "unigram")
    model = _model(family, tokenizer)
    seen = small_corpus["train"]["text"][:200]  # the texts counted: every token they use is kept
    texts = small_corpus["train"]["text"][:8]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    extra = {"decoder_input_ids": batch["input_ids"][:, :5]} if family == "t5" else {}
    with torch.no_grad():
        expected = model(**batch, **extra).logits
    trimmed = prune_vocabulary_(model, tokenizer, seen)
    assert len(trimmed) == model.config.vocab_size < len(tokenizer)
    new = trimmed(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    assert [trimmed.convert_ids_to_tokens(i) for i in new["input_ids"].tolist()] == [
        tokenizer.convert_ids_to_tokens(i) for i in batch["input_ids"].tolist()
    ]
    extra = {"decoder_input_ids": new["input_ids"][:, :5]} if family == "t5" else {}
    with torch.no_grad():
        got = model(**new, **extra).logits
    kept = [tokenizer.convert_tokens_to_ids(t) for t in trimmed.convert_ids_to_tokens(list(range(len(trimmed))))]
    torch.testing.assert_close(got, expected[..., kept], atol=1e-6, rtol=0)  # LM head rows follow the tokens
    save_compressed(model, tmp_path / "v", trimmed)
    auto = AutoModelForSeq2SeqLM if family == "t5" else AutoModelForMaskedLM
    reloaded, tok = auto.from_pretrained(tmp_path / "v").eval(), AutoTokenizer.from_pretrained(tmp_path / "v")
    again = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    assert torch.equal(again["input_ids"], new["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**again, **extra).logits, got, atol=1e-6, rtol=0)
    record = compression_history(reloaded)[-1]
    assert record["method"] == "vocabulary" and record["kept"] == len(trimmed) and record["original"] == len(tokenizer)


def test_bpe_tokenizers_are_refused_naming_the_kind(bpe_tokenizer, small_corpus):
    model = tiny_model("roberta", vocab_size=len(bpe_tokenizer), pad_token_id=bpe_tokenizer.pad_token_id)
    with pytest.raises(ValueError, match="this one is BPE"):
        prune_vocabulary_(model, bpe_tokenizer, small_corpus["train"]["text"][:50])


def test_vocabulary_in_a_recipe_saves_the_trimmed_tokenizer(tmp_path, small_corpus, wordpiece):
    from transformers import AutoModelForSequenceClassification

    model = tiny_model("bert", "classification", vocab_size=len(wordpiece), pad_token_id=wordpiece.pad_token_id)
    save_compressed(model, tmp_path / "base", wordpiece)
    recipe = CompressionRecipe.from_dict(
        {"methods": [{"method": "vocabulary", "min_count": 2}, {"method": "quantization", "backend": "torchao"}]}
    )
    report = run_recipe(recipe, str(tmp_path / "base"), str(tmp_path / "out"), corpus=small_corpus)
    assert [m["method"] for m in report["methods"]] == ["vocabulary", "quantization"]
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert len(tokenizer) == model.config.vocab_size < len(wordpiece)
    assert "vocabulary trimmed to the" in (tmp_path / "out" / "README.md").read_text()
