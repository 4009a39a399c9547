"""Shared machinery for every compression method: configs, the registry, schedules on progress p, callbacks.

A method is one config dataclass (validated in `__post_init__`, JSON round-trip with a type tag and a
version) registered with `@register_method`, plus one callback (a `CompressionCallback`) for use during
training. Schedules are functions of progress p in [0, 1]: elapsed / budget under a time budget
(`WallClockBudgetCallback`, linked automatically by `BudgetTrainer`), global_step / max_steps otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

COMPRESSION_CONFIG_NAME = "tlc_compression.json"
FORMAT_VERSION = 1
RAMPS = ("cubic", "linear")
_REGISTRY: dict[str, type[CompressionConfig]] = {}


def register_method(cls):
    """Class decorator: make a config class loadable by its `method` name (an allow-list, no arbitrary import)."""
    if not cls.method or cls.method in _REGISTRY:
        raise ValueError(f"method name {cls.method!r} is empty or already registered")
    _REGISTRY[cls.method] = cls
    return cls


_METHOD_MODULES = (
    "tlc_hf.compression.magnitude",
    "tlc_hf.compression.movement",
    "tlc_hf.compression.structured",
    "tlc_hf.compression.quantization",
    "tlc_hf.compression.lora",
    "tlc_hf.training.distillation",
)


def _import_methods() -> None:
    import importlib

    for module in _METHOD_MODULES:
        importlib.import_module(module)


def registered_methods() -> tuple[str, ...]:
    _import_methods()
    return tuple(sorted(_REGISTRY))


@dataclass
class CompressionConfig:
    """Base of every method's config. Subclasses set `method` and add validated fields."""

    method: ClassVar[str] = ""

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:  # subclasses raise ValueError naming the bad value
        pass

    def to_dict(self) -> dict[str, Any]:
        from .. import __version__

        return {"method": self.method, "tlc_hf_version": __version__, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompressionConfig:
        data = dict(data)
        method = data.pop("method", None)
        data.pop("tlc_hf_version", None)
        if method not in _REGISTRY:
            _import_methods()
        target = _REGISTRY.get(method)
        if target is None:
            raise ValueError(f"method={method!r} is not a tlc_hf compression method; known: {registered_methods()}")
        if cls is not CompressionConfig and target is not cls:
            raise ValueError(f"method={method!r} is not a {cls.__name__}")
        known = {f.name for f in dataclasses.fields(target)}
        unknown = sorted(set(data) - known)
        if unknown:
            warnings.warn(
                f"{target.__name__}: ignoring unknown fields {unknown} (written by a newer tlc_hf?)", stacklevel=2
            )
        return target(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CompressionConfig:
        return cls.from_dict(json.loads(text))


def check_fraction(name: str, value: float, *, high_open: bool = True) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value >= 0.0
        and (value < 1.0 if high_open else value <= 1.0)
    )
    if not ok:
        bound = "[0, 1)" if high_open else "[0, 1]"
        raise ValueError(f"{name}={value!r} must be a number in {bound}")


def check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {allowed}")


@dataclass
class TargetSelection:
    """Which modules a method touches (see `tlc_hf.compression.find_targets`)."""

    target_modules: str | None = field(default=None, metadata={"help": "Regex over module names (replaces rules)."})
    include_embeddings: bool = field(
        default=False, metadata={"help": "Also embeddings (pruning them hurts accuracy)."}
    )
    include_head: bool = field(default=False, metadata={"help": "Also the pooler / classifier / LM head."})


@dataclass
class ScheduleConfig(CompressionConfig):
    """A ramp from `initial` to the target between progress `start` and `end` (fractions of training)."""

    start: float = field(default=0.0, metadata={"help": "Progress p at which the ramp starts."})
    end: float = field(default=0.8, metadata={"help": "Progress p at which the target is reached."})
    ramp: str = field(default="cubic", metadata={"help": "cubic (Zhu & Gupta 2017) or linear."})
    update_every: int = field(default=10, metadata={"help": "Update the schedule every this many optimizer steps."})

    def validate(self) -> None:
        check_fraction("start", self.start)
        check_fraction("end", self.end, high_open=False)
        if self.end < self.start:
            raise ValueError(f"end={self.end} must be >= start={self.start}")
        check_choice("ramp", self.ramp, RAMPS)
        if not isinstance(self.update_every, int) or self.update_every < 1:
            raise ValueError(f"update_every={self.update_every!r} must be a positive int")


def ramp_value(p: float, initial: float, final: float, start: float, end: float, ramp: str = "cubic") -> float:
    """The scheduled value at progress p: `initial` before `start`, `final` after `end`, a ramp in between.

    cubic: final + (initial - final) * (1 - t)^3 with t the fraction of the ramp done (Zhu & Gupta 2017).
    """
    if p <= start:
        return initial
    if p >= end:
        return final
    t = (p - start) / (end - start)
    shape = (1.0 - t) ** 3 if ramp == "cubic" else 1.0 - t
    return final + (initial - final) * shape


class CompressionCallback(TrainerCallback):
    """Base callback: knows progress p, the same on every rank (time under a budget, steps otherwise)."""

    def __init__(self, budget=None):
        self.budget = budget  # a WallClockBudgetCallback; BudgetTrainer links its own

    def progress(self, state) -> float:
        if self.budget is not None:
            return self.budget.progress
        from ..training.arguments import UNBOUNDED_MAX_STEPS

        if state.max_steps <= 0 or state.max_steps >= UNBOUNDED_MAX_STEPS:
            raise ValueError(
                f"{type(self).__name__} cannot tell progress: max_steps={state.max_steps} and no time budget is linked. "
                f"Pass budget=<your WallClockBudgetCallback> to {type(self).__name__}, or use BudgetTrainer."
            )
        return min(state.global_step / state.max_steps, 1.0)


def record_compression(model, config: CompressionConfig | dict) -> None:
    """Append a method's record to the model's compression history (saved as tlc_compression.json)."""
    record = config.to_dict() if isinstance(config, CompressionConfig) else dict(config)
    history = list(getattr(model, "tlc_compression", []))
    history.append(record)
    model.tlc_compression = history


def write_compression_config(model, directory: str | os.PathLike, extra: dict | None = None) -> None:
    payload = {
        "format_version": FORMAT_VERSION,
        "methods": list(getattr(model, "tlc_compression", [])),
        **(extra or {}),
    }
    with open(os.path.join(directory, COMPRESSION_CONFIG_NAME), "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)


def read_compression_config(directory: str | os.PathLike) -> dict | None:
    path = os.path.join(directory, COMPRESSION_CONFIG_NAME)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        payload = json.load(f)
    if payload.get("format_version", 1) > FORMAT_VERSION:
        warnings.warn(f"{path} was written by a newer tlc_hf (format {payload['format_version']})", stacklevel=2)
    return payload
