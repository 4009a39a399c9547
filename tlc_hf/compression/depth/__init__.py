"""Depth pruning: remove whole transformer layers (Sajjad et al. 2020, "Poor Man's BERT"; DistilBERT's
every-other-layer student), the one structural cut that shortens every operation of the forward pass.

The kept layers are re-numbered and the standard `config.num_hidden_layers` (T5: `num_layers`,
`num_decoder_layers`) says how many remain, so plain `from_pretrained` rebuilds the model. In a recipe that
fine-tunes, layers are removed *before* fine-tuning, so distillation and the other methods' schedules work on
the shallower model (and distillation maps each kept layer to the teacher layer it came from).
"""

from __future__ import annotations

from ..base import CliOption, CompressionMethod, register_method
from .config import STRATEGIES, DepthPruningConfig
from .prune import layers_to_keep, prune_depth_, teacher_layer_of

__all__ = ["STRATEGIES", "DepthPruningConfig", "layers_to_keep", "prune_depth_", "teacher_layer_of"]


def _apply(model, config, context):
    return prune_depth_(model, config)


def _describe(record: dict) -> str:
    kept = record.get("kept") or {}
    parts = [f"{path}: kept layers {indices}" for path, indices in kept.items()]
    return "removed whole layers (" + "; ".join(parts) + ")" if parts else "removed whole layers"


def _from_cli(args):
    if not args.prune_layers:
        return None
    return DepthPruningConfig(layers=args.prune_layers, strategy=args.layer_strategy)


register_method(
    CompressionMethod(
        config_class=DepthPruningConfig,
        apply=_apply,
        before_training=True,
        describe=_describe,
        cli=(
            CliOption("prune_layers", "fraction of layers to remove from each stack, e.g. 0.5", type=float),
            CliOption(
                "layer_strategy", f"which layers go: {', '.join(STRATEGIES)}", choices=STRATEGIES, default="top"
            ),
        ),
        from_cli=_from_cli,
        cli_order=5,
    )
)
