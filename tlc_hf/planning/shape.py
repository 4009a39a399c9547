"""What a compression recipe does to a model's shape and storage, read from the recipe's method configs.

No training and no weights: depth pruning keeps `layers_to_keep` of each stack, structured pruning keeps a
fraction of the heads and FFN neurons, vocabulary trimming keeps the tokens the data uses, quantization picks
the stored format (ONNX Runtime int8, or float safetensors), magnitude / movement pruning set a sparsity.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from transformers import PretrainedConfig

FORMATS = ("safetensors", "onnx-int8")


@dataclass(frozen=True)
class Deployment:
    """How the compressed model is stored and served.

    Args:
        format: "safetensors" (float weights, what `save_compressed` writes for an unquantized model) or
            "onnx-int8" (ONNX Runtime dynamic int8, `model.onnx`).
        granularity: ONNX int8 scales: "per_tensor" or "per_channel" (one per output column of a MatMul).
        sparsity: fraction of zeros in the pruned Linear weights; with `sparse_storage` they are stored as
            bitmask + values (`save_compressed(storage="sparse")`).
        sparse_storage: the bitmask + values layout of `tlc_hf.compression.storage`.
    """

    format: str = "safetensors"
    granularity: str = "per_channel"
    sparsity: float = 0.0
    sparse_storage: bool = False

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format={self.format!r} is not known; choose one of {FORMATS}")
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity={self.sparsity!r} must lie in [0, 1)")


def _depth(config: PretrainedConfig) -> int:
    return config.num_layers if config.is_encoder_decoder else config.num_hidden_layers


def compressed_config(config: PretrainedConfig, recipe, kept_vocab: int | None = None) -> PretrainedConfig:
    """A copy of `config` with the shape `recipe` (a `CompressionRecipe`) leaves: fewer layers, FFN neurons,
    tokens. Vocabulary trimming needs `kept_vocab` (tokens the data uses), else a `ValueError`.

    Structured pruning is taken as uniform per layer (the same total of FFN neurons as a global cut, so the
    same size); a recipe that prunes heads is refused.

    Example:
        ```python
        compressed_config(resolve_config("roberta-base"), CompressionRecipe.load("cpu-compact"), kept_vocab=21000)
        ```
    """
    from ..compression.depth import layers_to_keep

    config = copy.deepcopy(config)
    for method in recipe.methods:
        if method.method == "depth":
            if config.is_encoder_decoder:
                config.num_layers = len(layers_to_keep(config.num_layers, method))
                config.num_decoder_layers = len(layers_to_keep(config.num_decoder_layers, method))
            else:
                config.num_hidden_layers = len(layers_to_keep(config.num_hidden_layers, method))
        elif method.method == "structured":
            if method.heads:
                raise ValueError(
                    f"recipe {recipe.name or ''!r} prunes attention heads (heads={method.heads}); the planner sizes "
                    "depth, FFN and vocabulary cuts only"
                )
            ffn_attr = "d_ff" if config.is_encoder_decoder else "intermediate_size"
            width = getattr(config, ffn_attr)
            setattr(config, ffn_attr, max(1, width - round(method.ffn * width)))
        elif method.method == "vocabulary":
            if kept_vocab is None:
                raise ValueError(
                    f"recipe {recipe.name or ''!r} trims the vocabulary: the kept size needs a tokenizer and data "
                    "(pass kept_vocab=..., or a base with a WordPiece/Unigram tokenizer and --data)"
                )
            config.vocab_size = int(kept_vocab)
    return config


def deployment_of(recipe) -> Deployment:
    """The storage `recipe` ends in: its last real quantization step, its unstructured sparsity."""
    fmt, granularity, sparsity = "safetensors", "per_channel", 0.0
    for method in recipe.methods:
        if method.method == "quantization":
            if method.backend == "onnxruntime":
                fmt, granularity = "onnx-int8", method.granularity
            elif method.backend != "simulated":
                raise ValueError(
                    f"recipe {recipe.name or ''!r} quantizes with {method.backend!r}; the planner sizes ONNX Runtime "
                    "int8 and float safetensors"
                )
        elif method.method in ("magnitude", "movement"):
            sparsity = float(method.sparsity)
    return Deployment(fmt, granularity, sparsity, sparse_storage=sparsity >= 0.25 and fmt == "safetensors")
