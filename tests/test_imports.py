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


# bitsandbytes logs this itself on CPUs with AVX512-BF16 when transformers imports it (not tlc_hf's output)
THIRD_PARTY_NOISE = ("Failed to load CPU gemm_4bit_forward from kernels-community",)


def test_import_prints_nothing_of_its_own():
    result = _python("import tlc_hf; tlc_hf.parse_duration('1h'); tlc_hf.BudgetTrainer; tlc_hf.prune_magnitude_")
    assert result.returncode == 0 and result.stdout == ""
    ours = [line for line in result.stderr.splitlines() if not line.startswith(THIRD_PARTY_NOISE)]
    assert ours == []
