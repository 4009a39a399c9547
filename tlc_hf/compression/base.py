"""Shared machinery for every compression method: configs, the registry, schedules on progress p, callbacks.

A method is one config dataclass (validated in `__post_init__`, JSON round-trip with a type tag and a
version) registered with `@register_method`, plus one callback (a `CompressionCallback`) for use during
training. Schedules are functions of progress p in [0, 1]: elapsed / budget under a time budget
(`WallClockBudgetCallback`, linked automatically by `BudgetTrainer`), global_step / max_steps otherwise.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from transformers import TrainerCallback

from .. import __version__
from ..budget.schedules import UNBOUNDED_MAX_STEPS
from .record import record_compression  # noqa: F401  (re-exported: methods record themselves)

logger = logging.getLogger(__name__)

RAMPS = ("cubic", "linear")
_REGISTRY: dict[str, CompressionMethod] = {}  # method name -> its behaviour (and, through it, its config class)

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
    """Class decorator kept for older code: checks the `method` name. Registration itself is `register_method`
    (one registry: a config is loadable once its method is registered)."""
    _check_name(cls)
    return cls


def _check_name(cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, CompressionConfig)) or not cls.method:
        raise ValueError(f"{cls!r} is not a CompressionConfig subclass with a non-empty `method` name")
    known = _REGISTRY.get(cls.method)
    if known is not None and known.config_class is not cls:
        raise ValueError(f"method name {cls.method!r} is already registered by {known.config_class.__name__}")


@dataclass(frozen=True)
class CompressionMethod:
    """What the rest of tlc_hf needs from one compression method; registered with `register_method`.

    Every hook gets the model, the config (what was asked) and a `CompressionContext`; a hook may return the
    model or a `CompressionResult` (when it has more to hand back, e.g. a new tokenizer or an adapter to save).

    Args:
        config_class: the method's `CompressionConfig` subclass (its `method` is the registry name).
        describe: `describe(record) -> str`, one line for the model card (required).
        apply: one-shot, `apply(model, config, context) -> model | CompressionResult` (may return a new object).
        callback: during training, `callback(config) -> TrainerCallback | None`.
        finalize: after training, `finalize(model, config, context) -> model | CompressionResult`
            (e.g. convert QAT; LoRA recovery fine-tunes an adapter here).
        trainer: `trainer(config, context, seq2seq) -> (Trainer class, extra keyword arguments)`, for a method
            that replaces the trainer of a recipe's fine-tuning (distillation).
        restore: when a model is built from a config that holds this method's record,
            `restore(model, record)` rebuilds the shapes (weights are loaded afterwards).
        requires: `requires(config) -> set` of `CompressionContext` needs ("tokenizer", "data", "batches",
            "teacher"), checked before anything is loaded.
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
    describe: Callable | None = None
    apply: Callable | None = None
    callback: Callable | None = None
    finalize: Callable | None = None
    trainer: Callable | None = None
    restore: Callable | None = None
    requires: Callable = field(default=lambda config: frozenset())
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
        fine-tuning (its callback, or the trainer it supplies), and nothing of it runs after training."""
        trains_itself = self.callback is not None or self.trainer is not None
        return self.before_training or (trains_itself and self.finalize is None)


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
    """Register a method (its config and its behaviour): recipes, the loader, cards and the CLI find it here.

    A method is refused here, not at run time, when it cannot work: a config class without a name, a name
    taken by another class, no card line (`describe`), no way to act (`apply`, `callback`, `finalize` or
    `trainer`), `from_cli` without `cli` options (or the reverse), a hook that is not callable.
    """
    _check_name(method.config_class)
    name = method.name
    hooks = ("describe", "apply", "callback", "finalize", "trainer", "restore", "requires", "trains", "produces")
    for hook in hooks:
        value = getattr(method, hook)
        if value is not None and not callable(value):
            raise ValueError(f"method {name!r}: {hook}={value!r} is not callable")
    if method.describe is None:
        raise ValueError(f"method {name!r}: give describe=(record -> one line for the model card)")
    if not any((method.apply, method.callback, method.finalize, method.trainer)):
        raise ValueError(f"method {name!r}: give at least one of apply, callback, finalize or trainer")
    if bool(method.cli) != (method.from_cli is not None):
        raise ValueError(f"method {name!r}: cli options and from_cli go together (give both or neither)")
    if method.before_training and method.apply is None:
        raise ValueError(f"method {name!r}: before_training=True needs apply (it runs before fine-tuning)")
    _REGISTRY[name] = method
    return method


def _import_methods() -> None:
    for module in _METHOD_MODULES:
        importlib.import_module(module)


def registered_methods() -> tuple[str, ...]:
    _import_methods()
    return tuple(sorted(_REGISTRY))


def get_method(name: str) -> CompressionMethod:
    """The registered behaviour of method `name`; ValueError naming the known methods otherwise."""
    if name not in _REGISTRY:
        _import_methods()
    if name not in _REGISTRY:
        raise ValueError(f"method={name!r} is not a registered compression method; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def all_methods() -> list[CompressionMethod]:
    _import_methods()
    return list(_REGISTRY.values())


@dataclass
class CompressionConfig:
    """Base of every method's config. Subclasses set `method` and add validated fields."""

    method: ClassVar[str] = ""
    # what applying the method measures and writes into the model's record beside the config's fields (e.g.
    # structured pruning's `layout`); read back from a record, they are not config fields and are dropped
    outputs: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:  # subclasses raise ValueError naming the bad value
        pass

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "tlc_hf_version": __version__, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompressionConfig:
        data = dict(data)
        method = data.pop("method", None)
        data.pop("tlc_hf_version", None)
        if method not in _REGISTRY:
            _import_methods()
        if method not in _REGISTRY:
            raise ValueError(f"method={method!r} is not a tlc_hf compression method; known: {registered_methods()}")
        target = _REGISTRY[method].config_class
        if cls is not CompressionConfig and target is not cls:
            raise ValueError(f"method={method!r} is not a {cls.__name__}")
        known = {f.name for f in dataclasses.fields(target)}
        unknown = sorted(set(data) - known - set(target.outputs))  # outputs live in the record, not the config
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

    def check_engine(self, model, args, needs_gradients: bool = False) -> str:
        """At train begin: the engine that trains `model` ("none", "ddp", "fsdp2", "deepspeed"); a one-line
        ValueError naming the method, the engine and what works instead for one it cannot run under (FSDP1,
        DeepSpeed through the Trainer when this run reads gradients: `needs_gradients`)."""
        from .sharding import check_engine

        self.engine = check_engine(type(self).__name__, model, args, needs_gradients=needs_gradients)
        return self.engine

    def progress(self, state) -> float:
        if self.budget is not None:
            return self.budget.progress
        if state.max_steps <= 0 or state.max_steps >= UNBOUNDED_MAX_STEPS:
            raise ValueError(
                f"{type(self).__name__} cannot tell progress: max_steps={state.max_steps} and no time budget is linked. "
                f"Pass budget=<your WallClockBudgetCallback> to {type(self).__name__}, or use BudgetTrainer."
            )
        return min(state.global_step / state.max_steps, 1.0)
