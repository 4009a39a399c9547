"""`tlc-hf compress MODEL_DIR --output_dir OUT`: one-shot post-training compression (prune, quantize, export)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="a trained model folder (or Hub id) with its tokenizer")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--prune_magnitude", type=float, default=None, help="unstructured sparsity, e.g. 0.5")
    parser.add_argument("--prune_scope", choices=("local", "global"), default="local")
    parser.add_argument("--prune_heads", type=float, default=None, help="fraction of attention heads to remove")
    parser.add_argument("--prune_ffn", type=float, default=None, help="fraction of FFN neurons to remove")
    parser.add_argument("--uniform", action="store_true", help="structured: same count per layer")
    parser.add_argument("--quantize", choices=("simulated", "torchao", "onnxruntime", "bitsandbytes"), default=None)
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--weight_only", action="store_true", help="torchao: int8 weights, float activations")
    parser.add_argument("--export", choices=("onnx",), default=None, help="onnx = ONNX Runtime int8 for CPU serving")
    parser.add_argument("--storage", choices=("dense", "sparse"), default="dense")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument(
        "--recipe", default=None, help="a YAML or JSON CompressionRecipe (replaces the one-shot flags)"
    )
    parser.add_argument("--task", choices=("mlm", "classification", "seq2seq"), default=None)
    parser.add_argument("--teacher", default=None, help="recipe with distillation: the fine-tuned teacher's folder")
    parser.add_argument("--max_examples", type=int, default=None, help="recipe: use a subset of the corpus")


def run(args: argparse.Namespace, rest: list[str]) -> int:
    import json

    from transformers import AutoTokenizer

    from ..compression import QuantizationConfig, load_compressed, prune_magnitude_, prune_structured_, quantize
    from ..compression.loading import save_compressed
    from ..evaluation.bench import parameter_counts

    if args.recipe:
        from ..compression.recipe import CompressionRecipe, run_recipe

        recipe = CompressionRecipe.load(args.recipe)
        result = run_recipe(
            recipe,
            args.model_dir,
            args.output_dir,
            task=args.task,
            teacher_dir=args.teacher,
            max_examples=args.max_examples,
            overwrite=args.overwrite,
        )
        print(json.dumps(result.get("compressed", result), indent=2))
        print(f"Wrote {args.output_dir} (model, tlc_compression.json with the recipe, report, README.md)")
        return 0
    if args.export == "onnx":
        if args.quantize not in (None, "onnxruntime"):
            raise ValueError(
                f"--export onnx is ONNX Runtime int8; it does not combine with --quantize {args.quantize}"
            )
        args.quantize = "onnxruntime"
    quant_config = (
        QuantizationConfig(backend=args.quantize, bits=args.bits, weight_only=args.weight_only)
        if args.quantize
        else None
    )  # validated before any work
    model = load_compressed(args.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    before = parameter_counts(model)
    steps = []
    if args.prune_heads or args.prune_ffn:
        report = prune_structured_(
            model, heads=args.prune_heads or 0.0, ffn=args.prune_ffn or 0.0, uniform=args.uniform
        )
        steps.append(f"structured: {report['params_before']:,} -> {report['params_after']:,} parameters")
    if args.prune_magnitude:
        report = prune_magnitude_(model, args.prune_magnitude, scope=args.prune_scope)
        steps.append(f"magnitude: {report['target_sparsity']:.1%} of the target weights are zero")
    if quant_config is not None:
        model = quantize(model, quant_config)
        steps.append(f"quantization: {quant_config.bits}-bit with {quant_config.backend}")
    if not steps:
        raise ValueError("nothing to do: give --prune_magnitude, --prune_heads/--prune_ffn, --quantize or --export")
    save_compressed(model, args.output_dir, tokenizer, storage=args.storage, overwrite=args.overwrite)
    print("\n".join(steps))
    print(json.dumps({"params_before": before.get("params_total"), **parameter_counts(model)}, indent=2))
    print(f"Wrote {args.output_dir}; load it with tlc_hf.load_compressed({args.output_dir!r})")
    return 0
