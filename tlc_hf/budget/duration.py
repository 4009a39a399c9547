"""Parse durations: seconds as a number, or strings such as "90s", "45m", "2h30m", "1d", "1.5h", "01:30:00"."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_UNITS = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")
_ALLOWED = 'a positive number of seconds (e.g. 3600), a string like "90s", "45m", "2h30m", "1.5h", "1d", or "HH:MM:SS"'


def parse_duration(value: int | float | str, name: str = "budget") -> float:
    """Seconds in `value`; raises `ValueError` naming `name`, the value and the allowed forms."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{name}={value!r} has type {type(value).__name__}; expected {_ALLOWED}")
    if isinstance(value, str):
        seconds = _parse_string(value.strip().lower())
        if seconds is None:
            raise ValueError(f"{name}={value!r} is not a duration; expected {_ALLOWED}")
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name}={value!r} must be > 0; expected {_ALLOWED}")
    return seconds


def _parse_string(text: str) -> float | None:
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if re.fullmatch(r"\d+(?::\d{1,2}){1,3}", text):  # MM:SS, HH:MM:SS, DD:HH:MM:SS
        parts = [int(p) for p in text.split(":")]
        if any(p >= 60 for p in parts[-2:]):
            return None
        scales = [1, 60, 3600, 86400][: len(parts)][::-1]
        return float(sum(p * s for p, s in zip(parts, scales, strict=True)))
    matches = list(_UNITS.finditer(text))
    if not matches or "".join(m.group(0) for m in matches) != text.replace(" ", ""):
        return None
    units = [m.group(2) for m in matches]
    if len(set(units)) != len(units) or units != sorted(units, key="dhms".index):
        return None  # "30m2h" or "1h1h" are more likely typos than intent
    return sum(float(m.group(1)) * _UNIT_SECONDS[m.group(2)] for m in matches)


def format_duration(seconds: float) -> str:
    """`5400` -> "1h30m00s", `300` -> "5m00s", `20` -> "20s"; used in messages and progress bars."""
    seconds = max(0.0, seconds)
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
