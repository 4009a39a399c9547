"""`tlc-hf sweep`: train a grid of sizes under the same wall-clock budget; write sweep.json and curves.png."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", required=True, help="depth x width list, e.g. 2x64,4x128,4x256")
    parser.add_argument("--time_budget", default="20s", help="budget per size, e.g. 20s, 10m, 2h (default 20s)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--base", default="roberta-tiny", help="config the sizes scale (bert/roberta/xlm-roberta)")
    parser.add_argument("--head_dim", type=int, default=64, help="attention head size; heads = width / head_dim")
    parser.add_argument("--batch_sizes", default="16", help="one or more batch sizes, e.g. 16,32,64")
    parser.add_argument(
        "--lr_scaling",
        default="linear",
        choices=("linear", "sqrt", "none"),
        help="LR rule across batch sizes; --learning_rate suits the first batch size",
    )
    parser.add_argument("--learning_rate", type=float, default=5e-4)
    parser.add_argument("--target_perplexity", type=float, default=None)
    parser.add_argument("--eval_every", default=None, help="evaluation interval (default: budget / 8)")
    parser.add_argument("--vocab_size", type=int, default=8192)
    parser.add_argument("--block_size", type=int, default=128)
    parser.add_argument("--max_examples", type=int, default=None, help="use a subset of the embedded corpus")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace, rest: list[str]) -> int:
    from ..scaling.sweep import run_sweep

    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        raise ValueError(f"--batch_sizes={args.batch_sizes!r} must be comma-separated ints, e.g. 16,32") from None
    sweep = run_sweep(
        args.sizes,
        output_dir=args.output_dir,
        budget=args.time_budget,
        base=args.base,
        head_dim=args.head_dim,
        batch_sizes=batch_sizes,
        lr_scaling=args.lr_scaling,
        learning_rate=args.learning_rate,
        target_perplexity=args.target_perplexity,
        eval_every=args.eval_every,
        vocab_size=args.vocab_size,
        block_size=args.block_size,
        max_examples=args.max_examples,
        seed=args.seed,
    )
    print(f"\n{'run':<18}{'params':>10}{'steps':>7}{'tokens/s':>10}{'perplexity':>12}{'to target':>11}")
    for r in sweep["runs"]:
        to_target = "-" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.1f}s"
        print(
            f"{r['label']:<18}{r['params'] / 1e6:>9.2f}M{r['steps']:>7}{r['tokens_per_s']:>10.0f}"
            f"{r['final_perplexity']:>12.1f}{to_target:>11}"
        )
    print(f"\n{sweep['recommendation']['text']}")
    print(f"Wrote {args.output_dir}/sweep.json and {args.output_dir}/curves.png")
    return 0
