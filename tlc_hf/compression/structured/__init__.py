"""Structured pruning: remove whole attention heads and FFN neurons, so the model really shrinks."""

from ..base import CliOption, CompressionMethod, register_method
from .callback import StructuredPruningCallback
from .config import StructuredPruningConfig
from .prune import prune_structured_, restore_layout_
from .t5 import PrunedT5Attention

__all__ = ["PrunedT5Attention", "StructuredPruningCallback", "StructuredPruningConfig", "prune_structured_"]


def _apply(model, config, context):
    batches = context.batches() if config.importance == "gradient" else None
    prune_structured_(model, config=config, dataloader=batches)
    return model


def _requires(config) -> set[str]:
    return {"batches"} if config.importance == "gradient" else set()


def _restore(model, record: dict) -> None:
    if record.get("layout") and not record.get("native"):
        restore_layout_(model, record["layout"])


def _describe(record: dict) -> str:
    return (
        f"removed {record.get('heads', 0):.0%} of attention heads and {record.get('ffn', 0):.0%} of FFN "
        f"neurons ({record.get('importance')} importance)"
    )


def _from_cli(args):
    if not (args.prune_heads or args.prune_ffn):
        return None
    return StructuredPruningConfig(heads=args.prune_heads or 0.0, ffn=args.prune_ffn or 0.0, uniform=args.uniform)


register_method(
    CompressionMethod(
        config_class=StructuredPruningConfig,
        apply=_apply,
        callback=StructuredPruningCallback,
        restore=_restore,
        requires=_requires,
        describe=_describe,
        cli=(
            CliOption("prune_heads", "fraction of attention heads to remove, e.g. 0.5", type=float),
            CliOption("prune_ffn", "fraction of FFN neurons to remove, e.g. 0.5", type=float),
            CliOption("uniform", "structured: the same count in every layer", action="store_true"),
        ),
        from_cli=_from_cli,
        cli_order=10,
    )
)
