"""`tlc-hf params NAME`: parameter counts by part (offline for shipped names), optionally of a scaled config."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", help="a shipped name (roberta-large, t5-11b, mt5-base, ...), a tiny name, a config.json, or a Hub id"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--num_layers", type=int, help="scale the config to this depth first")
    parser.add_argument("--hidden_size", type=int, help="scale the config to this width first")
    parser.add_argument("--head_dim", type=int, default=64, help="head size when scaling (default 64)")


def run(args: argparse.Namespace, rest: list[str]) -> int:
    from ..scaling import param_breakdown, scale_config

    source = args.name
    if args.num_layers or args.hidden_size:
        source = scale_config(args.name, args.num_layers, args.hidden_size, head_dim=args.head_dim)
        source.name_or_path = f"{args.name} scaled to {source_depth(source)} layers x {source_width(source)}"
    breakdown = param_breakdown(source)
    print(json.dumps(breakdown, indent=2) if args.json else format_table(breakdown))
    return 0


def source_depth(config) -> int:
    return getattr(config, "num_hidden_layers", None) or config.num_layers


def source_width(config) -> int:
    return getattr(config, "hidden_size", None) or config.d_model


def format_table(breakdown: dict) -> str:
    total = breakdown["total"]
    depth = f"{breakdown.get('num_layers')} layers"
    if breakdown.get("num_decoder_layers") is not None:
        depth = f"{breakdown['num_layers']}+{breakdown['num_decoder_layers']} layers"
    lines = [
        f"{breakdown['name']} ({breakdown.get('model_type')}, {depth}, hidden {breakdown.get('hidden_size')})",
        f"{'part':<12}{'parameters':>16}{'share':>9}",
    ]
    from ..scaling.breakdown import PARTS

    for part in PARTS:
        lines.append(f"{part:<12}{breakdown[part]:>16,}{breakdown[part] / total:>9.1%}")
    lines.append(f"{'total':<12}{total:>16,}{1:>9.1%}   ({_human(total)})")
    lines += [f"note: {note}" for note in breakdown["notes"]]
    return "\n".join(lines)


def _human(count: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(count)
