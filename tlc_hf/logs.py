"""Adding fields to a Trainer log record from a callback, and the one rule every progress bar follows."""

from __future__ import annotations

import sys

FILE_INTERVAL_S = 10.0  # in a file or CI log: at most one line per bar this often
TERMINAL_INTERVAL_S = 0.1


def is_terminal(stream=None) -> bool:
    """Whether `stream` (default: stderr, where bars go) is a live terminal rather than a file or a pipe."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(iterable=None, *, nested: bool = False, **kwargs):
    """A progress bar under the one rule of tlc_hf (sweep, budget, compress, evaluate, demo): live in a terminal
    (redrawn at most 10 times a second); in a file or CI log at most one line every 10 s, and a nested bar
    (an evaluation inside training) not at all. Other arguments go to `tqdm` (transformers' wrapper, so
    `transformers.utils.logging.disable_progress_bar()` still hides it).
    """
    from transformers.utils import logging as hf_logging

    terminal = is_terminal(kwargs.get("file"))
    kwargs.setdefault("mininterval", TERMINAL_INTERVAL_S if terminal else FILE_INTERVAL_S)
    if nested and not terminal:
        kwargs["disable"] = True
    return hf_logging.tqdm(iterable, **kwargs)


def add_log_fields(state, logs: dict | None, fields: dict) -> None:
    """Put `fields` into the record the callbacks see and into `state.log_history`.

    `Trainer.log` appends its own copy of the record to `log_history` before calling `on_log`, so a
    callback that only updates `logs` would leave the history without the fields.
    """
    if logs is None:
        return
    logs.update(fields)
    if state.log_history and state.log_history[-1].get("step") == state.global_step:
        state.log_history[-1].update(fields)
