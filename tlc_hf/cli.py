"""The `tlc-hf` command line: one subcommand per job, each in its own module under `tlc_hf.commands`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, list[str]], int]
    # a command that hands its flags on to HfArgumentParser (all TrainingArguments flags) sets this
    passes_through: bool = False


def _version() -> str:
    from . import __version__

    return __version__


def _train_command() -> Command:
    from .commands.train import add_arguments, run

    return Command(
        "train a model under a wall-clock budget (MLM, classification or seq2seq)", add_arguments, run, True
    )


def _params_command() -> Command:
    from .commands.params import add_arguments, run

    return Command("parameter counts and their breakdown for a model name or config", add_arguments, run)


def _sweep_command() -> Command:
    from .commands.sweep import add_arguments, run

    return Command("train a grid of model sizes under the same wall-clock budget", add_arguments, run)


def _compress_command() -> Command:
    from .commands.compress import add_arguments, run

    return Command("prune / quantize / export a trained model (one-shot)", add_arguments, run)


def _demo_command() -> Command:
    from .commands.demo import add_arguments, run

    return Command("the main job: train large, then compress, end to end on the embedded corpus", add_arguments, run)


def _hub_command(name: str, help_text: str) -> Command:
    from .commands import hub

    return Command(help_text, getattr(hub, f"add_{name}_arguments"), getattr(hub, f"run_{name}"))


def _commands() -> dict[str, Command]:
    return {
        "params": _params_command(),
        "train": _train_command(),
        "sweep": _sweep_command(),
        "compress": _compress_command(),
        "evaluate": _hub_command("evaluate", "evaluate a model (perplexity, accuracy, BLEU, any `evaluate` metric)"),
        "bench": _hub_command("bench", "latency, throughput, size on disk and parameters of a model"),
        "card": _hub_command("card", "write a model card with measured size, accuracy and latency"),
        "push": _hub_command("push", "push a compressed model with its card and report to the Hub"),
        "demo": _demo_command(),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tlc-hf",
        description="Train Large, Then Compress: budgeted training and compression for Hugging Face models.",
    )
    parser.add_argument("--version", action="version", version=f"tlc_hf {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in _commands().items():
        sub = subparsers.add_parser(
            name, help=command.help, description=command.help, add_help=not command.passes_through
        )
        command.add_arguments(sub)
        sub.set_defaults(_run=command.run, _passes_through=command.passes_through)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not args._passes_through:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return args._run(args, rest)
    except (ValueError, TypeError, OSError, ImportError) as err:
        print(f"tlc-hf {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
