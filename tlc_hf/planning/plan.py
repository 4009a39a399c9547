"""`tlc_hf.plan`: which model to train for a wall-clock budget, and how to compress it for a deployment target.

1. Candidates (`candidates.py`): a depth family and a width family around the base (`scale_config`).
2. Training cost, measured here: a few real training steps of each at the real batch and sequence length;
   a candidate that would get fewer than `min_steps` steps in the budget is too large for this device.
3. Quality at the budget (`quality.py`): every kept candidate trains for an equal share of `sweep_fraction` of
   the budget (`run_sweep`, constant LR after warmup); its validation-loss curve is fitted as a power law in
   time and extrapolated to the full budget, with the fit's interval.
4. Compression (`recipes.py`): per candidate, the cheapest recipe (none, then the shipped recipes, cheapest
   first) whose result fits: size computed from the shape, latency measured on a random model of that shape.
5. Output (`recommend.py`, `report.py`): a ranked table, a recommendation, `recipe.yaml`, `plan.json`,
   `plan.png` (atomically).
"""

from __future__ import annotations

import os
import tempfile

import torch
from transformers import AutoTokenizer

from ..compression.recipe import CompressionRecipe, shipped_recipes
from ..data import load_corpus, train_tokenizer
from ..evaluation.bench import cpu_description
from ..modeling import resolve_config
from ..scaling.scale import ENCODER_TYPES
from .candidates import CandidateShapes, timed_candidates
from .quality import sweep_and_fit
from .recipes import KeptVocabulary, choose_recipes, recipe_cost, shape_latency
from .recommend import rank_key, recommend
from .report import write_plan
from .request import PlanRequest
from .result import CandidatePlan, Plan
from .shape import Deployment

__all__ = ["CandidatePlan", "Plan", "PlanRequest", "corpus_and_tokenizer", "plan"]


def plan(
    time_budget: str | float = "2h",
    max_size: str | float = "20MB",
    max_latency: str | float = "15ms",
    *,
    base="roberta-base",
    data=None,
    output_dir: str | None = None,
    sizes=None,
    vocab_size: int = 8192,
    max_examples: int | None = None,
    recipes=None,
    overwrite: bool = False,
    **settings,
) -> Plan:
    """Plan which model to train for `time_budget` and how to compress it to `max_size` and `max_latency`.

    Args:
        time_budget: the training budget ("2h", "45m", seconds).
        max_size: the deployed model's size ("20MB", "1.5GB", bytes).
        max_latency: one forward pass at `latency_batch_size` x `latency_seq_len` ("15ms", "0.2s").
        base: the config the families grow around (a shipped name, a tiny name, a config.json, a folder or Hub
            id, or a config object); its tokenizer is used when its folder has one, else one is trained on the
            data (`vocab_size`).
        data: a `DataIdentity` (default: the embedded movie-review corpus, `max_examples` of it).
        output_dir: where `plan.json`, `plan.md`, `plan.png`, `recipe.yaml` and the sweep go (atomically).
        sizes: explicit candidates "DEPTHxWIDTH,..." instead of the two families.
        recipes: names or paths of recipes to consider (default: every shipped recipe), cheapest first.
        overwrite: replace an existing `output_dir`.
        settings: the other fields of `PlanRequest`: device ("cpu" or "cuda"), task ("classification" or
            "mlm"; quality is the MLM validation loss either way), sweep_fraction, batch_size, seq_len,
            latency_batch_size, latency_seq_len, latency_runs, learning_rate, min_steps, seed, show_progress.

    Returns:
        A `Plan` (also written to `output_dir` when given).

    Example:
        ```python
        result = plan("2h", "20MB", "15ms", base="roberta-base", output_dir="out/plan")
        print(result.table(), result.recommendation)
        ```
    """
    request = PlanRequest.parse(time_budget, max_size, max_latency, **settings)
    base_config = resolve_config(base)
    if request.task == "seq2seq" or base_config.model_type not in ENCODER_TYPES:
        raise ValueError(
            f"task={request.task!r}, base model_type={base_config.model_type!r}: the planner sweeps encoders with "
            f"MLM ({', '.join(ENCODER_TYPES)}) for classification or mlm; seq2seq (T5/mT5) is not planned yet"
        )
    recipe_list = [CompressionRecipe.load(r) for r in (recipes if recipes is not None else sorted(shipped_recipes()))]
    recipe_list.sort(key=recipe_cost)

    corpus, tokenizer = corpus_and_tokenizer(base, data, vocab_size, max_examples, request.seed)
    vocabulary = KeptVocabulary.measure(tokenizer, corpus)
    shapes = CandidateShapes.from_base(base_config, tokenizer, request.seq_len, request.task)
    grid = shapes.grid(sizes)
    hardware = cpu_description()
    if request.device == "cuda":
        hardware["gpu"] = torch.cuda.get_device_name()

    candidates = timed_candidates(grid, shapes, request)
    layer_ms = _refuse_a_latency_below_one_layer(shapes, grid, request, max_latency)
    kept = [c for c in candidates if c.steps_in_budget >= request.min_steps]
    for c in candidates:
        if c not in kept:
            c.notes.append(
                f"too large for this device: {c.steps_in_budget} steps in the budget (< min_steps="
                f"{request.min_steps}) at {c.step_s * 1e3:.0f} ms a step"
            )
    sweep_s = request.sweep_fraction * request.budget_s / max(1, len(kept))
    with tempfile.TemporaryDirectory(prefix="tlc_hf_plan_") as work:
        if kept:
            sweep_and_fit(kept, shapes, request, corpus, tokenizer, sweep_s, work)
        choose_recipes(candidates, recipe_list, shapes, request, vocabulary)
        candidates.sort(key=rank_key)
        recommended, text = recommend(candidates, request)
        chosen = next((c for c in candidates if c.label == recommended), None)
        recipe_yaml = None
        if chosen is not None and chosen.recipe not in (None, "none"):
            recipe_yaml = next(r for r in recipe_list if r.name == chosen.recipe).to_yaml()
        result = Plan(
            budget_s=request.budget_s,
            max_size_bytes=request.max_size_bytes,
            max_latency_ms=request.max_latency_ms,
            device=request.device,
            base=_base_label(base, base_config),
            task=request.task,
            sweep_fraction=request.sweep_fraction,
            sweep_s_per_candidate=sweep_s,
            batch_size=request.batch_size,
            seq_len=request.seq_len,
            latency_batch_size=request.latency_batch_size,
            latency_seq_len=request.latency_seq_len,
            candidates=candidates,
            recommended=recommended,
            recommendation=text,
            one_layer_latency_ms=layer_ms,
            hardware=hardware,
            output_dir=output_dir,
            recipe_yaml=recipe_yaml,
        )
        if output_dir is not None:
            write_plan(result, output_dir, os.path.join(work, "sweep"), overwrite=overwrite)
    return result


def _refuse_a_latency_below_one_layer(shapes: CandidateShapes, grid, request: PlanRequest, max_latency) -> float:
    """The latency of one layer of the narrowest width in the fastest backend, measured; a `max_latency`
    below it is refused before the sweep."""
    smallest = min(width for _, width, _ in grid)
    fastest = Deployment("onnx-int8") if request.device == "cpu" else Deployment("safetensors")
    layer_ms = shape_latency(shapes.deployed(1, smallest), request.task, fastest, request)["latency_ms"]
    if request.max_latency_ms < layer_ms:
        raise ValueError(
            f"max_latency={max_latency!r} is below one transformer layer measured here ({layer_ms:.2f} ms for 1 "
            f"layer of width {smallest}, {fastest.format}, batch {request.latency_batch_size} x "
            f"{request.latency_seq_len} tokens); no candidate can meet it"
        )
    return layer_ms


def corpus_and_tokenizer(base, data=None, vocab_size: int = 8192, max_examples: int | None = None, seed: int = 0):
    """(corpus, tokenizer) the plan trains on: `data` loaded (default: the embedded corpus), and `base`'s own
    tokenizer when `base` is a folder with one, else a byte-level BPE tokenizer of `vocab_size` trained on it."""
    corpus = data.load() if data is not None else load_corpus(seed=seed, max_examples=max_examples)
    if isinstance(base, (str, os.PathLike)) and os.path.isfile(os.path.join(str(base), "tokenizer_config.json")):
        return corpus, AutoTokenizer.from_pretrained(str(base))
    return corpus, train_tokenizer("roberta", vocab_size, corpus)


def _base_label(base, config) -> str:
    """`base` as given (a name or path), or a config object's type and shape."""
    if isinstance(base, (str, os.PathLike)):
        return str(base)
    return f"{config.model_type} config ({config.num_hidden_layers}x{config.hidden_size})"
