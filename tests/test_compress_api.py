"""`compress_(model, config, context)`: one entry point and one typed result for every method; what a method
needs is checked before anything loads; the registry refuses an incomplete method when it is registered."""

import dataclasses
import warnings
from dataclasses import dataclass

import pytest

from tlc_hf import CompressionContext, CompressionRecipe, CompressionResult, compress_, run_recipe, save_compressed
from tlc_hf.compression import (
    CompressionConfig,
    CompressionMethod,
    DepthPruningConfig,
    MagnitudePruningConfig,
    QuantizationConfig,
    StructuredPruningConfig,
    VocabularyConfig,
    compression_history,
    register_method,
)
from tlc_hf.testing import tiny_model

GRADIENT_RECIPE = "methods:\n  - {method: structured, heads: 0.5, ffn: 0.5, importance: gradient}\n"


@pytest.fixture
def saved_classifier(tmp_path, small_corpus):
    from tlc_hf.data import train_tokenizer

    tokenizer = train_tokenizer("bert", 300, small_corpus)
    model = tiny_model("bert", "classification", vocab_size=len(tokenizer))
    save_compressed(model, tmp_path / "base", tokenizer)  # records no training data
    return str(tmp_path / "base"), tokenizer


def test_a_gradient_recipe_without_data_is_refused_before_anything_loads(tmp_path, saved_classifier, monkeypatch):
    import tlc_hf.workflows.recipe as workflow

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the recipe was refused")

    monkeypatch.setattr(workflow, "load_compressed", no_loading)
    with pytest.raises(ValueError) as err:
        run_recipe(CompressionRecipe.from_yaml(GRADIENT_RECIPE), saved_classifier[0], str(tmp_path / "out"))
    message = str(err.value)
    assert "\n" not in message
    assert "method 'structured' (importance='gradient') needs batches" in message
    assert not (tmp_path / "out").exists()


def test_a_gradient_recipe_with_data_prunes_on_labelled_batches(tmp_path, saved_classifier, small_corpus):
    recipe = CompressionRecipe.from_yaml(GRADIENT_RECIPE)
    run_recipe(recipe, saved_classifier[0], str(tmp_path / "out"), corpus=small_corpus, report=False)
    from tlc_hf import load_compressed

    record = compression_history(load_compressed(str(tmp_path / "out")))[-1]
    assert record["importance"] == "gradient" and record["layout"]


@pytest.mark.parametrize(
    "config",
    [
        StructuredPruningConfig(heads=0.5, ffn=0.5),
        DepthPruningConfig(layers=0.5),
        MagnitudePruningConfig(sparsity=0.5),
        QuantizationConfig(backend="simulated", bits=4),
    ],
    ids=lambda c: c.method,
)
def test_compress_returns_one_typed_result_for_every_method(config):
    model = tiny_model("bert")
    result = compress_(model, config)
    assert isinstance(result, CompressionResult)
    assert result.method == config.method and result.config is config and result.model is model
    assert [r["method"] for r in result.records] == [config.method]
    assert result.records == compression_history(model)
    assert result.params_before == sum(p.numel() for p in tiny_model("bert").parameters())
    assert result.params_after == sum(p.numel() for p in model.parameters())
    if config.method in ("structured", "depth"):
        assert result.params_after < result.params_before


def test_vocabulary_hands_back_its_tokenizer_and_leaves_the_context_alone(saved_classifier, small_corpus):
    from tlc_hf import load_compressed

    model = load_compressed(saved_classifier[0])
    context = CompressionContext(tokenizer=saved_classifier[1], corpus=small_corpus)
    result = compress_(model, VocabularyConfig(min_count=20), context)
    assert len(result.tokenizer) == model.config.vocab_size < len(saved_classifier[1])
    assert context.tokenizer is saved_classifier[1]
    assert result.records[-1]["kept"] == model.config.vocab_size


@pytest.mark.parametrize(
    ("config", "missing"),
    [
        (StructuredPruningConfig(importance="gradient"), "needs batches"),
        (VocabularyConfig(), "needs data"),
    ],
)
def test_compress_refuses_a_context_that_lacks_what_the_method_needs(config, missing):
    model = tiny_model("bert")
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=missing):
        compress_(model, config)
    assert all((a == b).all() for a, b in zip(before, model.parameters(), strict=True))
    assert compression_history(model) == []


def test_outputs_live_in_the_record_not_in_the_config():
    fields = {f.name for f in dataclasses.fields(StructuredPruningConfig)}
    assert not fields & {"layout", "native"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a record read back as a config drops its outputs silently
        config = CompressionConfig.from_dict({"method": "structured", "heads": 0.25, "layout": {}, "native": True})
    assert config == StructuredPruningConfig(heads=0.25)


@dataclass
class _Incomplete(CompressionConfig):
    method = "test_incomplete"


@pytest.mark.parametrize(
    ("method", "fragment"),
    [
        (CompressionMethod(config_class=_Incomplete, apply=lambda m, c, x: m), "give describe="),
        (CompressionMethod(config_class=_Incomplete, describe=lambda r: "x"), "give at least one of apply"),
        (CompressionMethod(config_class=_Incomplete, describe="x", apply=lambda m, c, x: m), "is not callable"),
        (
            CompressionMethod(config_class=_Incomplete, describe=lambda r: "x", apply=lambda m, c, x: m, cli=("a",)),
            "cli options and from_cli go together",
        ),
        (
            CompressionMethod(config_class=dataclass(type("C", (CompressionConfig,), {"method": "structured"}))),
            "already",
        ),
    ],
)
def test_an_incomplete_method_is_refused_when_it_is_registered(method, fragment):
    with pytest.raises(ValueError, match=fragment):
        register_method(method)


def test_cli_vocabulary_without_data_is_refused_before_the_model_loads(
    saved_classifier, tmp_path, capsys, monkeypatch
):
    import tlc_hf.compression.loading as loading
    from tlc_hf.cli import main

    monkeypatch.setattr(loading, "load_compressed", lambda *a, **k: pytest.fail("the model was loaded"))
    argv = ["compress", saved_classifier[0], "--output_dir", str(tmp_path / "out"), "--prune_vocabulary", "1"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "tlc-hf compress: method 'vocabulary' needs data" in err
    assert not (tmp_path / "out").exists()


def test_every_method_folder_has_the_same_shape():
    """config.py holds the config; the folder's __init__ registers it (apply / callback / finalize / trainer)."""
    from tlc_hf.compression import get_method, registered_methods

    for name in registered_methods():
        method = get_method(name)
        module = method.config_class.__module__
        if not module.startswith("tlc_hf."):
            continue  # registered from outside (tests/test_external_method.py)
        assert module.endswith(".config"), (name, module)
        hooks = [method.apply, method.callback, method.finalize, method.trainer, method.describe]
        package = module.rpartition(".")[0]
        assert all(h is None or h.__module__.startswith(package) or isinstance(h, type) for h in hooks), name
