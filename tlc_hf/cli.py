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


def _module_command(module: str, passes_through: bool = False, prefix: str = "") -> Callable[[str], Command]:
    """A Command whose `add_arguments` / `run` live in `tlc_hf.commands.<module>` (imported when it runs)."""

    def build(help_text: str) -> Command:
        import importlib

        found = importlib.import_module(f"tlc_hf.commands.{module}")
        add, run = (
            getattr(found, f"add_{prefix}arguments"),
            getattr(found, f"run{'_' + prefix[:-1] if prefix else ''}"),
        )
        return Command(help_text, add, run, passes_through)

    return build


# name -> (help, builder): a command's module is imported only when that command runs
_COMMANDS: dict[str, tuple[str, Callable[[str], Command]]] = {
    "params": ("parameter counts and their breakdown for a model name or config", _module_command("params")),
    "train": (
        "train a model under a wall-clock budget (MLM, classification or seq2seq)",
        _module_command("train", passes_through=True),
    ),
    "sweep": ("train a grid of model sizes under the same wall-clock budget", _module_command("sweep")),
    "plan": (
        "which model to train for a time budget, and how to compress it to a size and latency",
        _module_command("plan"),
    ),
    "compress": ("prune / quantize / export a trained model (one-shot), or run a recipe", _module_command("compress")),
    "evaluate": (
        "evaluate a model (perplexity, accuracy, BLEU, any `evaluate` metric)",
        _module_command("hub", prefix="evaluate_"),
    ),
    "bench": ("latency, throughput, size on disk and parameters of a model", _module_command("hub", prefix="bench_")),
    "card": ("write a model card with measured size, accuracy and latency", _module_command("hub", prefix="card_")),
    "push": ("push a compressed model with its card and report to the Hub", _module_command("hub", prefix="push_")),
    "demo": ("the main job: train large, then compress, end to end on the embedded corpus", _module_command("demo")),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `tlc-hf` parser. Only the subcommand named in `argv` gets its arguments (and imports its
    module), so `tlc-hf --help` lists every command without importing torch."""
    parser = argparse.ArgumentParser(
        prog="tlc-hf",
        description="Train Large, Then Compress: budgeted training and compression for Hugging Face models.",
    )
    parser.add_argument("--version", action="version", version=f"tlc_hf {_version()}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks (or set TLC_HF_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((arg for arg in (sys.argv[1:] if argv is None else argv) if arg in _COMMANDS), None)
    for name, (help_text, build) in _COMMANDS.items():
        if name != chosen:
            subparsers.add_parser(name, help=help_text, description=help_text)
            continue
        command = build(help_text)
        sub = subparsers.add_parser(
            name, help=command.help, description=command.help, add_help=not command.passes_through
        )
        command.add_arguments(sub)
        sub.set_defaults(_run=command.run, _passes_through=command.passes_through)
    return parser


_KNOWN_IMPORT_NOISE = {
    # backends that peft (imported by transformers' Trainer) loads on import, harmless on a CPU
    "torchao": "Failed to load",
    "bitsandbytes.backends.cpu.ops": "Failed to load CPU gemm_4bit_forward",
    "torch.utils._pytree": "is an Enum subclass and is now natively supported",
}


def _quiet_known_import_noise() -> None:
    """Drop the few messages that optional backends print on import, whether or not a command uses them."""
    import logging

    for name, fragment in _KNOWN_IMPORT_NOISE.items():
        logging.getLogger(name).addFilter(lambda record, fragment=fragment: fragment not in str(record.msg))


def main(argv: Sequence[str] | None = None) -> int:
    import os

    words = sys.argv[1:] if argv is None else list(argv)
    if not sys.stderr.isatty():  # a log file: every progress bar (ours, transformers', datasets') ~ every 10 s
        os.environ.setdefault("TQDM_MININTERVAL", "10")
    if "--debug" not in words and not os.environ.get("TLC_HF_DEBUG"):
        _quiet_known_import_noise()
    parser = build_parser(argv)
    args, rest = parser.parse_known_args(argv)
    if rest and not args._passes_through:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return args._run(args, rest)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # the one error boundary: one line; the traceback on request or for a bug
        from .errors import explain, is_bug

        if is_bug(err):
            print(
                f"tlc-hf {args.command}: internal error, a bug in tlc_hf: please report it with this traceback",
                file=sys.stderr,
            )
        if args.debug or os.environ.get("TLC_HF_DEBUG") or is_bug(err):
            raise

        print(f"tlc-hf {args.command}: error: {explain(err)} (--debug shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
