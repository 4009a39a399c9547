"""`tlc_hf.plan`: which model to train for a wall-clock budget, and how to compress it for a deployment target.

1. Candidates: a depth family and a width family around the base (`scale_config`).
2. Training cost, measured here: a few real training steps of each at the real batch and sequence length;
   a candidate that would get fewer than `min_steps` steps in the budget is too large for this device.
3. Quality at the budget: every kept candidate trains for an equal share of `sweep_fraction` of the budget
   (`run_sweep`, constant LR after warmup); its validation-loss curve is fitted as a power law in time and
   extrapolated to the full budget, with the fit's interval.
4. Compression: per candidate, the cheapest recipe (none, then the shipped recipes, cheapest first) whose
   result fits: size computed from the shape, latency measured on a random model of that shape.
5. Output: a ranked table, a recommendation, `recipe.yaml`, `plan.json`, `plan.png` (atomically).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field

from ..budget.duration import format_duration, parse_duration
from .shape import Deployment, compressed_config, deployment_of
from .size import deployed_weight_bytes, parse_size

logger = logging.getLogger(__name__)

TASKS = ("classification", "mlm", "seq2seq")
DEVICES = ("cpu", "cuda")
FAMILY_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
_LATENCY = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|us)?", re.IGNORECASE)
_ALLOWED_LATENCIES = 'a positive number of milliseconds, or a string like "15ms", "0.2s", "800us"'


def parse_latency(value, name: str = "max_latency") -> float:
    """Milliseconds in `value` ("15ms", "0.2s", "800us", or a number of milliseconds)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{name}={value!r} has type {type(value).__name__}; expected {_ALLOWED_LATENCIES}")
    if isinstance(value, str):
        match = _LATENCY.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{name}={value!r} is not a latency; expected {_ALLOWED_LATENCIES}")
        ms = float(match.group(1)) * {"ms": 1.0, "s": 1e3, "us": 1e-3}[(match.group(2) or "ms").lower()]
    else:
        ms = float(value)
    if not math.isfinite(ms) or ms <= 0:
        raise ValueError(f"{name}={value!r} must be > 0; expected {_ALLOWED_LATENCIES}")
    return ms


@dataclass
class CandidatePlan:
    """One candidate size: its training cost, predicted quality at the budget and cheapest fitting recipe."""

    label: str
    family: str
    num_layers: int
    hidden_size: int
    params: int
    step_s: float
    steps_in_budget: int
    tokens_in_budget: int
    learning_rate: float
    predicted_loss: float | None = None
    loss_low: float | None = None
    loss_high: float | None = None
    sweep_loss: float | None = None
    recipe: str | None = None
    size_bytes: int | None = None
    file_bytes: int | None = None
    latency_ms: float | None = None
    fits: bool = False
    time_s: float | None = None
    notes: list = field(default_factory=list)
    options: list = field(default_factory=list)

    @property
    def predicted_perplexity(self) -> float | None:
        return None if self.predicted_loss is None else math.exp(self.predicted_loss)


@dataclass
class Plan:
    """The result of `plan`: candidates ranked (fitting ones first, by predicted loss), the recommendation."""

    budget_s: float
    max_size_bytes: float
    max_latency_ms: float
    device: str
    base: str
    task: str
    sweep_fraction: float
    sweep_s_per_candidate: float
    batch_size: int
    seq_len: int
    latency_batch_size: int
    latency_seq_len: int
    candidates: list[CandidatePlan]
    recommended: str | None
    recommendation: str
    one_layer_latency_ms: float
    hardware: dict
    output_dir: str | None = None
    recipe_yaml: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        for row, candidate in zip(data["candidates"], self.candidates, strict=True):
            row["predicted_perplexity"] = candidate.predicted_perplexity
        return data

    def table(self) -> str:
        """The ranked table as Markdown."""
        lines = [
            "| rank | candidate | params | steps in budget | predicted loss (90% interval) | recipe | size | "
            "latency | fits | time |",
            "|---:|---|---:|---:|---|---|---:|---:|---|---:|",
        ]
        for rank, c in enumerate(self.candidates, 1):
            loss = "-" if c.predicted_loss is None else f"{c.predicted_loss:.3f}"
            if c.loss_low is not None:
                loss += f" ({c.loss_low:.3f}-{c.loss_high:.3f})"
            size = "-" if c.size_bytes is None else f"{c.size_bytes / 1e6:.2f} MB"
            if c.file_bytes:
                size += f" ({c.file_bytes / 1e6:.2f} on disk)"
            latency = "-" if c.latency_ms is None else f"{c.latency_ms:.2f} ms"
            when = "-" if c.time_s is None else format_duration(c.time_s)
            lines.append(
                f"| {rank} | {c.label} ({c.family}) | {c.params / 1e6:.2f}M | {c.steps_in_budget:,} | {loss} | "
                f"{c.recipe or '-'} | {size} | {latency} | {'yes' if c.fits else 'no'} | {when} |"
            )
        return "\n".join(lines)


def plan(
    time_budget: str | float = "2h",
    max_size: str | float = "20MB",
    max_latency: str | float = "15ms",
    *,
    device: str = "cpu",
    base: str = "roberta-base",
    task: str = "classification",
    data=None,
    output_dir: str | None = None,
    sizes=None,
    sweep_fraction: float = 0.1,
    batch_size: int = 16,
    seq_len: int = 128,
    latency_batch_size: int = 1,
    latency_seq_len: int = 128,
    learning_rate: float = 1e-3,
    min_steps: int = 100,
    vocab_size: int = 8192,
    max_examples: int | None = None,
    recipes=None,
    latency_runs: int = 10,
    seed: int = 0,
    show_progress: bool = True,
    overwrite: bool = False,
) -> Plan:
    """Plan which model to train for `time_budget` and how to compress it to `max_size` and `max_latency`.

    Args:
        time_budget: the training budget ("2h", "45m", seconds).
        max_size: the deployed model's size ("20MB", "1.5GB", bytes).
        max_latency: one forward pass at `latency_batch_size` x `latency_seq_len` ("15ms", "0.2s").
        device: "cpu" or "cuda": where training is timed and the model is served.
        base: the config the families grow around (a shipped name, a tiny name, a config.json or Hub id);
            its tokenizer is used when it has one, else one is trained on the data (`vocab_size`).
        task: the deployed head ("classification" or "mlm"); quality is the MLM validation loss.
        data: a `DataIdentity` (default: the embedded movie-review corpus, `max_examples` of it).
        output_dir: where `plan.json`, `plan.md`, `plan.png`, `recipe.yaml` and the sweep go (atomically).
        sizes: explicit candidates "DEPTHxWIDTH,..." instead of the two families.
        sweep_fraction: the share of the budget the whole sweep takes (split equally over the candidates).
        batch_size, seq_len: the training batch and sequence length (timed and swept at these).
        learning_rate: for the smallest candidate; larger ones get it scaled down by width and depth.
        min_steps: a candidate with fewer steps than this in the budget is too large for the device.
        recipes: names or paths of recipes to consider (default: every shipped recipe), cheapest first.
        latency_runs: timed calls per round (3 rounds) for each latency measurement.

    Returns:
        A `Plan` (also written to `output_dir` when given).

    Example:
        ```python
        result = plan("2h", "20MB", "15ms", base="roberta-base", output_dir="out/plan")
        print(result.table(), result.recommendation)
        ```
    """
    import torch

    from ..compression.recipe import CompressionRecipe, shipped_recipes
    from ..evaluation.bench import cpu_description
    from ..modeling import resolve_config
    from ..scaling.scale import ENCODER_TYPES

    budget_s = parse_duration(time_budget, "time_budget")
    max_bytes = parse_size(max_size, "max_size")
    max_ms = parse_latency(max_latency, "max_latency")
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not known; choose one of {TASKS}")
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not known; choose one of {DEVICES}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but no CUDA device is visible here; plan with device='cpu'")
    if not 0 < sweep_fraction <= 0.5:
        raise ValueError(f"sweep_fraction={sweep_fraction!r} must lie in (0, 0.5]: a short sweep, e.g. 0.05-0.1")
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len), ("min_steps", min_steps)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive int")
    base_config = resolve_config(base)
    if task == "seq2seq" or base_config.model_type not in ENCODER_TYPES:
        raise ValueError(
            f"task={task!r}, base model_type={base_config.model_type!r}: the planner sweeps encoders with MLM "
            f"({', '.join(ENCODER_TYPES)}) for classification or mlm; seq2seq (T5/mT5) is not planned yet"
        )
    recipe_list = [CompressionRecipe.load(r) for r in (recipes if recipes is not None else sorted(shipped_recipes()))]
    recipe_list.sort(key=_recipe_cost)

    corpus, tokenizer = _data_and_tokenizer(base, data, vocab_size, max_examples, seed)
    kept_vocab, vocab_note = _kept_vocabulary(tokenizer, corpus)
    head_size = base_config.hidden_size // base_config.num_attention_heads
    grid = _candidates(base_config, sizes, head_size)
    hardware = cpu_description()
    if device == "cuda":
        hardware["gpu"] = torch.cuda.get_device_name()

    candidates = _timed_candidates(
        grid, base_config, head_size, tokenizer, batch_size, seq_len, budget_s, learning_rate, device
    )
    # a latency no single layer can meet is refused before the sweep (timed after the training probe: a
    # probe run after an ONNX export was measured up to 40x slower in one run, cause not found)
    smallest = min(width for _, width, _ in grid)
    one_layer = _deployed_config(base_config, 1, smallest, head_size, tokenizer, seq_len, task)
    fastest = Deployment("onnx-int8") if device == "cpu" else Deployment("safetensors")
    layer_ms = _latency(one_layer, task, fastest, device, latency_batch_size, latency_seq_len, latency_runs)[
        "latency_ms"
    ]
    if max_ms < layer_ms:
        raise ValueError(
            f"max_latency={max_latency!r} is below one transformer layer measured here ({layer_ms:.2f} ms for 1 layer "
            f"of width {smallest}, {fastest.format}, batch {latency_batch_size} x {latency_seq_len} tokens); "
            "no candidate can meet it"
        )

    kept = [c for c in candidates if c.steps_in_budget >= min_steps]
    for c in candidates:
        if c not in kept:
            c.notes.append(
                f"too large for this device: {c.steps_in_budget} steps in the budget (< min_steps={min_steps}) "
                f"at {c.step_s * 1e3:.0f} ms a step"
            )
    sweep_s = sweep_fraction * budget_s / max(1, len(kept))
    import tempfile

    work = tempfile.TemporaryDirectory(prefix="tlc_hf_plan_")
    if kept:
        _sweep_and_fit(
            kept,
            base_config,
            head_size,
            corpus,
            tokenizer,
            batch_size,
            seq_len,
            sweep_s,
            budget_s,
            work.name,
            seed,
            show_progress,
        )

    _choose_recipes(
        candidates,
        recipe_list,
        base_config,
        head_size,
        tokenizer,
        seq_len,
        task,
        kept_vocab,
        vocab_note,
        max_bytes,
        max_ms,
        device,
        latency_batch_size,
        latency_seq_len,
        latency_runs,
        budget_s,
        show_progress,
    )
    candidates.sort(key=_rank_key)
    recommended, text = _recommend(candidates, max_bytes, max_ms, budget_s)
    chosen = next((c for c in candidates if c.label == recommended), None)
    recipe_yaml = None
    if chosen is not None and chosen.recipe not in (None, "none"):
        recipe_yaml = next(r for r in recipe_list if r.name == chosen.recipe).to_yaml()
    result = Plan(
        budget_s=budget_s,
        max_size_bytes=max_bytes,
        max_latency_ms=max_ms,
        device=device,
        base=str(base),
        task=task,
        sweep_fraction=sweep_fraction,
        sweep_s_per_candidate=sweep_s,
        batch_size=batch_size,
        seq_len=seq_len,
        latency_batch_size=latency_batch_size,
        latency_seq_len=latency_seq_len,
        candidates=candidates,
        recommended=recommended,
        recommendation=text,
        one_layer_latency_ms=layer_ms,
        hardware=hardware,
        output_dir=output_dir,
        recipe_yaml=recipe_yaml,
    )
    if output_dir is not None:
        write_plan(result, output_dir, os.path.join(work.name, "sweep"), overwrite=overwrite)
    work.cleanup()
    return result


def _recipe_cost(recipe) -> tuple:
    """Cheapest first: no training before training, then a shorter recovery budget, then fewer methods."""
    budget = parse_duration(recipe.budget, "budget") if recipe.budget is not None else 0.0
    return (recipe.needs_training, budget, len(recipe.methods), recipe.name or "")


def _data_and_tokenizer(base, data, vocab_size, max_examples, seed):
    from transformers import AutoTokenizer

    from ..data import load_corpus, train_tokenizer

    corpus = data.load() if data is not None else load_corpus(seed=seed, max_examples=max_examples)
    if isinstance(base, (str, os.PathLike)) and os.path.isfile(os.path.join(str(base), "tokenizer_config.json")):
        return corpus, AutoTokenizer.from_pretrained(str(base))  # the base's own tokenizer
    tokenizer = train_tokenizer("roberta", vocab_size, corpus)
    return corpus, tokenizer


def _kept_vocabulary(tokenizer, corpus) -> tuple[int | None, str | None]:
    """Tokens the training texts use (what vocabulary trimming keeps), or None with the reason."""
    import json as _json

    from ..compression.vocabulary import TRIMMABLE_MODELS, _texts, used_token_ids

    kind = _json.loads(tokenizer.backend_tokenizer.to_str())["model"]["type"]
    if kind not in TRIMMABLE_MODELS:
        return None, f"the tokenizer is {kind}: vocabulary trimming handles {TRIMMABLE_MODELS} only"
    return len(used_token_ids(tokenizer, _texts(corpus, None))), None


def _candidates(config, sizes, head_size: int) -> list[tuple[int, int, str]]:
    """(depth, width, family) pairs: `sizes` if given, else the depth and width families around `config`."""
    from ..scaling.sweep import parse_sizes

    if sizes is not None:
        return [(d, w, "given") for d, w in parse_sizes(sizes)]
    depth, width = config.num_hidden_layers, config.hidden_size
    grid = {}
    for f in FAMILY_FRACTIONS:
        grid.setdefault((max(1, round(depth * f)), width), "depth")
        grid.setdefault((depth, max(head_size, round(width * f / head_size) * head_size)), "width")
    return [(d, w, family) for (d, w), family in grid.items()]


def _label(depth: int, width: int) -> str:
    return f"L{depth}xH{width}"


def _train_config(base_config, depth, width, head_size, tokenizer, seq_len):
    from ..scaling.scale import scale_config

    config = scale_config(base_config, depth, width, head_dim=head_size)
    config.vocab_size = len(tokenizer)
    config.max_position_embeddings = max(config.max_position_embeddings, seq_len + 2)
    config.pad_token_id = tokenizer.pad_token_id
    return config


def _deployed_config(base_config, depth, width, head_size, tokenizer, seq_len, task):
    config = _train_config(base_config, depth, width, head_size, tokenizer, seq_len)
    if task == "classification":
        config.num_labels = 2
    return config


def _timed_candidates(grid, base_config, head_size, tokenizer, batch, seq_len, budget_s, lr, device):
    """Each candidate's cost: a few real MLM training steps (forward, backward, AdamW) at batch x seq_len."""
    from ..scaling.breakdown import param_breakdown

    smallest = min(grid, key=lambda g: g[0] * g[1] ** 2)
    candidates = []
    for depth, width, family in grid:
        config = _train_config(base_config, depth, width, head_size, tokenizer, seq_len)
        step_s = time_training_step(config, batch, seq_len, device)
        steps = int(budget_s / step_s)
        candidates.append(
            CandidatePlan(
                label=_label(depth, width),
                family=family,
                num_layers=depth,
                hidden_size=width,
                params=param_breakdown(config)["total"],
                step_s=step_s,
                steps_in_budget=steps,
                tokens_in_budget=steps * batch * seq_len,
                learning_rate=lr * (smallest[1] / width) * (smallest[0] / depth),  # the main job's per-size rule
            )
        )
    return candidates


def time_training_step(config, batch_size: int, seq_len: int, device: str = "cpu", steps: int = 3) -> float:
    """Seconds per MLM training step (median of `steps` after one untimed), on random tokens."""
    import statistics

    import torch

    from ..modeling import build_model

    torch.manual_seed(0)
    model = build_model(config, "mlm").to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(5, config.vocab_size, (batch_size, seq_len), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = []
    for _ in range(steps + 1):
        sync()
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def _sweep_and_fit(
    kept, base_config, head_size, corpus, tokenizer, batch, seq_len, sweep_s, budget_s, work, seed, show_progress
):
    from ..scaling.sweep import run_sweep
    from .fit import fit_power_law

    rates = {(c.num_layers, c.hidden_size): c.learning_rate for c in kept}
    sweep = run_sweep(
        [(c.num_layers, c.hidden_size) for c in kept],
        output_dir=os.path.join(work, "sweep"),
        budget=sweep_s,
        base=base_config,
        head_dim=head_size,
        batch_sizes=[batch],
        learning_rate_for=lambda d, w: rates[(d, w)],
        eval_every=sweep_s / 10,
        corpus=corpus,
        tokenizer=tokenizer,
        block_size=seq_len,
        seed=seed,
        show_progress=show_progress,
        time_lr_schedule="constant",
    )
    warmup_s = 0.06 * sweep_s  # the sweep's time_warmup_ratio
    for candidate, run in zip(kept, sweep["runs"], strict=True):
        losses = [[t, math.log(ppl)] for t, ppl in run["curve"]]
        candidate.sweep_loss = losses[-1][1] if losses else None
        if run["steps"]:  # the sweep's own clock: steps per second of training, budget-wide
            candidate.steps_in_budget = int(run["steps"] / run["elapsed_s"] * budget_s)
            candidate.tokens_in_budget = candidate.steps_in_budget * batch * seq_len
        try:
            fit = fit_power_law(losses, start_s=warmup_s)
        except ValueError as err:
            candidate.notes.append(str(err))
            continue
        predicted = fit.predict(budget_s)
        candidate.predicted_loss, candidate.loss_low, candidate.loss_high = (
            predicted["loss"],
            predicted["low"],
            predicted["high"],
        )
        if fit.slope >= 0:
            candidate.notes.append("its loss did not fall during the sweep (slope >= 0): the LR may not suit it")


def _latency(config, task, deployment, device, batch, seq_len, runs, cache={}):  # noqa: B006 - a per-process cache
    from .latency import measure_latency

    key = (json.dumps(config.to_dict(), sort_keys=True, default=str), task, deployment, device, batch, seq_len)
    if key not in cache:
        cache[key] = measure_latency(
            config, task, deployment, batch_size=batch, seq_len=seq_len, runs=runs, device=device
        )
    return cache[key]


def _choose_recipes(
    candidates,
    recipes,
    base_config,
    head_size,
    tokenizer,
    seq_len,
    task,
    kept_vocab,
    vocab_note,
    max_bytes,
    max_ms,
    device,
    latency_batch,
    latency_seq,
    runs,
    budget_s,
    show_progress,
):
    """Per candidate: walk the recipes cheapest first; the first whose size (weights computed; an ONNX file's
    graph measured on the shape model) and latency (measured) fit is chosen; the others stay as `options` (what each would give) for the no-fit report."""
    from transformers.utils import logging as hf_logging

    ladder = [(None, Deployment("safetensors"))]
    for recipe in recipes:
        try:
            ladder.append((recipe, deployment_of(recipe)))
        except ValueError as err:
            logger.info("skipping recipe %s: %s", recipe.name, err)
    bar = hf_logging.tqdm(total=len(candidates), desc="latency", unit="candidate", disable=not show_progress)
    for candidate in candidates:
        trained = _deployed_config(
            base_config, candidate.num_layers, candidate.hidden_size, head_size, tokenizer, seq_len, task
        )
        for recipe, deployment in ladder:
            name = recipe.name if recipe is not None else "none"
            if deployment.format == "onnx-int8" and device != "cpu":
                continue  # ONNX Runtime int8 is the CPU backend
            try:
                config = compressed_config(trained, recipe, kept_vocab) if recipe is not None else trained
            except ValueError as err:
                candidate.options.append({"recipe": name, "skipped": vocab_note or str(err)})
                continue
            size = deployed_weight_bytes(config, task, deployment)["bytes"]
            option = {"recipe": name, "size_bytes": size, "fits_size": size <= max_bytes}
            recovery = parse_duration(recipe.budget, "budget") if recipe is not None and recipe.budget else 0.0
            option["time_s"] = budget_s + recovery
            if size <= max_bytes:
                measured = _latency(config, task, deployment, device, latency_batch, latency_seq, runs)
                on_disk = measured.get("file_bytes") or size  # ONNX: weights + the graph, measured
                option.update(
                    latency_ms=measured["latency_ms"],
                    file_bytes=measured.get("file_bytes"),
                    fits_size=on_disk <= max_bytes,
                    fits_latency=measured["latency_ms"] <= max_ms and on_disk <= max_bytes,
                )
            candidate.options.append(option)
            if option.get("fits_latency"):
                break
        fitting = [o for o in candidate.options if o.get("fits_latency")]
        pick = fitting[0] if fitting else _closest(candidate.options, max_bytes, max_ms)
        if pick is not None:
            candidate.recipe, candidate.size_bytes = pick["recipe"], pick["size_bytes"]
            candidate.file_bytes, candidate.latency_ms = pick.get("file_bytes"), pick.get("latency_ms")
            candidate.time_s, candidate.fits = pick["time_s"], bool(fitting)
        if candidate.predicted_loss is None:
            candidate.fits = False  # no quality prediction: never recommended
        bar.update(1)
    bar.close()


def _closest(options: list[dict], max_bytes: float, max_ms: float) -> dict | None:
    """The option that misses the target by the least (the larger of its size and latency excess ratios)."""
    sized = [o for o in options if "size_bytes" in o]
    if not sized:
        return None

    def excess(o):
        over_size = o["size_bytes"] / max_bytes
        over_latency = o["latency_ms"] / max_ms if o.get("latency_ms") is not None else over_size
        return max(over_size, over_latency)

    return min(sized, key=excess)


def _rank_key(c: CandidatePlan):
    return (not c.fits, c.predicted_loss if c.predicted_loss is not None else math.inf, c.params)


def _recommend(candidates, max_bytes, max_ms, budget_s) -> tuple[str | None, str]:
    fitting = [c for c in candidates if c.fits]
    target = f"{max_bytes / 1e6:g} MB and {max_ms:g} ms"
    if fitting:
        best = fitting[0]
        lines = [
            f"Train {best.label} ({best.params / 1e6:.2f}M parameters, {best.family} family) for "
            f"{format_duration(budget_s)}, then "
            + (
                "deploy it uncompressed (float safetensors)"
                if best.recipe == "none"
                else f"compress it with {best.recipe}"
            )
            + ": predicted validation loss "
            f"{_loss_text(best)} at the budget, {best.size_bytes / 1e6:.2f} MB, {best.latency_ms:.2f} ms measured "
            f"here (target {target})."
        ]
        if len(fitting) > 1:
            second = fitting[1]
            overlap = best.loss_high is not None and second.loss_low is not None and best.loss_high >= second.loss_low
            lines.append(
                f"Runner-up: {second.label} with {second.recipe}, {_loss_text(second)}"
                + ("; the intervals overlap, so the two are a tie within the fit's uncertainty." if overlap else ".")
            )
        return best.label, " ".join(lines)
    predicted = [c for c in candidates if c.predicted_loss is not None and c.size_bytes is not None]
    if not predicted:
        return None, (
            "No candidate could be planned: none gets enough training steps in the budget on this device. "
            "What would have to give: a longer budget, or smaller sizes (--sizes)."
        )
    closest = sorted(predicted, key=lambda c: max(c.size_bytes / max_bytes, (c.latency_ms or 0) / max_ms))[:2]
    smallest_size = min(o["size_bytes"] for c in predicted for o in c.options if "size_bytes" in o)
    latencies = [o["latency_ms"] for c in predicted for o in c.options if o.get("latency_ms") is not None]
    gives = []
    if smallest_size > max_bytes:
        gives.append(f"a larger size (the smallest candidate compresses to {smallest_size / 1e6:.2f} MB)")
    if latencies and min(latencies) > max_ms:
        gives.append(f"a slower latency (the fastest measured is {min(latencies):.2f} ms)")
    if not gives:
        gives.append("size and latency together (each is met by some candidate, but not both by one)")
    near = "; ".join(
        f"{c.label} with {c.recipe}: {c.size_bytes / 1e6:.2f} MB, "
        + (f"{c.latency_ms:.2f} ms" if c.latency_ms is not None else "latency not measured (too large)")
        for c in closest
    )
    return None, f"No candidate meets {target}. Closest: {near}. What would have to give: {', '.join(gives)}."


def _loss_text(c: CandidatePlan) -> str:
    text = f"{c.predicted_loss:.3f}"
    return text + (f" (90% interval {c.loss_low:.3f}-{c.loss_high:.3f})" if c.loss_low is not None else "")


def write_plan(result: Plan, output_dir: str, sweep_dir: str | None = None, overwrite: bool = False) -> None:
    """`plan.json`, `plan.md` (table + recommendation), `plan.png`, `recipe.yaml` (when a recipe is chosen) and
    the sweep's `sweep/` into `output_dir`, which appears only when complete."""
    import shutil

    from ..data.cache import atomic_directory

    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        with open(os.path.join(tmp, "plan.json"), "w") as f:
            json.dump(result.to_dict(), f, indent=2)
        with open(os.path.join(tmp, "plan.md"), "w") as f:
            f.write(render_markdown(result))
        if result.recipe_yaml is not None:
            with open(os.path.join(tmp, "recipe.yaml"), "w") as f:
                f.write(result.recipe_yaml)
        plot_plan(result, os.path.join(tmp, "plan.png"))
        if sweep_dir is not None and os.path.isdir(sweep_dir):
            shutil.copytree(sweep_dir, os.path.join(tmp, "sweep"), ignore=shutil.ignore_patterns("L*"))


def render_markdown(result: Plan) -> str:
    hw = result.hardware
    lines = [
        f"# Plan: {format_duration(result.budget_s)} of training, {result.max_size_bytes / 1e6:g} MB, "
        f"{result.max_latency_ms:g} ms",
        "",
        f"Base {result.base}, task {result.task}, device {result.device} ({hw.get('cpu')}, "
        f"{hw.get('torch_threads')} threads{', ' + hw['gpu'] if hw.get('gpu') else ''}). Training timed at batch "
        f"{result.batch_size} x {result.seq_len} tokens; latency measured at batch {result.latency_batch_size} x "
        f"{result.latency_seq_len}. Sweep: {result.sweep_fraction:.0%} of the budget, "
        f"{result.sweep_s_per_candidate:.1f} s per candidate; loss = MLM validation loss, extrapolated to the "
        "budget by a power law in time (90% interval).",
        "",
        result.table(),
        "",
        f"**Recommendation.** {result.recommendation}",
        "",
    ]
    notes = [f"- {c.label}: {note}" for c in result.candidates for note in c.notes]
    if notes:
        lines += ["Notes:", *notes, ""]
    return "\n".join(lines)


def plot_plan(result: Plan, path: str) -> None:
    """Predicted loss at the budget against deployed size, one point per candidate (its chosen or closest
    recipe), with the interval; the target box (size <= max_size) shaded; latency misses hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    points = [c for c in result.candidates if c.predicted_loss is not None and c.size_bytes is not None]
    for c in points:
        low = c.predicted_loss - (c.loss_low if c.loss_low is not None else c.predicted_loss)
        high = (c.loss_high if c.loss_high is not None else c.predicted_loss) - c.predicted_loss
        meets_latency = c.latency_ms is not None and c.latency_ms <= result.max_latency_ms
        ax.errorbar(
            c.size_bytes / 1e6,
            c.predicted_loss,
            yerr=[[low], [high]],
            fmt="o",
            mfc=None if meets_latency else "none",
            capsize=3,
            label=f"{c.label} + {c.recipe} ({c.latency_ms:.1f} ms)" if c.latency_ms else f"{c.label} + {c.recipe}",
        )
    ax.axvspan(0, result.max_size_bytes / 1e6, color="tab:green", alpha=0.08, label="size target")
    ax.axvline(result.max_size_bytes / 1e6, color="tab:green", linestyle="--", linewidth=1)
    ax.set_xlabel("deployed size (MB)")
    ax.set_ylabel(f"predicted MLM loss at {format_duration(result.budget_s)}")
    ax.set_title(f"Plan: target {result.max_size_bytes / 1e6:g} MB, {result.max_latency_ms:g} ms (hollow: too slow)")
    ax.grid(True, alpha=0.3)
    if points:
        ax.set_xlim(0, max(max(c.size_bytes for c in points), result.max_size_bytes) / 1e6 * 1.15)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
