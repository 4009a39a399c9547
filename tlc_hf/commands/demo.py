"""`tlc-hf demo`: the main job, end to end, offline."""

from __future__ import annotations

import argparse
import logging
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a run of about 5 minutes on 2 CPU cores")
    parser.add_argument("--budget", default=None, help="pretraining budget per size, e.g. 10m (fine-tuning: a third)")
    parser.add_argument(
        "--sizes", default=None, help="the base size DEPTHxWIDTH, e.g. 2x64; the depth and width families grow from it"
    )
    parser.add_argument("--no_real_model", action="store_true", help="skip stage 4 (the real all-MiniLM-L6-v2)")
    parser.add_argument("--output_dir", default="out/demo")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace, rest: list[str]) -> int:
    from ..workflows.demo import run_demo

    show_progress_lines()
    run_demo(
        args.output_dir,
        quick=args.quick,
        budget=args.budget,
        sizes=args.sizes,
        seed=args.seed,
        real_model=not args.no_real_model,
    )
    return 0


class _StdoutHandler(logging.StreamHandler):
    """Writes each line to `sys.stdout` as it is when the line is logged (a redirect or a capture included),
    not to the stream that was `sys.stdout` when the handler was made."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _):  # StreamHandler sets it; the current sys.stdout is always used
        pass


def show_progress_lines() -> None:
    """The demo logs a line per stage and per size (`tlc_hf.workflows.demo`): the command shows them on stdout."""
    demo = logging.getLogger("tlc_hf.workflows.demo")
    if not any(isinstance(handler, _StdoutHandler) for handler in demo.handlers):
        demo.addHandler(_StdoutHandler())
    demo.setLevel(logging.INFO)
    demo.propagate = False
