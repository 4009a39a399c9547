"""One line for every failure the CLI reports: library exceptions translated into what was wrong and where.

A user mistake is one line; a bug in tlc_hf is a traceback. A `KeyError` is a bug (a dict lookup in our own
code that went wrong): where user input lacks a field, the code that validates it raises `MissingFieldError`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable


class MissingFieldError(ValueError):
    """User input (a dataset, a file, a recipe) lacks a field it must have: one line, not a traceback.

    A `ValueError`, so callers that catch those keep working; raised where user input is validated, so that
    a `KeyError` can only be a bug.

    Args:
        message: the one line: what lacks which field, and what it has.
        field: the missing field (a key, a column, a split).

    Example:
        ```python
        if "train" not in splits:
            raise MissingFieldError(f"dataset {name!r} has no 'train' split; it has {sorted(splits)}", "train")
        ```
    """

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def is_bug(err: BaseException) -> bool:
    """`err` is a bug in tlc_hf (shown with its traceback), not a user mistake (shown as one line)."""
    return isinstance(err, KeyError)


def run_script(main: Callable[[], object], prog: str | None = None) -> int:
    """Run a script's `main()` behind the same error boundary as `tlc-hf`: a failure is one line on stderr
    (from the main process only, in a multi-process run) and exit code 1; `TLC_HF_DEBUG=1` shows the traceback,
    and a bug (`is_bug`) always shows it.

    Example:
        ```python
        if __name__ == "__main__":
            sys.exit(run_script(main))
        ```
    """
    prog = prog or os.path.basename(sys.argv[0])
    try:
        main()
        return 0
    except KeyboardInterrupt:
        raise
    except Exception as err:
        if is_bug(err) and os.environ.get("RANK", "0") == "0":
            print(f"{prog}: internal error, a bug in tlc_hf: please report it with this traceback", file=sys.stderr)
        if os.environ.get("TLC_HF_DEBUG") or is_bug(err):
            raise
        if os.environ.get("RANK", "0") == "0":
            print(f"{prog}: error: {explain(err)} (TLC_HF_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def explain(err: BaseException) -> str:
    """A one-line message for `err` that names the bad value (no traceback; `--debug` shows it)."""
    name = type(err).__name__
    if name == "SafetensorError" or "safetensors_rust" in type(err).__module__:
        return f"a weights file is not readable safetensors ({err}); re-save it with save_pretrained"
    if isinstance(err, json.JSONDecodeError):
        return f"not valid JSON at line {err.lineno} column {err.colno}: {err.msg}"
    if isinstance(err, re.error):
        return f"{err.pattern!r} is not a valid regular expression: {err.msg} at position {err.pos}"
    if name.endswith("YAMLError") or name in ("ScannerError", "ParserError", "ConstructorError"):
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        return f"not valid YAML{where}: {getattr(err, 'problem', None) or err}"
    if isinstance(err, FileNotFoundError) and err.filename:
        return f"{err.filename} does not exist"
    if isinstance(err, (ValueError, TypeError, OSError, ImportError, RuntimeError)):
        return " ".join(str(err).split()) or name
    return f"{name}: {' '.join(str(err).split())}"
