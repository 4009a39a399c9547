"""Where a model's parameters sit: embeddings, attention, FFN, norms, other. Counted on the meta device."""

from __future__ import annotations

import os

import torch
from transformers import AutoModel, AutoModelForSeq2SeqLM, PretrainedConfig, PreTrainedModel

PARTS = ("embeddings", "attention", "ffn", "norm", "other")
_HEAD_PREFIXES = ("lm_head.", "cls.", "classifier.", "pooler.", "qa_outputs.", "score.")


def parameter_part(name: str) -> str:
    """The part a parameter belongs to, from its name (BERT/RoBERTa/XLM-R/T5/mT5 naming)."""
    lowered = name.lower()
    stripped = lowered.split(".", 1)[1] if lowered.startswith(("bert.", "roberta.", "transformer.")) else lowered
    if stripped.startswith(_HEAD_PREFIXES):
        return "other"
    if "relative_attention_bias" in lowered:
        return "attention"
    if "layernorm" in lowered or "layer_norm" in lowered or ".ln_" in f".{stripped}" or "norm." in lowered:
        return "norm"
    if "embed" in lowered or stripped.startswith(("shared.", "wte.", "wpe.")):
        return "embeddings"
    if "attention" in lowered or ".attn." in f".{stripped}":
        return "attention"
    if any(f".{block}." in f".{stripped}" for block in ("layer", "layers", "block", "h", "mlp")):
        return "ffn"
    return "other"


def count_parts(model: torch.nn.Module) -> dict[str, int]:
    """Parameters per part; tied parameters are counted once."""
    counts = dict.fromkeys(PARTS, 0)
    for name, parameter in model.named_parameters():  # deduplicates tied parameters
        counts[parameter_part(name)] += parameter.numel()
    counts["total"] = sum(counts[part] for part in PARTS)
    return counts


def param_breakdown(source: str | PretrainedConfig | PreTrainedModel) -> dict:
    """Parameter counts of a model, a config or a name, by part: `total`, `embeddings` (token, position,
    type; a tied output embedding counted once), `attention` (q, k, v, o, biases, T5's relative-position
    bias), `ffn` (the blocks' feed-forward layers), `norm`, `other` (pooler, LM / classification heads).

    A config or name is built on the meta device: no memory, no download for shipped names. Encoders
    count the base model with its pooler (how bert-base's 110M is quoted); T5/mT5 count the
    conditional-generation model. transformers v5 ties (m)T5's output embedding to the input one when
    building from a config; where the real checkpoint carries a separate `lm_head` (mT5), it is added
    to `other` and said in `notes`.
    """
    notes = []
    if not isinstance(source, (str, os.PathLike, PretrainedConfig, torch.nn.Module)):
        raise TypeError(
            f"source={source!r} must be a model, a config, or a name / path (e.g. 'roberta-base'); "
            f"got {type(source).__name__}"
        )
    if isinstance(source, torch.nn.Module):
        counts = count_parts(source)
        config = getattr(source, "config", None)
        name = getattr(config, "name_or_path", None) or type(source).__name__
    else:
        config, raw, name = _config_and_raw(source)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModel
        with torch.device("meta"):
            model = auto.from_config(config)
        counts = count_parts(model)
        declared_untied = raw.get("tie_word_embeddings") is False
        if config.is_encoder_decoder and declared_untied and _lm_head_is_tied(model):
            extra = model.get_output_embeddings().weight.numel()
            counts["other"] += extra
            counts["total"] += extra
            notes.append(
                f"the checkpoint has a separate lm_head ({extra:,} parameters, counted in 'other'); transformers v5 "
                "ties it to the input embedding when the model is built from this config"
            )
    result = {"name": str(name), **{key: counts[key] for key in ("total", *PARTS)}}
    if config is not None:
        result["model_type"] = config.model_type
        result["num_layers"] = getattr(config, "num_hidden_layers", None) or getattr(config, "num_layers", None)
        result["hidden_size"] = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
        if config.is_encoder_decoder:
            result["num_decoder_layers"] = config.num_decoder_layers
    result["notes"] = notes
    return result


def _lm_head_is_tied(model: PreTrainedModel) -> bool:
    output, inputs = model.get_output_embeddings(), model.get_input_embeddings()
    return output is not None and output.weight is inputs.weight


def _config_and_raw(source: str | PretrainedConfig) -> tuple[PretrainedConfig, dict, str]:
    from ..modeling import resolve_config
    from .configs import shipped_config_dict

    if isinstance(source, PretrainedConfig):
        raw = {"tie_word_embeddings": getattr(source, "_declared_tie_word_embeddings", None)}
        return source, raw, getattr(source, "name_or_path", "") or source.model_type
    raw = shipped_config_dict(source)
    if raw is None:
        try:
            raw, _ = PretrainedConfig.get_config_dict(str(source))
        except OSError:
            raw = {}
    return resolve_config(source), raw, str(source)
