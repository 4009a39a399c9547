"""`tlc-hf plan`: which model to train for a budget, and which recipe compresses it to a size and latency."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time_budget", required=True, help="training budget, e.g. 2h, 45m, 90s")
    parser.add_argument("--max_size", required=True, help="deployed size, e.g. 20MB, 1.5GB, 512KiB")
    parser.add_argument("--max_latency", required=True, help="one forward pass, e.g. 15ms, 0.2s")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where it trains and serves")
    parser.add_argument(
        "--base", default="roberta-base", help="config the families grow around (name, tiny name, folder)"
    )
    parser.add_argument("--task", default="classification", help="classification or mlm (the deployed head)")
    parser.add_argument("--output_dir", default=None, help="write plan.json, plan.md, plan.png, recipe.yaml here")
    parser.add_argument("--sizes", default=None, help="explicit candidates DEPTHxWIDTH,... instead of the families")
    parser.add_argument("--sweep_fraction", type=float, default=0.1, help="share of the budget the sweep takes")
    parser.add_argument("--batch_size", type=int, default=16, help="training batch (timed and swept)")
    parser.add_argument("--seq_len", type=int, default=128, help="training sequence length")
    parser.add_argument("--latency_batch_size", type=int, default=1)
    parser.add_argument("--latency_seq_len", type=int, default=128)
    parser.add_argument("--eval_blocks", type=int, default=128, help="validation blocks per sweep evaluation")
    parser.add_argument("--learning_rate", type=float, default=1e-3, help="for the smallest candidate")
    parser.add_argument("--min_steps", type=int, default=100, help="fewer steps in the budget: too large")
    parser.add_argument("--vocab_size", type=int, default=8192, help="tokenizer trained when the base has none")
    parser.add_argument("--max_examples", type=int, default=None, help="use a subset of the embedded corpus")
    parser.add_argument("--recipes", default=None, help="comma-separated recipes to consider (default: shipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    from ..data.identity import add_data_arguments

    add_data_arguments(parser)


def run(args: argparse.Namespace, rest: list[str]) -> int:
    from ..data.identity import data_from_arguments
    from ..planning.plan import plan

    result = plan(
        args.time_budget,
        args.max_size,
        args.max_latency,
        device=args.device,
        base=args.base,
        task=args.task,
        data=data_from_arguments(args),
        output_dir=args.output_dir,
        sizes=args.sizes,
        sweep_fraction=args.sweep_fraction,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        latency_batch_size=args.latency_batch_size,
        latency_seq_len=args.latency_seq_len,
        eval_blocks=args.eval_blocks,
        learning_rate=args.learning_rate,
        min_steps=args.min_steps,
        vocab_size=args.vocab_size,
        max_examples=args.max_examples,
        recipes=args.recipes.split(",") if args.recipes else None,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(f"\n{result.table()}\n\n{result.recommendation}")
    if args.output_dir:
        extra = ", recipe.yaml (for tlc-hf compress --recipe)" if result.recipe_yaml else ""
        print(f"Wrote {args.output_dir}: plan.json, plan.md, plan.png{extra}, sweep/")
    return 0
