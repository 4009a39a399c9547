"""Quantization: every CPU backend on BERT/RoBERTa/T5/mT5 -> save -> reload -> same outputs; k-bit curves; QAT;
Quant-Noise; clear errors."""

import logging
import os

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSeq2SeqLM, TrainingArguments

from tlc_hf import (
    QATCallback,
    QuantizationConfig,
    QuantNoiseCallback,
    compression_history,
    load_compressed,
    quantize,
    save_compressed,
)
from tlc_hf.compression import find_targets
from tlc_hf.compression.quantization import OnnxModel, fake_quantize
from tlc_hf.testing import SEQ2SEQ_FAMILIES, TINY_FAMILIES, random_batch, tiny_model, toy_dataset, train_tiny

logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # per-call float16 cast notices

BACKENDS = [
    dict(backend="simulated", bits=4),
    dict(backend="torchao"),
    dict(backend="torchao", weight_only=True),
    dict(backend="bitsandbytes", bits=8),
    dict(backend="bitsandbytes", bits=4, bnb_4bit_type="nf4"),
    dict(backend="onnxruntime"),
]


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("settings", BACKENDS, ids=lambda s: "-".join(map(str, s.values())))
def test_quantize_save_reload_same_outputs(tmp_path, family, settings):
    if settings["backend"] == "onnxruntime" and family in SEQ2SEQ_FAMILIES:
        with pytest.raises(ValueError, match="backend='onnxruntime' exports encoder models"):
            quantize(tiny_model(family), QuantizationConfig(**settings))
        return
    # bitsandbytes' CPU 4-bit kernel packs only layers of >= 64 inputs (others stay float): hidden 64
    model = tiny_model(family, hidden_size=64 if settings.get("bits") == 4 else 32)
    batch = random_batch(family)
    reference = model(**batch).logits
    quantized = quantize(model, QuantizationConfig(**settings))
    output = quantized(**batch).logits
    assert output.shape == reference.shape and not torch.equal(output, reference)  # it did change something
    with torch.no_grad():  # inference, where bitsandbytes repacks its CPU weights (a bf16 kernel)
        inference = quantized(**batch).logits
    save_compressed(quantized, tmp_path / "q")
    reloaded = load_compressed(str(tmp_path / "q"))
    assert torch.allclose(reloaded(**batch).logits, output, atol=1e-5)
    if settings["backend"] in ("torchao", "bitsandbytes"):  # plain from_pretrained loads it too
        auto = AutoModelForSeq2SeqLM if family in SEQ2SEQ_FAMILIES else AutoModelForMaskedLM
        plain = auto.from_pretrained(tmp_path / "q", device_map="cpu").eval()
        assert torch.allclose(plain(**batch).logits, output, atol=1e-5)
        with torch.no_grad():
            assert torch.allclose(plain(**batch).logits, inference, atol=1e-5)
    if settings["backend"] == "onnxruntime":
        assert isinstance(reloaded, OnnxModel) and (tmp_path / "q" / "model.onnx").exists()


def test_onnx_export_drops_provenance_metadata_and_honours_granularity(tmp_path):
    import onnx

    from tlc_hf.compression.record import compression_record

    model = tiny_model("bert", hidden_size=32)
    batch = random_batch("bert")
    reference = model.eval()(**batch).logits
    for granularity in ("per_channel", "per_tensor"):
        quantized = quantize(model, QuantizationConfig(backend="onnxruntime", granularity=granularity))
        save_compressed(quantized, tmp_path / granularity)
        graph = onnx.load(str(tmp_path / granularity / "model.onnx")).graph
        assert graph.node and not any(node.metadata_props or node.doc_string for node in graph.node)
        record = compression_record(load_compressed(str(tmp_path / granularity)).config)["methods"][-1]
        assert record["granularity"] == granularity
        assert torch.allclose(quantized(**batch).logits, reference, atol=0.05)
    sizes = [os.path.getsize(tmp_path / g / "model.onnx") for g in ("per_channel", "per_tensor")]
    assert sizes[0] > sizes[1]  # one scale per output channel instead of one per tensor


def test_bitsandbytes_model_saved_after_a_forward_pass_reloads_right(tmp_path):
    """The trap: a bnb model saved after a CPU forward pass reloads silently wrong; tlc_hf re-quantizes."""
    model = tiny_model("bert")
    batch = random_batch("bert")
    quantized = quantize(model, QuantizationConfig(backend="bitsandbytes", bits=4))
    first = quantized(**batch).logits
    quantized(**batch)  # more forward passes before saving
    save_compressed(quantized, tmp_path / "q")
    assert torch.allclose(load_compressed(str(tmp_path / "q"))(**batch).logits, first, atol=1e-5)


@pytest.mark.parametrize("granularity", ["per_channel", "per_tensor"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_simulated_error_falls_monotonically_with_bits(granularity, symmetric):
    torch.manual_seed(0)
    weight = torch.randn(64, 128)
    errors = [float((fake_quantize(weight, b, granularity, symmetric) - weight).pow(2).mean()) for b in range(2, 9)]
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors
    levels = len(torch.unique(fake_quantize(weight, 3, "per_tensor", symmetric)))
    assert levels <= 8


def test_simulated_quantization_changes_only_targets():
    model = tiny_model("bert")
    embedding = model.get_input_embeddings().weight.clone()
    quantize(model, QuantizationConfig(backend="simulated", bits=2, granularity="per_tensor"))
    assert torch.equal(model.get_input_embeddings().weight, embedding)
    for module in find_targets(model).values():
        assert len(torch.unique(module.weight)) <= 4
    assert compression_history(model)[-1]["backend"] == "simulated"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(bits=9), "bits=9 must be an int from 2 to 8"),
        (dict(bits=4.0), "bits=4.0 must be an int"),
        (dict(backend="tensorrt"), "backend='tensorrt' is not allowed"),
        (dict(backend="torchao", bits=4), "torchao's int4 kernels run on CUDA GPUs only"),
        (dict(backend="onnxruntime", bits=4), "dynamic quantization is int8"),
        (dict(backend="bitsandbytes", bits=6), "bitsandbytes has 8-bit and 4-bit"),
    ],
)
def test_bad_quantization_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QuantizationConfig(**kwargs)


def test_missing_backend_names_the_extra(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'tlc_hf\[torchao\]'"):
        quantize(tiny_model("bert"), QuantizationConfig(backend="torchao"))
    assert os.listdir(tmp_path) == []


def _data(n=48):
    return toy_dataset("bert", n, seed=4, labels="tokens")


def _train(tmp_path, model, callbacks, steps=16):
    return train_tiny(model, _data(), tmp_path / "o", callbacks, steps, logging_steps=4)


def test_qat_trains_and_converts_close_to_the_fake_quant_model(tmp_path):
    model = tiny_model("bert")
    qat = QATCallback(bits=8, start=0.25, backend="torchao", weight_only=True)
    trainer = _train(tmp_path, model, [qat])
    active = [log["qat_active"] for log in trainer.state.log_history if "qat_active" in log]
    assert active[0] == 0 and active[-1] == 1  # fake quantization started at 25% of training
    model.eval()
    batch = random_batch("bert")
    fake = model(**batch).logits  # weights now sit on the int8 grid
    for module in find_targets(model).values():
        assert len(torch.unique(module.weight[0])) <= 256
    converted = quantize(model, QuantizationConfig(backend="torchao", weight_only=True))
    # stated tolerance: torchao's own int8 scale may round an on-grid weight by one step
    assert (converted(**batch).logits - fake).abs().max().item() < 2e-2
    assert [m["method"] for m in compression_history(converted)] == ["quantization", "quantization"]
    assert compression_history(converted)[0]["qat"] is True


def test_quant_noise_in_training_only_and_scheduled(tmp_path):
    from transformers import TrainerControl, TrainerState

    model = tiny_model("bert")
    callback = QuantNoiseCallback(noise_rate=1.0, bits=4, start=0.0, end=0.0, seed=0)
    state = TrainerState(max_steps=10)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True)
    batch = random_batch("bert")
    clean = model.eval()(**batch).logits
    callback.on_train_begin(args, state, TrainerControl(), model=model)
    assert torch.equal(model.eval()(**batch).logits, clean)  # evaluation uses plain weights
    noisy = model.train()(**batch)  # every block quantized (rate 1): same as fake-quantized weights
    torch.manual_seed(0)
    callback.on_train_end(args, state, TrainerControl())
    assert not torch.equal(noisy.logits, clean)
    ramp = QuantNoiseCallback(noise_rate=0.5, start=0.0, end=1.0, ramp="linear")
    trainer = _train(tmp_path, tiny_model("bert"), [ramp])
    rates = [log["quant_noise_rate"] for log in trainer.state.log_history if "quant_noise_rate" in log]
    assert rates == sorted(rates) and 0 < rates[-1] <= 0.5


def test_compress_command(tmp_path, capsys):
    from tlc_hf.cli import main
    from tlc_hf.data import train_tokenizer

    tokenizer = train_tokenizer("bert", 300, ["a good film", "a bad film", "fine acting"] * 50)
    model = tiny_model("bert", "classification", vocab_size=len(tokenizer), num_attention_heads=4)
    save_compressed(model, tmp_path / "base", tokenizer)
    batch = {k: v for k, v in tokenizer(["a good film"], return_tensors="pt").items() if k != "token_type_ids"}
    assert main(["compress", str(tmp_path / "base"), "--output_dir", str(tmp_path / "onnx"), "--export", "onnx"]) == 0
    onnx_model = load_compressed(str(tmp_path / "onnx"))
    assert isinstance(onnx_model, OnnxModel) and (tmp_path / "onnx" / "tokenizer.json").exists()
    assert torch.allclose(onnx_model(**batch).logits, model.eval()(**batch).logits, atol=0.05)
    assert (
        main(
            [
                "compress",
                str(tmp_path / "base"),
                "--output_dir",
                str(tmp_path / "small"),
                "--prune_heads",
                "0.5",
                "--prune_ffn",
                "0.5",
                "--prune_magnitude",
                "0.5",
                "--storage",
                "sparse",
            ]
        )
        == 0
    )
    small = load_compressed(str(tmp_path / "small"))
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    assert [m["method"] for m in compression_history(small)] == ["structured", "magnitude"]
    capsys.readouterr()
    assert (
        main(
            [
                "compress",
                str(tmp_path / "base"),
                "--output_dir",
                str(tmp_path / "x"),
                "--quantize",
                "torchao",
                "--bits",
                "4",
            ]
        )
        == 1
    )
    assert "torchao's int4 kernels run on CUDA GPUs only" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["compress", str(tmp_path / "base"), "--output_dir", str(tmp_path / "y")]) == 1
