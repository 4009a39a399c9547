"""The combination study in miniature (Movva et al. 2022): every subset of {KD, 50% magnitude pruning, int8 QAT}
applied to one student under the same fine-tuning budget, on the embedded sentiment task.

A larger teacher (2 x 128, twice the student's width) is trained first; on 2 CPU cores deeper models trained
from scratch for minutes stay at chance on this task, so the teacher is wider, not deeper. Each run starts from the same student initialization. Writes a table
(JSON) and a plot of accuracy against size on disk; the {} vs {KD} rows answer "does KD help at this scale?".

    python benchmarks/combinations.py [--teacher_budget 150s --student_budget 30s --source rotten_tomatoes]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path

from tlc_hf import CompressionRecipe, run_recipe, save_compressed
from tlc_hf.data import load_corpus, train_tokenizer
from tlc_hf.modeling import build_model
from tlc_hf.scaling import scale_config
from tlc_hf.training.arguments import BudgetSeq2SeqTrainingArguments
from tlc_hf.workflows.train import TrainCommandArguments, train

PARTS = {
    "kd": {"distillation": {"alpha": 0.5, "temperature": 2.0}},
    "prune": {"methods": [{"method": "magnitude", "sparsity": 0.5, "start": 0.1, "end": 0.7, "update_every": 5}]},
    "qat": {
        "methods": [{"method": "quantization", "backend": "torchao", "weight_only": True, "qat": True, "start": 0.5}]
    },
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher_budget", default="150s")
    parser.add_argument("--student_budget", default="30s")
    parser.add_argument("--source", default="rotten_tomatoes")
    parser.add_argument("--out", default="benchmarks/results/combinations")
    parser.add_argument("--teacher_dir", default=None, help="use this fine-tuned teacher (same tokenizer) instead")
    parser.add_argument("--combinations", default=None, help="only these, e.g. 'fine-tune only,kd'")
    cli = parser.parse_args()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    out = Path(cli.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(source=cli.source, seed=0)
    tokenizer = train_tokenizer("roberta", 4096, corpus)

    teacher_dir = Path(cli.teacher_dir) if cli.teacher_dir else out / "teacher"
    command = TrainCommandArguments(
        config="roberta-tiny",
        num_layers=4,
        hidden_size=256,
        head_dim=64,
        task="classification",
        source=cli.source,
        vocab_size=4096,
        max_length=64,
    )
    args = BudgetSeq2SeqTrainingArguments(
        output_dir=str(teacher_dir),
        time_budget=cli.teacher_budget,
        learning_rate=1e-3,
        per_device_train_batch_size=32,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
    )
    if cli.teacher_dir:
        from tlc_hf import evaluate_model, load_compressed

        teacher_metrics = {
            "eval_accuracy": evaluate_model(
                load_compressed(str(teacher_dir)),
                tokenizer,
                "classification",
                corpus,
                split="validation",
                show_progress=False,
            )["accuracy"]
        }
    else:
        teacher_metrics = train(command, args)["metrics"]

    student_config = scale_config("roberta-tiny", 2, 64, head_dim=32)
    student_config.vocab_size, student_config.pad_token_id = len(tokenizer), tokenizer.pad_token_id
    student_config.num_labels = 2
    save_compressed(build_model(student_config, "classification"), out / "student_init", tokenizer, overwrite=True)

    rows = []
    for size in range(len(PARTS) + 1):
        for subset in itertools.combinations(PARTS, size):
            recipe = {
                "budget": cli.student_budget,
                "training": {"learning_rate": 1e-3, "per_device_train_batch_size": 32},
            }
            for part in subset:
                for key, value in PARTS[part].items():
                    recipe[key] = recipe.get(key, []) + value if key == "methods" else value
            name = "+".join(subset) or "fine-tune only"
            if cli.combinations and name not in cli.combinations.split(","):
                continue
            print(f"running: {name}")
            report = run_recipe(
                CompressionRecipe.from_dict(recipe),
                str(out / "student_init"),
                str(out / (name.replace("+", "_").replace(" ", "_"))),
                task="classification",
                teacher_dir=str(teacher_dir) if "kd" in subset else None,
                corpus=corpus,
                overwrite=True,
            )
            compressed = report["compressed"]
            rows.append(
                {
                    "combination": name,
                    "accuracy": compressed["metrics"]["accuracy"],
                    "size_mb": compressed["size_mb"],
                    "sparsity": compressed["sparsity"],
                    "bits": compressed["bits"],
                }
            )
            print(json.dumps(rows[-1]))
    result = {
        "teacher_accuracy": teacher_metrics.get("eval_accuracy"),
        "teacher_budget": cli.teacher_budget,
        "student_budget": cli.student_budget,
        "source": cli.source,
        "rows": rows,
    }
    (out / "combinations.json").write_text(json.dumps(result, indent=2))
    plot(rows, out / "combinations.png", result)
    print(f"\nteacher (2x128) accuracy {result['teacher_accuracy']:.3f}")
    for row in rows:
        print(
            f"{row['combination']:22s} accuracy {row['accuracy']:.3f}  size {row['size_mb']:.3f} MB  "
            f"sparsity {row['sparsity']:.2f}  bits {row['bits']}"
        )


def plot(rows, path, result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for row in rows:
        ax.scatter(row["size_mb"], row["accuracy"], s=50)
        ax.annotate(
            row["combination"],
            (row["size_mb"], row["accuracy"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("size on disk (MB)")
    ax.set_ylabel("sentiment accuracy (test split)")
    ax.set_title(f"KD / pruning / QAT combinations, {result['student_budget']} fine-tuning each")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
