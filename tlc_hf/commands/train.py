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
    _check_durations(rest)
    command, training_args = parser.parse_args_into_dataclasses(rest)
    _check_output_dir(training_args, command)
    result = train(command, training_args)
    if result.get("preempted"):
        print(f"Stopped by a signal; resume with: tlc-hf train ... --resume_from_checkpoint {result['checkpoint']}")
    return 0


_DURATION_FLAGS = ("--time_budget", "--eval_every", "--save_every", "--log_every")


def _check_durations(argv: list[str]) -> None:
    """`--time_budget -5s` would reach argparse as a flag; say what is wrong with the value instead."""
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag in _DURATION_FLAGS and value.startswith("-") and value[1:2].isdigit():
            raise ValueError(f"{flag} {value}: a duration must be positive, e.g. 90s, 45m, 2h30m")


def _check_output_dir(training_args, command) -> None:
    import os

    out = training_args.output_dir
    if not out or not str(out).strip():
        raise ValueError("--output_dir is empty; give the folder to train into")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--output_dir {out!r} is a file; give a folder")
    resuming = training_args.resume_from_checkpoint not in (None, "", "False", "false")
    if os.path.isdir(out) and os.listdir(out) and not resuming and not command.overwrite_output_dir:
        raise ValueError(
            f"--output_dir {out!r} is not empty; pass --overwrite_output_dir to train into it anyway, or "
            "--resume_from_checkpoint True to continue the run in it"
        )
