"""`tlc-hf compress MODEL_DIR --output_dir OUT`: one-shot compression (the registered methods' flags), or a
recipe (`--recipe`)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..compression.base import all_methods

    parser.add_argument("model_dir", help="a trained model folder (or Hub id) with its tokenizer")
    parser.add_argument("--output_dir", required=True)
    methods = parser.add_argument_group("one-shot methods (applied in this order)")
    for method in sorted(all_methods(), key=lambda m: m.cli_order):
        for option in method.cli:
            kwargs = {"help": option.help, "default": option.default}
            if option.action:
                kwargs["action"] = option.action
            else:
                kwargs.update(type=option.type, choices=option.choices)
            methods.add_argument(f"--{option.flag}", **{k: v for k, v in kwargs.items() if v is not None})
    parser.add_argument("--storage", choices=("dense", "sparse"), default="dense")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument(
        "--recipe", default=None, help="a YAML or JSON CompressionRecipe (replaces the one-shot flags)"
    )
    parser.add_argument("--task", choices=("mlm", "classification", "seq2seq"), default=None)
    parser.add_argument("--teacher", default=None, help="recipe with distillation: the fine-tuned teacher's folder")
    parser.add_argument(
        "--max_examples", type=int, default=None, help="recipe, with no data recorded in the model: a subset"
    )
    parser.add_argument(
        "--max_drop",
        type=float,
        default=0.02,
        help="one-shot: warn when accuracy falls more than this (default 0.02, 2 points) on the model's test split",
    )
    parser.add_argument(
        "--no_measure", action="store_true", help="one-shot: skip measuring the result (accuracy, size, speed)"
    )
    from ..data.identity import add_data_arguments

    add_data_arguments(parser)


def run(args: argparse.Namespace, rest: list[str]) -> int:
    import json

    from ..compression.base import all_methods
    from ..compression.loading import load_compressed, save_compressed
    from ..evaluation.bench import parameter_counts

    if args.recipe:
        from ..compression.recipe import CompressionRecipe
        from ..data.identity import data_from_arguments
        from ..workflows.recipe import run_recipe

        recipe = CompressionRecipe.load(args.recipe)
        result = run_recipe(
            recipe,
            args.model_dir,
            args.output_dir,
            task=args.task,
            teacher_dir=args.teacher,
            data=data_from_arguments(args),
            max_examples=args.max_examples,
            overwrite=args.overwrite,
        )
        print(json.dumps(result.get("compressed", result), indent=2))
        print(f"Wrote {args.output_dir} (model with the recipe in config.json, report, README.md)")
        return 0
    steps = []  # every config is built (and validated) before any work
    for method in sorted(all_methods(), key=lambda m: m.cli_order):
        config = method.from_cli(args) if method.from_cli is not None else None
        if config is not None:
            steps.append((method, config))
    if not steps:
        flags = [f"--{o.flag}" for m in all_methods() for o in m.cli if o.action is None and o.default is None]
        raise ValueError(f"nothing to do: give one of {', '.join(flags)}, or --recipe")
    from transformers import AutoConfig, AutoTokenizer

    from ..compression.compress import compress_
    from ..compression.context import CompressionContext, provided
    from ..compression.recipe import CompressionRecipe
    from ..data.identity import data_from_arguments, data_identity, resolve_data

    recipe = CompressionRecipe(methods=[config for _, config in steps])  # refuses pairs that cannot compose
    requested = data_from_arguments(args)
    known_data = requested is not None or data_identity(AutoConfig.from_pretrained(args.model_dir)) is not None
    recipe.check_requirements(provided(tokenizer=True, data=known_data, task=False), where="tlc-hf compress")
    model = load_compressed(args.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    data, _ = resolve_data(model, requested)  # loaded only by a method that needs data
    context = CompressionContext(tokenizer=tokenizer, data=data)
    before = parameter_counts(model)
    for method, config in steps:
        result = compress_(model, config, context)
        model, context = result.model, CompressionContext(tokenizer=result.tokenizer, data=data)
        print(f"{method.name}: {method.describe(result.records[-1] if result.records else config.to_dict())}")
    save_compressed(model, args.output_dir, context.tokenizer, storage=args.storage, overwrite=args.overwrite)
    print(json.dumps({"params_before": before.get("params_total"), **parameter_counts(model)}, indent=2))
    print(f"Wrote {args.output_dir}; load it with from_pretrained after `import tlc_hf`, or tlc_hf.load_compressed")
    if args.no_measure:
        return 0
    if not known_data:
        print("Not measured: the model records no training data (train it with tlc-hf train, or give --dataset)")
        return 0
    from ..hub.report import build_report, one_shot_summary

    report = build_report(args.output_dir, args.model_dir, data=data, max_examples=args.max_examples or 512)
    report.save(args.output_dir)
    line, warning = one_shot_summary(report, args.max_drop, model_dir=args.model_dir)
    print(line)
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    return 0
