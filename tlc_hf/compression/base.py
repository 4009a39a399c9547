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
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from transformers import TrainerCallback

from .record import record_compression  # noqa: F401  (re-exported: methods record themselves)

logger = logging.getLogger(__name__)

RAMPS = ("cubic", "linear")
_CONFIGS: dict[str, type[CompressionConfig]] = {}
_METHODS: dict[str, CompressionMethod] = {}

# tlc_hf's own methods, imported on first look-up (each module registers itself)
_METHOD_MODULES = (
    "tlc_hf.compression.magnitude",
    "tlc_hf.compression.movement",
    "tlc_hf.compression.structured",
    "tlc_hf.compression.depth",
    "tlc_hf.compression.quantization",
    "tlc_hf.compression.drophead",
    "tlc_hf.compression.distillation",
    "tlc_hf.compression.lora",
    "tlc_hf.compression.vocabulary",
)


def register_config(cls):
    """Class decorator: make a config class loadable by its `method` name (an allow-list, no arbitrary import)."""
    if not cls.method or (cls.method in _CONFIGS and _CONFIGS[cls.method] is not cls):
        raise ValueError(f"method name {cls.method!r} is empty or already registered")
    _CONFIGS[cls.method] = cls
    return cls


@dataclass(frozen=True)
class CompressionMethod:
    """What the rest of tlc_hf needs from one compression method; registered with `register_method`.

    Args:
        config_class: the method's `CompressionConfig` subclass (its `method` is the registry name).
        apply: one-shot, `apply(model, config, context) -> model` (may return a new object).
        callback: during training, `callback(config) -> TrainerCallback | None`.
        finalize: after training, `finalize(model, config, context) -> model` (e.g. convert QAT).
        restore: when a model is built from a config that holds this method's record,
            `restore(model, record)` rebuilds the shapes (weights are loaded afterwards).
        describe: `describe(record) -> str`, one line for the model card.
        trains: `trains(config) -> bool`, whether a recipe must fine-tune for this method.
        produces: `produces(config) -> str`, the weights it leaves: "float", "quantized" (a backend holds
            them: torchao, bitsandbytes) or "onnx" (an exported graph).
        accepts: kinds of weights the method can work on (a recipe is refused before any training when a
            method would get weights it does not accept).
        cli: `CliOption`s for `tlc-hf compress`; `from_cli(namespace) -> config | None` builds the config.
        cli_order: order of one-shot application in `tlc-hf compress` (smaller first).
        before_training: in a recipe that fine-tunes, `apply` runs before fine-tuning (a structural cut the
            training then recovers from, e.g. removing layers), not after.

    Example:
        ```python
        register_method(CompressionMethod(config_class=MyConfig, apply=my_apply_, describe=lambda r: "mine"))
        ```
    """

    config_class: type
    apply: Callable | None = None
    callback: Callable | None = None
    finalize: Callable | None = None
    restore: Callable | None = None
    describe: Callable | None = None
    trains: Callable = field(default=lambda config: False)
    produces: Callable = field(default=lambda config: "float")
    accepts: tuple = ("float",)
    cli: tuple = ()
    from_cli: Callable | None = None
    cli_order: int = 100
    before_training: bool = False

    @property
    def name(self) -> str:
        return self.config_class.method

    @property
    def acts_during_training(self) -> bool:
        """In a recipe that fine-tunes, the method works on the float model before (`before_training`) or during
        fine-tuning (its callback), and nothing of it runs after training."""
        return self.before_training or (self.callback is not None and self.finalize is None)


@dataclass(frozen=True)
class CliOption:
    """One `tlc-hf compress` flag: `flag` is also the config field's name (CLI flags = API names)."""

    flag: str
    help: str
    type: Callable | None = None
    choices: tuple | None = None
    action: str | None = None
    default: Any = None


def register_method(method: CompressionMethod) -> CompressionMethod:
    """Register a method's behaviour (and its config): recipes, the loader, cards and the CLI find it here."""
    register_config(method.config_class)
    _METHODS[method.name] = method
    return method


def _import_methods() -> None:
    import importlib

    for module in _METHOD_MODULES:
        importlib.import_module(module)


def registered_methods() -> tuple[str, ...]:
    _import_methods()
    return tuple(sorted(_CONFIGS))


def get_method(name: str) -> CompressionMethod:
    """The registered behaviour of method `name`; ValueError naming the known methods otherwise."""
    if name not in _METHODS:
        _import_methods()
    if name not in _METHODS:
        raise ValueError(f"method={name!r} is not a registered compression method; known: {sorted(_METHODS)}")
    return _METHODS[name]


def all_methods() -> list[CompressionMethod]:
    _import_methods()
    return list(_METHODS.values())


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
        if method not in _CONFIGS:
            _import_methods()
        target = _CONFIGS.get(method)
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
        self.engine = "none"

    def check_engine(self, model, args) -> str:
        """At train begin: the engine that trains `model` ("none", "ddp", "fsdp2"); a one-line ValueError
        naming the method, the engine and what works instead for one it cannot run under (FSDP1, DeepSpeed)."""
        from .sharding import check_engine

        self.engine = check_engine(type(self).__name__, model, args)
        return self.engine

    def progress(self, state) -> float:
        if self.budget is not None:
            return self.budget.progress
        from ..budget.schedules import UNBOUNDED_MAX_STEPS

        if state.max_steps <= 0 or state.max_steps >= UNBOUNDED_MAX_STEPS:
            raise ValueError(
                f"{type(self).__name__} cannot tell progress: max_steps={state.max_steps} and no time budget is linked. "
                f"Pass budget=<your WallClockBudgetCallback> to {type(self).__name__}, or use BudgetTrainer."
            )
        return min(state.global_step / state.max_steps, 1.0)
