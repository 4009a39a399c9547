"""`tlc-hf train`: train a model on a task under a wall-clock budget; every TrainingArguments flag passes through."""

from __future__ import annotations

import argparse

from ..workflows.train import TrainCommandArguments, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags are parsed by HfArgumentParser in `run`; `--help` is answered there."""
    parser.add_argument("-h", "--help", action="store_true", help="show the train options and exit")


def _parser():
    from transformers import HfArgumentParser

    from ..training.arguments import BudgetSeq2SeqTrainingArguments

    return HfArgumentParser(
        (TrainCommandArguments, BudgetSeq2SeqTrainingArguments),
        prog="tlc-hf train",
        description="Train a model under a wall-clock budget. Every transformers TrainingArguments flag passes "
        "through (e.g. --learning_rate 5e-4 --per_device_train_batch_size 32).",
    )


def run(args: argparse.Namespace, rest: list[str]) -> int:
    parser = _parser()
    if args.help:
        parser.print_help()
        return 0
    command, training_args = parser.parse_args_into_dataclasses(rest)
    result = train(command, training_args)
    if result.get("preempted"):
        print(f"Stopped by a signal; resume with: tlc-hf train ... --resume_from_checkpoint {result['checkpoint']}")
    return 0
