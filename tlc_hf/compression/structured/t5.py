"""T5 attention with its own subset of heads, for layers pruned unevenly.

T5 computes the relative-position bias once per stack (in the first layer) for all heads and passes it
to every later layer. A layer that kept heads {2, 5} must add bias columns 2 and 5, and must pass the
full bias on: this class does both, and is a drop-in for `T5Attention` (same parameters, same names).
"""

from __future__ import annotations

import torch
from transformers.cache_utils import EncoderDecoderCache
from transformers.models.t5.modeling_t5 import T5Attention


class PrunedT5Attention(T5Attention):
    """`T5Attention` that keeps the heads `kept_head_indices` (indices into the original heads).

    The indices are a plain list, not a buffer: the module may be built on the meta device by
    `from_pretrained`, and nothing about it needs loading.
    """

    @property
    def kept_heads(self) -> torch.Tensor:
        return torch.tensor(self.kept_head_indices, dtype=torch.long)

    def forward(self, hidden_states, mask=None, key_value_states=None, position_bias=None, cache=None, **kwargs):
        cache = kwargs.pop("past_key_values", cache)  # the name before transformers 5.2x
        if position_bias is None:
            position_bias = self._full_position_bias(hidden_states, key_value_states, cache)
        local_bias = position_bias.index_select(1, self.kept_heads.to(position_bias.device))
        output, _, weights = super().forward(hidden_states, mask, key_value_states, local_bias, cache=cache, **kwargs)
        return output, position_bias, weights

    def _full_position_bias(self, hidden_states, key_value_states, past_key_values) -> torch.Tensor:
        query_length = hidden_states.shape[1]
        past_seen = 0
        if past_key_values is not None:
            cache = (
                past_key_values.self_attention_cache
                if isinstance(past_key_values, EncoderDecoderCache)
                else past_key_values
            )
            past_seen = cache.get_seq_length(self.layer_idx)
        key_length = key_value_states.shape[1] if key_value_states is not None else query_length + past_seen
        if not self.has_relative_attention_bias:
            return torch.zeros(
                (1, self.original_heads, query_length, key_length),
                device=hidden_states.device,
                dtype=hidden_states.dtype,
            )
        return self.compute_bias(query_length, key_length, device=hidden_states.device, past_seen_tokens=past_seen)


def make_pruned_t5_attention(module: T5Attention, kept_heads: list[int], original_heads: int) -> None:
    """Turn `module` (a `T5Attention` or mT5's copy of it, `MT5Attention`) into a `PrunedT5Attention` in place
    (its parameters are untouched); `unprune_t5_attention_` gives it its own class back."""
    if not isinstance(module, PrunedT5Attention):
        module.unpruned_class = type(module)  # MT5Attention is a copy of T5Attention, not a subclass
    module.__class__ = PrunedT5Attention
    module.original_heads = original_heads
    module.kept_head_indices = [int(h) for h in kept_heads]
    module.n_heads = len(kept_heads)
    module.inner_dim = module.n_heads * module.key_value_proj_dim


def unprune_t5_attention_(module: PrunedT5Attention, n_heads: int) -> None:
    """Make `module` the plain attention class it was before pruning, with `n_heads` heads (its kept ones);
    the caller has sliced any relative-position bias to the kept heads."""
    module.__class__ = module.__dict__.pop("unpruned_class", T5Attention)
    del module.kept_head_indices
    module.n_heads, module.inner_dim = n_heads, n_heads * module.key_value_proj_dim
