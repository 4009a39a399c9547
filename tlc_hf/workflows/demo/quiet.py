"""What the demo shows and hides: one line per size, budget bars on long training, no library chatter."""

from __future__ import annotations

import contextlib
import logging
import warnings


@contextlib.contextmanager
def quiet_run():
    """Hide per-call bars (tokenization, weight loading), exporter and ONNX Runtime notes, and warnings,
    restoring the caller's settings afterwards."""
    import datasets
    from transformers.utils import logging as hf_logging

    bars = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    loggers = {name: logging.getLogger(name).level for name in ("bitsandbytes", "torch.onnx", "root", "torchao")}
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if bars[0]:
            datasets.enable_progress_bars()
        if bars[1]:
            hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(verbosity)
        for name, level in loggers.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def progress_bars():
    """Show transformers' bars (the budget bars of long training) inside `quiet_run`."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    try:
        yield
    finally:
        if not shown:
            hf_logging.disable_progress_bar()
