"""Every subpackage imports on its own in a fresh interpreter (catches import cycles), and so does every
lazily exported public name."""

import subprocess
import sys

import pytest

import tlc_hf

SUBPACKAGES = [
    "tlc_hf.budget",
    "tlc_hf.training",
    "tlc_hf.data",
    "tlc_hf.scaling",
    "tlc_hf.compression",
    "tlc_hf.evaluation",
    "tlc_hf.cli",
    "tlc_hf.testing",
]


def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("module", SUBPACKAGES)
def test_subpackage_imports_alone(module):
    result = _python(f"import {module}")
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_public_name_resolves():
    names = [name for name in tlc_hf.__all__ if name != "__version__"]
    result = _python("import tlc_hf\n" + "\n".join(f"tlc_hf.{name}" for name in names))
    assert result.returncode == 0, result.stderr[-2000:]


def _stderr_lines(code: str) -> list[str]:
    """stderr lines with timestamps and process ids masked."""
    import re

    result = _python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    return [re.sub(r"^[WIE]\d{4} [\d:.]+ \d+ ", "", line) for line in result.stderr.splitlines()]


def test_import_prints_nothing_of_its_own():
    """Anything printed must also be printed by importing the same dependencies without tlc_hf
    (bitsandbytes and torchao log on their own when transformers imports them)."""
    ours = _python("import tlc_hf; tlc_hf.parse_duration('1h'); tlc_hf.BudgetTrainer; tlc_hf.prune_magnitude_")
    assert ours.stdout == ""
    baseline = set(_stderr_lines("import transformers; from transformers import Trainer, Seq2SeqTrainer"))
    extra = [
        line
        for line in _stderr_lines("import tlc_hf; tlc_hf.BudgetTrainer; tlc_hf.prune_magnitude_")
        if line not in baseline
    ]
    assert extra == []
