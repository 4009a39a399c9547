"""ONNX export + ONNX Runtime dynamic int8 quantization, and a small runner for the exported model.

optimum's ONNX Runtime integration (optimum-onnx) requires transformers < 4.58, so tlc_hf exports with
`torch.onnx.export` (dynamo) and quantizes with `onnxruntime.quantization.quantize_dynamic` directly.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import torch

ONNX_NAME = "model.onnx"


def _example_inputs(model) -> dict:
    device = next(model.parameters()).device  # a model fine-tuned on a GPU is exported where it is
    ids = torch.randint(5, max(6, model.config.vocab_size), (2, 16), device=device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if getattr(model.config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = ids[:, :4]
    return inputs


def export_onnx_fp32(model, path: str, attention: str = "eager") -> str:
    """Export `model`'s forward pass (to logits) to an fp32 ONNX graph at `path`, with dynamic batch and
    length, from the `attention` implementation's graph ("eager" by default: on the real MiniLM, ONNX Runtime
    int8 ran it about 1.2x faster than the SDPA graph, 88 vs 105 ms at batch 8x128, 2 cores, one
    interleaved run). The model's attention setting is restored afterwards."""
    import onnx

    model = model.eval()
    inputs = _example_inputs(model)
    dynamic = {name: {0: "batch", 1: f"{name}_length"} for name in inputs}
    with _attention(model, attention):
        program = torch.onnx.export(
            model,
            (),
            kwargs=inputs,
            dynamo=True,
            dynamic_shapes=dynamic,
            input_names=list(inputs),
            output_names=["logits"],
            verbose=False,
        )
    program.save(path)
    proto = onnx.load(path)
    del proto.graph.value_info[:]  # stale shape annotations break quantize_dynamic
    for node in proto.graph.node:  # the exporter's per-node FX provenance: ~1.3 KB a node, half of a tiny model
        del node.metadata_props[:]
        node.doc_string = ""
    onnx.save(proto, path)
    return path


def export_onnx_int8(model, directory: str, per_channel: bool = True) -> str:
    """Export `model` (forward pass to logits) to ONNX, quantize its weights to int8 (embeddings included:
    ONNX Runtime quantizes Gather too), write `model.onnx`. `per_channel`: one scale per output channel
    (measured as fast as one per tensor on the real MiniLM, with logits 4-5x closer to fp32)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = export_onnx_fp32(model, os.path.join(tmp, "fp32.onnx"))
        out = os.path.join(directory, ONNX_NAME)
        quantize_dynamic(fp32_path, out, weight_type=QuantType.QInt8, per_channel=per_channel)
    return out


@contextlib.contextmanager
def _attention(model, implementation: str):
    previous = getattr(model.config, "_attn_implementation", None)
    switch = previous not in (None, implementation) and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation(implementation)
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(previous)


class OnnxModelOutput(dict):
    @property
    def logits(self) -> torch.Tensor:
        return self["logits"]


class OnnxModel:
    """Runs an exported tlc_hf ONNX model: `OnnxModel.from_pretrained(dir)(**tokenizer(...))` gives `.logits`.

    By default ONNX Runtime's worker threads do not spin-wait between calls: alone it made no measurable
    difference on the real MiniLM, but spinning threads of one session slowed whatever ran next on the same
    cores (another session, torch) by up to 20%. Pass your own `session_options` to change it.
    """

    def __init__(self, path: str, config=None, session_options=None):
        import onnxruntime as ort

        if session_options is None:
            session_options = ort.SessionOptions()
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(path, session_options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = config
        self.path = path

    @classmethod
    def from_pretrained(cls, directory: str, session_options=None) -> OnnxModel:
        from transformers import AutoConfig

        return cls(os.path.join(directory, ONNX_NAME), AutoConfig.from_pretrained(directory), session_options)

    def __call__(self, **inputs) -> OnnxModelOutput:
        if "attention_mask" in self.input_names and "attention_mask" not in inputs and "input_ids" in inputs:
            inputs["attention_mask"] = torch.ones_like(torch.as_tensor(inputs["input_ids"]))
        feed = {name: _numpy(inputs[name]) for name in self.input_names if name in inputs}
        missing = [name for name in self.input_names if name not in feed]
        if missing:
            raise ValueError(f"the ONNX model needs inputs {missing}; got {sorted(inputs)}")
        (logits,) = self.session.run(["logits"], feed)
        return OnnxModelOutput(logits=torch.from_numpy(logits))

    def eval(self) -> OnnxModel:
        return self

    def parameter_counts(self) -> dict:
        """Total and nonzero weights of the graph's initializers, and the bits most of them are stored in."""
        from collections import Counter

        import onnx
        from onnx import numpy_helper

        total = nonzero = 0
        bits = Counter()
        for initializer in onnx.load(self.path, load_external_data=True).graph.initializer:
            array = numpy_helper.to_array(initializer)
            if array.size <= 1:  # scales and zero points
                continue
            total += array.size
            nonzero += int((array != 0).sum())
            bits[array.dtype.itemsize * 8] += array.size
        return {
            "params_total": total,
            "params_nonzero": nonzero,
            "sparsity": 1 - nonzero / total if total else 0.0,
            "bits": bits.most_common(1)[0][0] if bits else None,
        }


def _numpy(value):
    return value.detach().cpu().numpy() if torch.is_tensor(value) else value
