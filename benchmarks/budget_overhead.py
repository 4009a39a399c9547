"""Step throughput of BudgetTrainer (time budget, time-keyed LR) against a stock Trainer, and how far
train() overshoots its budget (deadline mode vs stopping at the budget).

Same model, data and number of steps; the two run interleaved, several rounds, in one process, so machine
noise hits both alike. A step is the time from one optimizer step's end to the next (data loading,
forward, backward, optimizer, LR scheduler, callbacks, logging); throughput is 1 / the median step, which
shrugs off bursts of noise from other work on the machine. Prints the ratio budget/stock and writes JSON.

Overshoot: `--overshoot_runs` runs of a 5 s budget with evaluation every 1 s (each ~0.3 s, 30% of the
interval) and a checkpoint every 1 s, final evaluation and save included; overshoot = train() wall time /
budget - 1, median and max, with the deadline (default) and with `time_deadline=False`.

    python benchmarks/budget_overhead.py [--steps 200] [--rounds 10] [--overshoot_runs 10]
        [--out benchmarks/results/budget_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402

from tlc_hf import BudgetTrainer, BudgetTrainingArguments  # noqa: E402
from tlc_hf.testing import random_batch, tiny_model  # noqa: E402

WARMUP_STEPS = 10


class StepTimer(TrainerCallback):
    """Times each step after WARMUP_STEPS and stops at `steps` (the budget run has no step limit of its own)."""

    def __init__(self, steps: int):
        self.steps, self.last, self.intervals = steps, None, []

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if state.global_step > WARMUP_STEPS:
            self.intervals.append(now - self.last)
        self.last = now
        if state.global_step == self.steps:
            control.should_training_stop = True


def run_once(kind: str, steps: int, data, tmp: str) -> list[float]:
    common = dict(
        output_dir=tmp,
        per_device_train_batch_size=16,
        learning_rate=1e-4,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        logging_steps=50,
        seed=0,
    )
    timer = StepTimer(steps)
    model = tiny_model("bert", "classification", hidden_size=64)
    if kind == "stock":
        trainer = Trainer(
            model=model, args=TrainingArguments(max_steps=steps, **common), train_dataset=data, callbacks=[timer]
        )
    else:
        args = BudgetTrainingArguments(time_budget="1h", time_lr_schedule="linear", **common)
        trainer = BudgetTrainer(model=model, args=args, train_dataset=data, callbacks=[timer])
    trainer.train()
    return timer.intervals


def hook_cost_us(calls: int = 20000) -> float:
    """Microseconds per step spent in the budget's own per-step hooks (sync, stop/interval checks, LR)."""
    from transformers import TrainerControl, TrainerState

    from tlc_hf import WallClockBudgetCallback, time_lr_lambda

    callback = WallClockBudgetCallback("1h", eval_every="10m", save_every="30m")
    args = TrainingArguments(output_dir="/tmp/tlc_hf_bench_overhead", use_cpu=True, report_to="none")
    state, control = TrainerState(), TrainerControl()
    callback.clock.start()
    multiplier = time_lr_lambda("linear", 0.1)
    start = time.perf_counter()
    for _ in range(calls):
        callback.on_optimizer_step(args, state, control)
        multiplier(callback.progress)
        callback.on_step_end(args, state, control)
    return (time.perf_counter() - start) / calls * 1e6


class SlowEvaluation(TrainerCallback):
    def on_prediction_step(self, args, state, control, **kwargs):
        time.sleep(0.075)


def overshoot_once(data, tmp: str, deadline: bool, budget_s: float = 5.0) -> float:
    args = BudgetTrainingArguments(
        output_dir=tmp,
        time_budget=f"{budget_s}s",
        time_deadline=deadline,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=4,
        eval_strategy="steps",
        eval_steps=10**6,
        eval_every="1s",
        save_strategy="steps",
        save_steps=10**6,
        save_every="1s",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        logging_steps=50,
        seed=0,
    )
    model = tiny_model("bert", "classification", hidden_size=64)
    trainer = BudgetTrainer(
        model=model, args=args, train_dataset=data, eval_dataset=data[:16], callbacks=[SlowEvaluation()]
    )
    start = time.monotonic()
    trainer.train()
    return (time.monotonic() - start) / budget_s - 1.0


def cpu_description() -> dict:
    import platform

    model, flags = platform.processor(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model.strip():
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
                    flags = [flag for flag in line.split(":", 1)[1].split() if flag in wanted]
                    break
    except OSError:
        pass
    return {"cpu": model, "flags": flags, "cores": os.cpu_count()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--overshoot_runs", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/budget_overhead.json")
    cli = parser.parse_args()
    torch.set_num_threads(2)
    print(f"machine: {cpu_description()}")
    batch = random_batch("bert", batch_size=512, seq_len=64)
    data = [
        {"input_ids": i, "attention_mask": m, "labels": int(i[0] % 2)}
        for i, m in zip(batch["input_ids"], batch["attention_mask"], strict=True)
    ]
    intervals = {"stock": [], "budget": []}
    round_rates = {"stock": [], "budget": []}
    for round_index in range(cli.rounds):
        order = ("stock", "budget") if round_index % 2 == 0 else ("budget", "stock")
        for kind in order:
            steps = run_once(kind, cli.steps, data, "/tmp/tlc_hf_bench_overhead")
            intervals[kind] += steps
            round_rates[kind].append(1 / statistics.median(steps))
        print(
            f"round {round_index + 1}: stock {round_rates['stock'][-1]:.1f} steps/s, "
            f"budget {round_rates['budget'][-1]:.1f} steps/s"
        )
    rates = {kind: 1 / statistics.median(values) for kind, values in intervals.items()}
    ratio = rates["budget"] / rates["stock"]
    paired = statistics.median(b / s for b, s in zip(round_rates["budget"], round_rates["stock"], strict=True))
    overshoot = {}
    for deadline in (True, False):
        runs = [overshoot_once(data, "/tmp/tlc_hf_bench_overshoot", deadline) for _ in range(cli.overshoot_runs)]
        key = "deadline" if deadline else "stop_at_budget"
        overshoot[key] = {
            "median_pct": round(100 * statistics.median(runs), 2),
            "max_pct": round(100 * max(runs), 2),
            "runs_pct": [round(100 * r, 2) for r in runs],
        }
        print(
            f"overshoot of train() past a 5 s budget, {key}: median {overshoot[key]['median_pct']:+.2f}%, "
            f"max {overshoot[key]['max_pct']:+.2f}% over {len(runs)} runs"
        )
    result = {
        "benchmark": "budget_overhead",
        "overshoot": overshoot,
        "machine": cpu_description(),
        "steps_timed_per_run": cli.steps - WARMUP_STEPS,
        "rounds": cli.rounds,
        "round_steps_per_s": round_rates,
        "median_step_steps_per_s": rates,
        "throughput_ratio_budget_over_stock": round(ratio, 4),
        "median_paired_round_ratio": round(paired, 4),
        "budget_hooks_us_per_step": round(hook_cost_us(), 2),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    Path(cli.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cli.out).write_text(json.dumps(result, indent=2))
    print(
        f"throughput ratio BudgetTrainer / Trainer = {ratio:.4f} (median step over {cli.rounds} interleaved rounds; "
        f"median of per-round ratios {paired:.4f})"
    )
    median_step_us = 1e6 / rates["stock"]
    print(
        f"budget hooks: {result['budget_hooks_us_per_step']:.1f} us per step "
        f"= {result['budget_hooks_us_per_step'] / median_step_us:.2%} of a {median_step_us / 1000:.1f} ms step"
    )


if __name__ == "__main__":
    main()
