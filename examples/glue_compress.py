"""GLUE/MNLI fine-tuning under a budget, then a compression recipe, a measured model card, and a push.

    accelerate launch examples/glue_compress.py --model_name_or_path FacebookAI/roberta-large \\
        --dataset glue --dataset_config mnli --time_budget 2h --recipe recipes/kd_prune_qat.yaml \\
        --output_dir out/mnli --push_to me/roberta-large-mnli-compressed
    python examples/glue_compress.py --tiny --output_dir out/tiny   # CPU smoke run on the embedded reviews
"""

import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from tlc_hf import CompressionRecipe, push_compressed_to_hub, run_recipe
from tlc_hf.errors import run_script
from tlc_hf.training.arguments import BudgetSeq2SeqTrainingArguments
from tlc_hf.workflows.train import TrainCommandArguments, train

TINY_RECIPE = {
    "methods": [
        {"method": "magnitude", "sparsity": 0.5},
        {"method": "quantization", "backend": "torchao", "weight_only": True},
    ]
}


@dataclass
class ExampleArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": "Pretrained model (Hub id or folder)."})
    config: str | None = field(default=None, metadata={"help": "Or train from scratch with this config."})
    dataset: str | None = field(
        default=None,
        metadata={"help": "Hub dataset or local folder; default glue (mnli), or with --tiny the embedded reviews."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Default: mnli for glue."})
    recipe: str | None = field(default=None, metadata={"help": "A CompressionRecipe YAML/JSON file."})
    push_to: str | None = field(default=None, metadata={"help": "Hub repo id to push the compressed model to."})
    tiny: bool = field(default=False)


def main():
    example, args = HfArgumentParser((ExampleArguments, BudgetSeq2SeqTrainingArguments)).parse_args_into_dataclasses()
    if example.tiny:
        example.config, example.model_name_or_path = example.config or "bert-tiny", None
    elif example.dataset is None:
        example.dataset, example.dataset_config = "glue", example.dataset_config or "mnli"
    command = TrainCommandArguments(
        model_name_or_path=example.model_name_or_path,
        config=example.config,
        task="classification",
        dataset=example.dataset,
        dataset_config=example.dataset_config,
        vocab_size=1000 if example.tiny else 8192,
        max_length=64 if example.tiny else 128,
    )
    train(command, args)
    if not args.should_save:  # other ranks are done: compression and push run on the main process
        return
    recipe = CompressionRecipe.load(example.recipe) if example.recipe else CompressionRecipe.from_dict(TINY_RECIPE)
    compressed = os.path.join(args.output_dir, "compressed")
    # the recipe fine-tunes and evaluates on the data recorded in the trained model (its own split)
    report = run_recipe(recipe, args.output_dir, compressed, task="classification", overwrite=True)
    print(
        f"accuracy {report['compressed']['metrics']['accuracy']:.3f}, {report['compressed']['size_mb']:.2f} MB "
        f"(baseline {report['baseline']['metrics']['accuracy']:.3f}, {report['baseline']['size_mb']:.2f} MB)"
    )
    if example.push_to:
        print(push_compressed_to_hub(compressed, example.push_to))


if __name__ == "__main__":
    sys.exit(run_script(main))
