"""`CompressionRecipe`: an ordered set of method configs (+ distillation + budget), read from YAML or JSON,
validated (composition included, before any training), versioned, saved in the model's config.
`tlc_hf.workflows.recipe.run_recipe` trains, finalizes and reports."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from transformers import TrainingArguments

from ..budget.duration import parse_duration
from ..training.arguments import check_positive_sizes
from .base import CompressionConfig, get_method, registered_methods
from .context import check_requirements

logger = logging.getLogger(__name__)

RECIPE_VERSION = 1
_RECIPE_KEYS = ("version", "methods", "distillation", "budget", "training", "name", "lora", "targets")
TARGETS = {  # name -> what it asks of the compressed model against the model it was compressed from
    "smaller": "size on disk at least this many times smaller, e.g. 8",
    "faster": "CPU latency at least this many times lower (timed interleaved with the input model), e.g. 4",
    "max_accuracy_drop": "accuracy at most this much lower, as a fraction, e.g. 0.01 for one point",
}
_RECIPE_TYPES = (  # (key, allowed types, in words)
    ("version", int, f"an integer (this tlc_hf reads version {RECIPE_VERSION})"),
    ("methods", list, "a list of mappings, each with a 'method' key"),
    ("distillation", dict, "a mapping of DistillationConfig fields, e.g. {alpha: 0.5}"),
    ("lora", dict, "a mapping of LoraRecoveryConfig fields, e.g. {r: 8}"),
    ("budget", (str, int, float), 'a duration, e.g. "2m"'),
    ("training", dict, "a mapping of TrainingArguments fields"),
    ("name", str, "a string"),
    ("targets", dict, "a mapping, e.g. {smaller: 8, faster: 4, max_accuracy_drop: 0.01}"),
)


@dataclass
class CompressionRecipe:
    """What to do to a model, in order.

    ```yaml
    version: 1
    budget: 2m                      # fine-tuning budget (wall clock); or training: {max_steps: 200}
    distillation: {alpha: 0.5, temperature: 2.0}
    methods:
      - {method: magnitude, sparsity: 0.5, start: 0.1, end: 0.6, ramp: linear}
      - {method: quantization, backend: torchao, qat: true, start: 0.5}
    training: {learning_rate: 5.0e-5, per_device_train_batch_size: 16}
    targets: {smaller: 8, faster: 4, max_accuracy_drop: 0.01}   # checked in the report; never stops the run
    ```
    With a budget (or training.max_steps) the model is fine-tuned and pruning follows its schedule; without
    one, pruning is applied one-shot. QAT (`qat: true`), movement pruning and distillation always fine-tune. Other
    quantization is applied after fine-tuning.
    """

    methods: list[CompressionConfig] = field(default_factory=list)
    distillation: CompressionConfig | None = None
    budget: str | None = None
    training: dict = field(default_factory=dict)
    name: str | None = None
    lora: CompressionConfig | None = None
    targets: dict = field(default_factory=dict)
    version: int = RECIPE_VERSION

    def __post_init__(self):
        check_targets(self.targets)
        if self.version > RECIPE_VERSION:
            raise ValueError(f"recipe version={self.version} is newer than this tlc_hf reads ({RECIPE_VERSION})")
        if self.distillation is not None and self.distillation.method != "distillation":
            raise ValueError(f"distillation must be a DistillationConfig, not {self.distillation.method!r}")
        if any(m.method == "distillation" for m in self.methods):
            raise ValueError("give distillation under 'distillation:', not as a method")
        if self.budget is not None:
            parse_duration(self.budget, "budget")
        allowed = {f.name for f in dataclasses.fields(TrainingArguments)}
        unknown = sorted(set(self.training) - allowed)
        if unknown:
            raise ValueError(f"training fields {unknown} are not TrainingArguments fields")
        try:
            check_positive_sizes(self.training)
        except ValueError as err:
            raise ValueError(f"training.{err}") from err
        self.check_composition()
        self.steps()  # a one-shot recipe whose method has no one-shot form is refused here

    @property
    def configs(self) -> list[CompressionConfig]:
        """Every config of the recipe: its methods, then distillation and LoRA recovery when given."""
        return [*self.methods, *(c for c in (self.distillation, self.lora) if c is not None)]

    def steps(self) -> tuple[list[CompressionConfig], list[tuple[CompressionConfig, str]]]:
        """What runs outside fine-tuning: the configs applied before it, and the `(config, step)` pairs after it
        (`step` is "apply" or "finalize", see `compress_`), in order. Without fine-tuning every method is
        applied one-shot; LoRA recovery always comes last."""
        before, after = [], []
        trains = self.needs_training
        for config in self.methods:
            method = get_method(config.method)
            if trains and method.before_training:
                before.append(config)
            elif trains and not method.acts_during_training and (method.finalize or method.apply):
                after.append((config, "finalize"))
            elif not trains:
                if method.apply is None:
                    raise ValueError(f"method {config.method!r} has no one-shot form; give the recipe a budget")
                after.append((config, "apply"))
        if self.lora is not None:
            after.append((self.lora, "finalize"))
        return before, after

    def needs(self, names: set[str]) -> bool:
        """Whether a method of the recipe requires any of `names` (see `CompressionMethod.requires`)."""
        return any(get_method(c.method).requires(c) & set(names) for c in self.configs)

    def check_requirements(self, available: set[str], where: str = "the recipe") -> None:
        """Refuse, in one line and before anything loads, a method whose needs (`CompressionMethod.requires`)
        the caller does not provide (`available`: names from `tlc_hf.compression.context.provided`)."""
        check_requirements(self.configs, available, where)

    @property
    def needs_training(self) -> bool:
        """Methods that learn (distillation, movement pruning, QAT, DropHead) always train; any recipe with a
        budget (or max_steps) fine-tunes, and its pruning follows the schedule; without one, pruning runs
        one-shot."""
        if self.distillation is not None or any(get_method(m.method).trains(m) for m in self.methods):
            return True
        return self.budget is not None or "max_steps" in self.training

    def check_composition(self) -> None:
        """Refuse, before any training, a method that would get weights it cannot work on.

        Weights start as float. When the recipe trains, every method with a training callback works on the
        float model during fine-tuning; afterwards the post-training steps (QAT conversion, post-training
        quantization, one-shot methods) run in the listed order, then LoRA recovery. A backend
        quantization leaves "quantized" (torchao, bitsandbytes) or "onnx" (an exported graph) weights.
        """
        trains = self.needs_training
        kind, previous = "float", None
        for config in self.methods:
            method = get_method(config.method)
            if trains and method.acts_during_training:
                continue  # acts on the float model while it trains
            if kind not in method.accepts:
                raise ValueError(
                    f"method {config.method!r} cannot follow {previous!r}: it works on {list(method.accepts)} "
                    f"weights and {previous!r} leaves {kind!r} weights. Put {config.method!r} before it, or use "
                    "backend='simulated' (QAT) and quantize last."
                )
            kind, previous = method.produces(config), _label(config)
        if self.lora is not None and kind not in get_method("lora_recovery").accepts:
            raise ValueError(f"LoRA recovery cannot follow {previous!r}: it leaves {kind!r} weights")

    # ---- serialization ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {"version": self.version, "methods": [_clean(m.to_dict()) for m in self.methods]}
        if self.distillation is not None:
            out["distillation"] = {k: v for k, v in _clean(self.distillation.to_dict()).items() if k != "method"}
        if self.lora is not None:
            out["lora"] = {k: v for k, v in _clean(self.lora.to_dict()).items() if k != "method"}
        for key in ("budget", "name"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.training:
            out["training"] = dict(self.training)
        if self.targets:
            out["targets"] = dict(self.targets)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CompressionRecipe:
        if not isinstance(data, dict):
            raise ValueError(f"a recipe is a mapping with keys {_RECIPE_KEYS}; got {type(data).__name__}")
        unknown = sorted(set(data) - set(_RECIPE_KEYS))
        if unknown:
            raise ValueError(f"recipe fields {unknown} are not known; allowed: {list(_RECIPE_KEYS)}")
        for key, types, what in _RECIPE_TYPES:
            if data.get(key) is not None and not isinstance(data[key], types) or isinstance(data.get(key), bool):
                raise ValueError(f"recipe field {key}={data[key]!r} must be {what}")
        methods = [_method(entry, i) for i, entry in enumerate(data.get("methods") or [])]
        distillation = data.get("distillation")
        if distillation is not None:
            distillation = _method({"method": "distillation", **distillation}, "distillation")
        lora = data.get("lora")
        if lora is not None:
            lora = _method({"method": "lora_recovery", **lora}, "lora")
        return cls(
            lora=lora,
            methods=methods,
            distillation=distillation,
            budget=data.get("budget"),
            training=data.get("training") or {},
            name=data.get("name"),
            targets=data.get("targets") or {},
            version=data.get("version", RECIPE_VERSION),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> CompressionRecipe:
        return cls.from_dict(_parse(text, "JSON", "recipe text"))

    @classmethod
    def from_yaml(cls, text: str) -> CompressionRecipe:
        """A recipe from YAML text: safe loading only (a `!!python/...` tag is refused, naming the line)."""
        return cls.from_dict(_parse(text, "YAML", "recipe text"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> CompressionRecipe:
        """Read a recipe file (JSON if it ends in .json, else YAML: safe loading only, no Python tags), or a
        recipe shipped with tlc_hf by name (`shipped_recipes()`, e.g. "cpu-int8"). Errors name the file (and
        the line, for syntax errors)."""
        if not os.path.isfile(path) and str(path) in shipped_recipes():
            path = shipped_recipes()[str(path)]
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"recipe {str(path)!r} is not a file, nor a shipped recipe ({', '.join(sorted(shipped_recipes()))})"
            )
        data = _parse(
            Path(path).read_text(), "JSON" if str(path).endswith(".json") else "YAML", f"recipe {str(path)!r}"
        )
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as err:
            raise ValueError(f"recipe {str(path)!r}: {err}") from err

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            f.write(self.to_json() if str(path).endswith(".json") else self.to_yaml())


SHIPPED_DIR = Path(__file__).parent / "recipes"


def shipped_recipes() -> dict[str, str]:
    """Recipes that ship with tlc_hf, by name -> file: defaults chosen from measurements on a real model
    (`benchmarks/real_model_frontier.py`); each file says what it reached and where."""
    return {p.stem: str(p) for p in sorted(SHIPPED_DIR.glob("*.yaml"))}


def check_targets(targets: dict) -> None:
    """Each target is a known name with a positive number (`max_accuracy_drop` a fraction below 1)."""
    for name, value in targets.items():
        if name not in TARGETS:
            raise ValueError(f"targets: {name!r} is not a target; allowed: {sorted(TARGETS)}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"targets: {name}={value!r} must be a non-negative number ({TARGETS[name]})")
        if name == "max_accuracy_drop" and value >= 1:
            raise ValueError(f"targets: max_accuracy_drop={value!r} is a fraction (0.01 = one point), not points")


def _clean(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "tlc_hf_version"}


def _method(entry, where) -> CompressionConfig:
    if not isinstance(entry, dict) or "method" not in entry:
        raise ValueError(f"methods[{where}] needs a 'method' key naming one of {registered_methods()}")
    method = entry["method"]
    if method not in registered_methods():
        raise ValueError(f"methods[{where}]: method={method!r} is not known; choose one of {registered_methods()}")
    config_class = type(CompressionConfig.from_dict({"method": method}))
    allowed = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(entry) - allowed - {"method"} - set(config_class.outputs))
    if unknown:
        raise ValueError(f"methods[{where}] ({method}): fields {unknown} are not known; allowed: {sorted(allowed)}")
    return CompressionConfig.from_dict(entry)


def _label(config: CompressionConfig) -> str:
    backend = getattr(config, "backend", None)
    return f"{config.method} ({backend})" if backend else config.method


def _parse(text: str, kind: str, source: str):
    """JSON or safe YAML text as Python data; a syntax error (or a Python tag) names `source` and the line."""
    try:
        return json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{source} is not valid JSON: line {err.lineno} column {err.colno}: {err.msg}") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if "tag:yaml.org,2002:python" in str(problem):
            problem += " (Python tags are never loaded: plain YAML only)"
        raise ValueError(f"{source} is not valid YAML{where}: {problem}") from err
