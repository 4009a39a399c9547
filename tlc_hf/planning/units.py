"""The planner's target in the user's words: a size ("20MB", "512KiB", bytes) and a latency ("15ms", "0.2s",
milliseconds), each parsed to one number or refused in one line that names the value and the allowed forms."""

from __future__ import annotations

import math
import re

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40
}  # fmt: skip
_ALLOWED_SIZES = (
    'a positive number of bytes, or a string like "20MB", "1.5GB", "512KiB" (B, KB, MB, GB, KiB, MiB, GiB)'
)
_LATENCY = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|us)?", re.IGNORECASE)
_LATENCY_UNITS = {"ms": 1.0, "s": 1e3, "us": 1e-3}
_ALLOWED_LATENCIES = 'a positive number of milliseconds, or a string like "15ms", "0.2s", "800us"'


def parse_size(value: int | float | str, name: str = "max_size") -> float:
    """Bytes in `value` ("20MB" = 20e6, "20MiB" = 20 x 2**20, or a number of bytes); raises `ValueError` naming
    `name`, the value and the allowed forms.

    Example:
        ```python
        parse_size("20MB")  # 20000000.0
        ```
    """
    return _parse_quantity(value, name, _SIZE, _SIZE_UNITS, "b", "size", _ALLOWED_SIZES)


def parse_latency(value: int | float | str, name: str = "max_latency") -> float:
    """Milliseconds in `value` ("15ms", "0.2s", "800us", or a number of milliseconds); raises `ValueError`
    naming `name`, the value and the allowed forms.

    Example:
        ```python
        parse_latency("0.2s")  # 200.0
        ```
    """
    return _parse_quantity(value, name, _LATENCY, _LATENCY_UNITS, "ms", "latency", _ALLOWED_LATENCIES)


def _parse_quantity(value, name: str, pattern: re.Pattern, units: dict, default_unit: str, kind: str, allowed: str):
    """A positive finite number from a number or "<number><unit>" (`pattern`: the number, then the unit)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{name}={value!r} has type {type(value).__name__}; expected {allowed}")
    if isinstance(value, str):
        match = pattern.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{name}={value!r} is not a {kind}; expected {allowed}")
        number = float(match.group(1)) * units[(match.group(2) or default_unit).lower()]
    else:
        number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name}={value!r} must be > 0; expected {allowed}")
    return number
