"""Compression to the target, per candidate: the recipes walked cheapest first (none, then no training before
training, then a shorter recovery); the first whose size (computed from the compressed shape; an ONNX file
measured) and latency (measured on a random model of that shape) fit is the candidate's recipe."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from transformers.utils import logging as hf_logging

from ..budget.duration import parse_duration
from ..compression.vocabulary import TRIMMABLE_MODELS, _texts, used_token_ids
from .candidates import CandidateShapes
from .latency import measure_latency
from .request import PlanRequest
from .shape import Deployment, compressed_config, deployment_of
from .size import deployed_weight_bytes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeptVocabulary:
    """The tokens vocabulary trimming would keep (`size`), or None and the `reason` it cannot be planned."""

    size: int | None
    reason: str | None = None

    @classmethod
    def measure(cls, tokenizer, corpus) -> KeptVocabulary:
        """The tokens `corpus`'s training texts use under `tokenizer` (what vocabulary trimming keeps)."""
        kind = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["type"]
        if kind not in TRIMMABLE_MODELS:
            return cls(None, f"the tokenizer is {kind}: vocabulary trimming handles {TRIMMABLE_MODELS} only")
        return cls(len(used_token_ids(tokenizer, _texts(corpus, None))))


def recipe_cost(recipe) -> tuple:
    """Sort key, cheapest first: no training before training, then a shorter recovery budget, then fewer
    methods."""
    budget = parse_duration(recipe.budget, "budget") if recipe.budget is not None else 0.0
    return (recipe.needs_training, budget, len(recipe.methods), recipe.name or "")


def choose_recipes(
    candidates: list, recipes: list, shapes: CandidateShapes, request: PlanRequest, vocabulary: KeptVocabulary
) -> None:
    """Per candidate: walk `recipes` (sorted by `recipe_cost`) after "none" (float safetensors); the first whose
    size and latency fit the request's target is the candidate's `recipe` (`fits` True); without one, the option
    that misses by the least. Every option tried stays in `options` (what each would give) for the no-fit
    report. A candidate without a quality prediction never fits."""
    ladder = [(None, Deployment("safetensors"))]
    for recipe in recipes:
        try:
            ladder.append((recipe, deployment_of(recipe)))
        except ValueError as err:
            logger.info("skipping recipe %s: %s", recipe.name, err)
    bar = hf_logging.tqdm(total=len(candidates), desc="latency", unit="candidate", disable=not request.show_progress)
    for candidate in candidates:
        trained = shapes.deployed(candidate.num_layers, candidate.hidden_size)
        for recipe, deployment in ladder:
            option = _option(trained, recipe, deployment, request, vocabulary)
            if option is None:
                continue
            candidate.options.append(option)
            if option.get("fits_latency"):
                break
        fitting = [o for o in candidate.options if o.get("fits_latency")]
        pick = fitting[0] if fitting else closest_option(candidate.options, request)
        if pick is not None:
            candidate.recipe, candidate.size_bytes = pick["recipe"], pick["size_bytes"]
            candidate.file_bytes, candidate.latency_ms = pick.get("file_bytes"), pick.get("latency_ms")
            candidate.time_s, candidate.fits = pick["time_s"], bool(fitting)
        if candidate.predicted_loss is None:
            candidate.fits = False  # no quality prediction: never recommended
        bar.update(1)
    bar.close()


def _option(trained, recipe, deployment: Deployment, request: PlanRequest, vocabulary: KeptVocabulary):
    """What `recipe` gives on the `trained` shape: {"recipe", "size_bytes", "fits_size", "time_s"} and, when the
    computed size fits, the measured "latency_ms", "file_bytes" (ONNX), "fits_latency"; {"recipe", "skipped"}
    when the shape cannot be planned; None for a backend the device does not serve."""
    name = recipe.name if recipe is not None else "none"
    if deployment.format == "onnx-int8" and request.device != "cpu":
        return None  # ONNX Runtime int8 is the CPU backend
    try:
        config = compressed_config(trained, recipe, vocabulary.size) if recipe is not None else trained
    except ValueError as err:
        return {"recipe": name, "skipped": vocabulary.reason or str(err)}
    size = deployed_weight_bytes(config, request.task, deployment)["bytes"]
    recovery = parse_duration(recipe.budget, "budget") if recipe is not None and recipe.budget else 0.0
    option = {
        "recipe": name,
        "size_bytes": size,
        "fits_size": size <= request.max_size_bytes,
        "time_s": request.budget_s + recovery,
    }
    if size <= request.max_size_bytes:
        measured = shape_latency(config, request.task, deployment, request)
        on_disk = measured.get("file_bytes") or size  # ONNX: weights + the graph, measured
        option.update(
            latency_ms=measured["latency_ms"],
            file_bytes=measured.get("file_bytes"),
            fits_size=on_disk <= request.max_size_bytes,
            fits_latency=measured["latency_ms"] <= request.max_latency_ms and on_disk <= request.max_size_bytes,
        )
    return option


_MEASURED: dict = {}  # one measurement per shape, backend and input in a process


def shape_latency(config, task: str, deployment: Deployment, request: PlanRequest) -> dict:
    """`measure_latency` of `config`'s shape at the request's latency input, once per process."""
    key = (
        json.dumps(config.to_dict(), sort_keys=True, default=str),
        task,
        deployment,
        request.device,
        request.latency_batch_size,
        request.latency_seq_len,
    )
    if key not in _MEASURED:
        _MEASURED[key] = measure_latency(
            config,
            task,
            deployment,
            batch_size=request.latency_batch_size,
            seq_len=request.latency_seq_len,
            runs=request.latency_runs,
            device=request.device,
        )
    return _MEASURED[key]


def closest_option(options: list[dict], request: PlanRequest) -> dict | None:
    """The option that misses the target by the least (the larger of its size and latency excess ratios)."""
    sized = [o for o in options if "size_bytes" in o]
    if not sized:
        return None

    def excess(o):
        over_size = o["size_bytes"] / request.max_size_bytes
        over_latency = o["latency_ms"] / request.max_latency_ms if o.get("latency_ms") is not None else over_size
        return max(over_size, over_latency)

    return min(sized, key=excess)
