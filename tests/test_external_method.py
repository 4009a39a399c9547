"""A method registered from outside tlc_hf runs through a recipe, save, plain reload and the card, with no
edit to tlc_hf: the registry is the only place the library looks. Adding it = its code + one contract row."""

from dataclasses import dataclass, field

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tlc_hf import CompressionRecipe, compress_, compression_history, run_recipe, save_compressed
from tlc_hf.compression import CompressionConfig, CompressionMethod, record_compression, register_method
from tlc_hf.testing import tiny_model
from tlc_hf.testing.contract import ContractCase, check_round_trip, compress_case


@dataclass
class TruncatePositionsConfig(CompressionConfig):
    """Keep only the first `positions` position embeddings (evaluation inputs are at most 128 long)."""

    method = "test_truncate_positions"
    positions: int = field(default=32, metadata={"help": "Position embeddings kept."})

    def validate(self) -> None:
        if not isinstance(self.positions, int) or self.positions < 1:
            raise ValueError(f"positions={self.positions!r} must be a positive int")


def _embeddings(model):
    return model.base_model.embeddings


def _resize(model, positions: int) -> nn.Embedding:
    embeddings = _embeddings(model)
    old = embeddings.position_embeddings
    new = nn.Embedding(positions, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype)
    embeddings.position_embeddings = new
    return old


def truncate_positions_(model, config, context):
    old = _resize(model, config.positions)
    with torch.no_grad():
        _embeddings(model).position_embeddings.weight.copy_(old.weight[: config.positions])
    record_compression(model, config)
    return model


def restore_positions(model, record):
    if hasattr(model.base_model, "embeddings"):
        _resize(model, record["positions"])


register_method(
    CompressionMethod(
        config_class=TruncatePositionsConfig,
        apply=truncate_positions_,
        restore=restore_positions,
        describe=lambda record: f"kept the first {record['positions']} position embeddings",
    )
)


def test_an_outside_method_runs_through_recipe_save_reload_and_card(tmp_path, small_corpus):
    from tlc_hf.data import train_tokenizer

    tokenizer = train_tokenizer("bert", 300, small_corpus)
    model = tiny_model("bert", "classification", vocab_size=len(tokenizer))
    save_compressed(model, tmp_path / "base", tokenizer)
    recipe = CompressionRecipe.from_yaml("methods:\n  - {method: test_truncate_positions, positions: 128}\n")
    report = run_recipe(recipe, str(tmp_path / "base"), str(tmp_path / "out"), corpus=small_corpus)
    assert [m["method"] for m in report["methods"]] == ["test_truncate_positions"]

    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    assert loaded.bert.embeddings.position_embeddings.num_embeddings == 128
    assert compression_history(loaded)[0]["positions"] == 128
    ids = AutoTokenizer.from_pretrained(tmp_path / "out")(["a fine film"], return_tensors="pt")
    reference = compress_(model.eval(), TruncatePositionsConfig(positions=128)).model
    with torch.no_grad():
        torch.testing.assert_close(loaded(**ids).logits, reference(**ids).logits, atol=1e-6, rtol=0)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "kept the first 128 position embeddings" in card


CASE = ContractCase(("bert", "roberta"), (TruncatePositionsConfig(positions=64),))  # the method's contract row


@pytest.mark.parametrize("family", CASE.families)
def test_an_outside_method_keeps_the_contract(tmp_path, family):
    check_round_trip(compress_case(CASE, family, tmp_path), family, CASE.expected_methods(), tmp_path)
