"""Magnitude pruning: one-shot (`prune_magnitude_`) and gradual during training (Zhu & Gupta 2017)."""

from ..base import CliOption, CompressionMethod, register_method
from .callback import MagnitudePruningCallback
from .config import MagnitudePruningConfig
from .prune import prune_magnitude_

__all__ = ["MagnitudePruningCallback", "MagnitudePruningConfig", "prune_magnitude_"]


def _apply(model, config, context):
    prune_magnitude_(model, config=config)
    return model


def _describe(record: dict) -> str:
    return (
        f"unstructured, {record.get('sparsity', 0):.0%} of the target weights set to zero, {record.get('scope')} scope"
    )


def _from_cli(args):
    return (
        MagnitudePruningConfig(sparsity=args.prune_magnitude, scope=args.prune_scope) if args.prune_magnitude else None
    )


register_method(
    CompressionMethod(
        config_class=MagnitudePruningConfig,
        apply=_apply,
        callback=MagnitudePruningCallback,
        describe=_describe,
        cli=(
            CliOption("prune_magnitude", "unstructured sparsity of the target weights, e.g. 0.5", type=float),
            CliOption(
                "prune_scope",
                "magnitude: per module (local) or one threshold (global)",
                choices=("local", "global"),
                default="local",
            ),
        ),
        from_cli=_from_cli,
        cli_order=20,
    )
)
