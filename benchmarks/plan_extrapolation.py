"""Does the planner's extrapolation hold? On the main job's sizes (`tlc-hf demo` --quick: 2x64, 4x64, 2x128;
its corpus, tokenizer size, block, batch, dropout-free roberta-tiny config and LR rule), `tlc_hf.plan` sweeps a
fraction of the budget (the default preset's 2 minutes of pretraining) and predicts each size's validation MLM
loss at the full budget; then each size trains the full budget with the same settings (`run_sweep`, constant LR
after warmup, the plan's learning rate per size) and the measured final loss is set against the prediction and
its 90% interval. The training-step probe is timed before and after the plan (ONNX exports included) in the
same process, and torch's thread count recorded, to show whether anything in the plan slows later training.

    flock /tmp/tlc_cpu.lock python benchmarks/plan_extrapolation.py [--budget 2m] [--sweep_fraction 0.3]
        [--sizes 2x64,4x64,2x128] [--plan_dir docs/plan/quick] [--out benchmarks/results/plan_extrapolation.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from tlc_hf.budget.duration import parse_duration  # noqa: E402
from tlc_hf.data.identity import DataIdentity  # noqa: E402
from tlc_hf.evaluation.bench import cpu_description  # noqa: E402
from tlc_hf.modeling import resolve_config  # noqa: E402
from tlc_hf.planning.candidates import CandidateShapes, time_training_step  # noqa: E402
from tlc_hf.planning.plan import corpus_and_tokenizer, plan  # noqa: E402
from tlc_hf.scaling.sweep import run_sweep  # noqa: E402
from tlc_hf.workflows.demo import PRESETS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="2m")
    parser.add_argument("--sweep_fraction", type=float, default=0.3, help="of the budget, over all sizes")
    parser.add_argument("--max_size", default="1MB")
    parser.add_argument("--max_latency", default="3ms")
    parser.add_argument("--sizes", default="2x64,4x64,2x128", help="the quick preset's base, deeper and wider")
    parser.add_argument("--plan_dir", default="docs/plan/quick")
    parser.add_argument("--out", default="benchmarks/results/plan_extrapolation.json")
    args = parser.parse_args()
    started = time.perf_counter()
    load = {"before": _load_average()}
    quick = PRESETS["quick"]
    data = DataIdentity(source=quick.pretrain_source)
    base = resolve_config("roberta-tiny")
    # the main job's pretraining config (`workflows/demo/pretraining.py`): no dropout, heads of 32
    base.hidden_dropout_prob = base.attention_probs_dropout_prob = 0.0
    base.num_attention_heads = base.hidden_size // 32
    corpus, tokenizer = corpus_and_tokenizer(base, data, quick.vocab_size)
    probe_config = CandidateShapes.from_base(base, tokenizer, quick.block_size).training(2, 64)
    probe = {
        "before_plan": {
            "step_s": time_training_step(probe_config, quick.pretrain_batch, quick.block_size),
            "threads": torch.get_num_threads(),
        }
    }
    settings = dict(
        base=base,
        sizes=args.sizes,
        batch_size=quick.pretrain_batch,
        seq_len=quick.block_size,
        vocab_size=quick.vocab_size,
        learning_rate=quick.pretrain_lr,
        latency_seq_len=quick.max_length,
    )
    planned = plan(
        args.budget,
        args.max_size,
        args.max_latency,
        data=data,
        sweep_fraction=args.sweep_fraction,
        output_dir=args.plan_dir,
        overwrite=True,
        **settings,
    )
    print(planned.table(), "\n", planned.recommendation)
    probe["after_plan"] = {
        "step_s": time_training_step(probe_config, quick.pretrain_batch, quick.block_size),
        "threads": torch.get_num_threads(),
    }
    print(f"training-step probe (2x64, batch 8 x 64): {probe}")
    rates = {(c.num_layers, c.hidden_size): c.learning_rate for c in planned.candidates}
    print(f"full runs: {list(rates)}, {args.budget} each", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        full = run_sweep(
            list(rates),
            output_dir=tmp,
            budget=args.budget,
            base=base,
            head_dim=base.hidden_size // base.num_attention_heads,
            batch_sizes=[quick.pretrain_batch],
            learning_rate_for=lambda d, w: rates[(d, w)],
            eval_every=parse_duration(args.budget) / 10,
            corpus=corpus,
            tokenizer=tokenizer,
            block_size=quick.block_size,
            time_lr_schedule="constant",
            seed=0,
        )
    rows = []
    for run in full["runs"]:
        c = next(
            c for c in planned.candidates if (c.num_layers, c.hidden_size) == (run["num_layers"], run["hidden_size"])
        )
        measured = math.log(run["final_perplexity"])
        inside = c.loss_low is not None and c.loss_low <= measured <= c.loss_high
        rows.append(
            dict(
                size=c.label,
                sweep_s=planned.sweep_s_per_candidate,
                loss_at_sweep_end=c.sweep_loss,
                predicted=c.predicted_loss,
                low=c.loss_low,
                high=c.loss_high,
                measured=measured,
                error=c.predicted_loss - measured if c.predicted_loss is not None else None,
                inside_interval=inside,
                steps_predicted=c.steps_in_budget,
                steps_measured=run["steps"],
                step_s_probe=c.step_s,
                step_s_measured=run["elapsed_s"] / run["steps"] if run["steps"] else None,
            )
        )
    predicted_rows = [r for r in rows if r["predicted"] is not None]
    order_predicted = [r["size"] for r in sorted(predicted_rows, key=lambda r: r["predicted"])]
    order_measured = [r["size"] for r in sorted(predicted_rows, key=lambda r: r["measured"])]
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "flock /tmp/tlc_cpu.lock python benchmarks/plan_extrapolation.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        "hardware": cpu_description(),
        "budget_s": parse_duration(args.budget),
        "sweep_fraction": args.sweep_fraction,
        "sweep_s_per_size": planned.sweep_s_per_candidate,
        "settings": {k: v for k, v in settings.items() if k != "base"} | {"base": "roberta-tiny, no dropout"},
        "step_probe": probe,
        "wall_s": None,
        "rows": rows,
        "ranking_predicted": order_predicted,
        "ranking_measured": order_measured,
        "ranking_holds": order_predicted == order_measured,
    }
    print(f"\n{cpu_description()}")
    print(
        f"{'size':<9}{'sweep end':>10}{'predicted (90%)':>26}{'measured':>10}{'error':>8}{'inside':>8}{'steps pred/meas':>17}"
    )
    for r in rows:
        if r["predicted"] is None:
            print(f"{r['size']:<9} no prediction (see the plan's notes); measured {r['measured']:.3f}")
            continue
        interval = f"({r['low']:.3f}-{r['high']:.3f})" if r["low"] is not None else "(no interval)"
        print(
            f"{r['size']:<9}{r['loss_at_sweep_end']:>10.3f}{r['predicted']:>10.3f} {interval}"
            f"{r['measured']:>10.3f}{r['error']:>+8.3f}{'yes' if r['inside_interval'] else 'no':>8}"
            f"{r['steps_predicted']:>9}/{r['steps_measured']}"
        )
    print(f"ranking predicted {order_predicted}, measured {order_measured}")
    result["wall_s"] = round(time.perf_counter() - started, 1)
    load["after"] = _load_average()
    result["load_average_1_5_15"] = load  # other processes on the cores stretch every timing
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"Wrote {args.out}")


def _load_average() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


if __name__ == "__main__":
    main()
