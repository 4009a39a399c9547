"""Depth/width families: scale a BERT, RoBERTa, XLM-R, T5 or mT5 config to a new depth and width."""

from __future__ import annotations

from transformers import PretrainedConfig

ENCODER_TYPES = ("bert", "roberta", "xlm-roberta")
SEQ2SEQ_TYPES = ("t5", "mt5")
SCALABLE_FAMILIES = ENCODER_TYPES + SEQ2SEQ_TYPES


def scale_config(
    base: PretrainedConfig | str,
    num_layers: int | None = None,
    hidden_size: int | None = None,
    *,
    head_dim: int | None = 64,
    ffn_ratio: float | None = None,
    **overrides,
) -> PretrainedConfig:
    """A copy of `base` (a config or a name) with `num_layers` blocks of width `hidden_size`.

    Rules (the paper's RoBERTa grid uses depth 3-24 and width 256-1536):
      - heads scale with width: `num_heads = hidden_size / head_dim` (head_dim 64 by default;
        `head_dim=None` keeps the base's head count and lets the head size change);
      - BERT-like: FFN = 4 x hidden (or `ffn_ratio` x hidden);
      - T5/mT5: d_ff keeps the base's d_ff / d_model ratio (or `ffn_ratio`), d_kv = head_dim, and the
        decoder keeps the base's decoder/encoder depth ratio (equal depth in every released T5/mT5).
    `overrides` set any other config attribute.
    """
    from ..modeling import resolve_config

    config = resolve_config(base)
    family = config.model_type
    if family not in SCALABLE_FAMILIES:
        raise ValueError(f"model_type={family!r} has no depth/width family here; supported: {SCALABLE_FAMILIES}")
    for name, value in (("num_layers", num_layers), ("hidden_size", hidden_size), ("head_dim", head_dim)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name}={value!r} must be a positive int")
    if ffn_ratio is not None and ffn_ratio <= 0:
        raise ValueError(f"ffn_ratio={ffn_ratio!r} must be > 0")

    seq2seq = family in SEQ2SEQ_TYPES
    old_width = config.d_model if seq2seq else config.hidden_size
    width = hidden_size or old_width
    heads_attr = "num_heads" if seq2seq else "num_attention_heads"
    if head_dim is None:
        heads = getattr(config, heads_attr)
        if width % heads:
            raise ValueError(f"hidden_size={width} is not divisible by the base's {heads} heads; pass head_dim")
        head_size = width // heads
    else:
        if width % head_dim:
            raise ValueError(
                f"hidden_size={width} is not a multiple of head_dim={head_dim}; pick a width like "
                f"{max(head_dim, width // head_dim * head_dim)} or another head_dim (head_dim=None keeps the head count)"
            )
        heads, head_size = width // head_dim, head_dim

    if seq2seq:
        ratio = ffn_ratio if ffn_ratio is not None else config.d_ff / config.d_model
        encoder_layers = num_layers or config.num_layers
        decoder_ratio = (config.num_decoder_layers or config.num_layers) / config.num_layers
        config.d_model, config.d_kv, config.num_heads = width, head_size, heads
        config.d_ff = int(round(width * ratio))
        config.num_layers = encoder_layers
        config.num_decoder_layers = max(1, int(round(encoder_layers * decoder_ratio)))
    else:
        ratio = ffn_ratio if ffn_ratio is not None else 4.0
        config.hidden_size, config.num_attention_heads = width, heads
        config.intermediate_size = int(round(width * ratio))
        config.num_hidden_layers = num_layers or config.num_hidden_layers
    for key, value in overrides.items():
        setattr(config, key, value)
    return config
