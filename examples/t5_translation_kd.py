"""T5/mT5 translation under a wall-clock budget, distilled from a larger teacher, scored with BLEU.

    accelerate launch examples/t5_translation_kd.py --dataset wmt16 --dataset_config ro-en \\
        --student google-t5/t5-small --teacher google-t5/t5-base --source_lang en --target_lang ro \\
        --time_budget 4h --output_dir out/t5-kd --predict_with_generate true
    python examples/t5_translation_kd.py --tiny --output_dir out/tiny   # CPU smoke run on generated pairs
"""

import sys
from dataclasses import dataclass, field

from datasets import Dataset, DatasetDict
from transformers import AutoTokenizer, DataCollatorForSeq2Seq, HfArgumentParser

from tlc_hf import (
    BudgetSeq2SeqTrainingArguments,
    DistillationConfig,
    DistillationSeq2SeqTrainer,
    build_seq2seq_dataset,
    evaluate_model,
    load_corpus,
    train_tokenizer,
)
from tlc_hf.errors import run_script
from tlc_hf.modeling import build_model, load_model, resolve_config


@dataclass
class ExampleArguments:
    student: str = field(default="google-t5/t5-small")
    teacher: str = field(default="google-t5/t5-base")
    dataset: str | None = field(
        default=None,
        metadata={"help": "Hub dataset or local folder; default wmt16 (ro-en), or generated pairs with --tiny."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Default: ro-en for wmt16."})
    source_lang: str = field(default="en")
    target_lang: str = field(default="ro")
    alpha: float = field(default=0.5)
    temperature: float = field(default=2.0)
    tiny: bool = field(default=False)


def to_pairs(corpus: DatasetDict, source: str, target: str) -> DatasetDict:
    """WMT rows {"translation": {"en": ..., "ro": ...}} -> {"source", "target"}; other corpora pass through."""
    if "translation" not in corpus["train"].column_names:
        return corpus
    return corpus.map(
        lambda rows: {
            "source": [t[source] for t in rows["translation"]],
            "target": [t[target] for t in rows["translation"]],
        },
        batched=True,
        remove_columns=corpus["train"].column_names,
    )


def generated_pairs(n: int = 480) -> DatasetDict:
    """Sentence pairs made on the spot for --tiny (no download): the target is the source's words reversed."""
    words = ["the", "a", "film", "story", "actor", "plot", "good", "bad", "great", "dull", "scene", "music"]
    sources = [" ".join(words[(i * 7 + j * 5) % len(words)] for j in range(4 + i % 7)) for i in range(n)]
    rows = {"source": sources, "target": [" ".join(reversed(s.split())) for s in sources]}
    pairs = Dataset.from_dict(rows)
    return DatasetDict(
        train=pairs.select(range(n - 80)),
        validation=pairs.select(range(n - 80, n - 40)),
        test=pairs.select(range(n - 40, n)),
    )


def main():
    example, args = HfArgumentParser((ExampleArguments, BudgetSeq2SeqTrainingArguments)).parse_args_into_dataclasses()
    if example.tiny and example.dataset is None:
        corpus = generated_pairs()
    else:
        if example.dataset is None:
            example.dataset, example.dataset_config = "wmt16", example.dataset_config or "ro-en"
        corpus = load_corpus(example.dataset, example.dataset_config)
        corpus = to_pairs(corpus, example.source_lang, example.target_lang)
    prefix = f"translate {example.source_lang} to {example.target_lang}: "
    if example.tiny:
        tokenizer = train_tokenizer(
            "t5", 400, list(corpus["train"]["source"]) + list(corpus["train"]["target"]), cache=False
        )
        student = build_model(resolve_config("t5-tiny", vocab_size=len(tokenizer)), "seq2seq")
        teacher = build_model(resolve_config("t5-tiny", vocab_size=len(tokenizer), d_model=64, d_ff=256), "seq2seq")
    else:
        tokenizer = AutoTokenizer.from_pretrained(example.student)
        student, teacher = load_model(example.student, "seq2seq"), load_model(example.teacher, "seq2seq")
    data = build_seq2seq_dataset(tokenizer, corpus, prefix=prefix, max_target_length=128)
    trainer = DistillationSeq2SeqTrainer(
        model=student,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=DataCollatorForSeq2Seq(tokenizer),
        processing_class=tokenizer,
        teacher_model=teacher,
        distillation=DistillationConfig(alpha=example.alpha, temperature=example.temperature),
    )
    trainer.train()
    trainer.save_model()
    if trainer.is_world_process_zero():
        result = evaluate_model(
            trainer.model,
            tokenizer,
            "seq2seq",
            corpus,
            split="test",
            max_examples=64,
            max_length=128,
            show_progress=False,
        )
        print(f"BLEU {result['bleu']:.2f}, exact match {result['exact_match']:.3f}")


if __name__ == "__main__":
    sys.exit(run_script(main))
