"""RoBERTa MLM pretraining under a wall-clock budget (the paper's setup), on a Hub corpus.

    accelerate launch examples/pretrain_mlm.py --dataset wikitext --dataset_config wikitext-103-raw-v1 \\
        --num_layers 24 --hidden_size 1024 --time_budget 24h --output_dir out/roberta-large-24h \\
        --per_device_train_batch_size 64 --learning_rate 5e-4 --time_warmup_ratio 0.06 --eval_every 30m
    python examples/pretrain_mlm.py --tiny --output_dir out/tiny   # CPU smoke run on the embedded corpus
"""

import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from tlc_hf import (
    BudgetTrainer,
    BudgetTrainingArguments,
    MLMCollator,
    apply_fixed_mask,
    build_mlm_dataset,
    load_corpus,
    scale_config,
    train_tokenizer,
)
from tlc_hf.errors import run_script
from tlc_hf.evaluation import masked_token_loss_sums, perplexity_metrics
from tlc_hf.modeling import build_model


@dataclass
class ExampleArguments:
    config: str = field(default="roberta-base", metadata={"help": "Base config (shipped name, file or Hub id)."})
    num_layers: int | None = field(default=None, metadata={"help": "Depth of the scaled config."})
    hidden_size: int | None = field(default=None, metadata={"help": "Width of the scaled config."})
    dataset: str | None = field(default=None, metadata={"help": "Hub dataset or local folder; default: embedded."})
    dataset_config: str | None = field(default=None)
    text_column: str | None = field(default=None)
    vocab_size: int = field(default=32768)
    block_size: int = field(default=128)
    tiny: bool = field(default=False, metadata={"help": "A seconds-long CPU run with a tiny model."})


def main():
    example, args = HfArgumentParser((ExampleArguments, BudgetTrainingArguments)).parse_args_into_dataclasses(
        args=None, look_for_args_file=False
    )
    corpus = load_corpus(
        example.dataset,
        example.dataset_config,
        text_column=example.text_column,
        max_examples=2000 if example.tiny else None,
    )
    if example.tiny:
        example.config, example.vocab_size, example.block_size = "roberta-tiny", 1000, 64
    tokenizer = train_tokenizer("roberta", example.vocab_size, corpus)
    blocks = build_mlm_dataset(tokenizer, corpus, block_size=example.block_size)
    config = scale_config(example.config, example.num_layers, example.hidden_size, head_dim=16 if example.tiny else 64)
    config.vocab_size, config.pad_token_id = len(tokenizer), tokenizer.pad_token_id
    config.max_position_embeddings = max(config.max_position_embeddings, example.block_size + 2)
    trainer = BudgetTrainer(
        model=build_model(config, "mlm"),
        args=args,
        train_dataset=blocks["train"],
        eval_dataset=apply_fixed_mask(
            blocks["validation"].select(range(min(512, len(blocks["validation"])))), tokenizer
        ),
        data_collator=MLMCollator(tokenizer, seed=args.seed),
        processing_class=tokenizer,
        compute_metrics=perplexity_metrics,
        preprocess_logits_for_metrics=masked_token_loss_sums,
    )
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    trainer.save_model()
    metrics = trainer.evaluate()
    if trainer.is_world_process_zero():
        print(f"perplexity {metrics['eval_perplexity']:.1f} after {trainer.budget_callback.elapsed_s:.1f} s")


if __name__ == "__main__":
    sys.exit(run_script(main))
