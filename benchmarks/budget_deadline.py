"""How far `BudgetTrainer.train()` overshoots its budget when evaluation is slow, alone and with another job on
the cores (issue #29's scenarios); the worst overshoot is the figure.

Scenarios (a tiny BERT classifier, eval batches of 8):
    slow-loading  time_budget 10s, eval_every 3s, 64 eval examples whose loading sleeps 78 ms each (~5 s
                  an evaluation, as a slow dataset or shared disk would)
    large-eval    time_budget 12s, eval_every 4s, save_every 6s, 4,096 eval examples (a first evaluation of
                  several seconds, far longer with a competing job)
Each runs `--repeats` times alone and `--repeats` times with a competing process (torch matmuls on every core,
stopped when the run ends). Overshoot = train() wall time / budget - 1. Also counted: skipped evaluations and
saves, final evaluations on a subset, evaluations cut between batches (from budget_log.jsonl).

    flock /tmp/tlc_cpu.lock python benchmarks/budget_deadline.py [--repeats 10] [--scenario large-eval]
        [--out benchmarks/results/budget_deadline.json]

`--scenario` runs one scenario (to keep each locked run short) and merges it into the `--out` file's others.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from tlc_hf import BudgetTrainer, BudgetTrainingArguments  # noqa: E402
from tlc_hf.evaluation import cpu_description  # noqa: E402
from tlc_hf.testing import tiny_model, toy_dataset  # noqa: E402

COMPETITOR = (
    "import os, time, torch\n"
    "torch.set_num_threads(os.cpu_count())\n"
    "a = torch.randn(384, 384)\n"
    "end = time.monotonic() + {seconds}\n"
    "while time.monotonic() < end:\n"
    "    a = torch.tanh(a @ a)\n"
)


class SlowLoading(torch.utils.data.Dataset):
    def __init__(self, n: int, per_item: float):
        self.rows, self.per_item = toy_dataset("bert", n), per_item

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        time.sleep(self.per_item)
        return self.rows[i]


SCENARIOS = {
    "slow-loading": dict(budget="10s", eval_every="3s", eval_data=lambda: SlowLoading(64, 0.078), save_every=None),
    "large-eval": dict(budget="12s", eval_every="4s", eval_data=lambda: toy_dataset("bert", 4096), save_every="6s"),
}


def run_once(name: str, output_dir: str) -> dict:
    scenario = SCENARIOS[name]
    args = BudgetTrainingArguments(
        output_dir=output_dir,
        time_budget=scenario["budget"],
        eval_every=scenario["eval_every"],
        save_every=scenario["save_every"],
        eval_strategy="steps",
        eval_steps=10**6,  # periodic evaluation by time; the strategy makes the final one
        save_strategy="steps" if scenario["save_every"] else "no",
        save_steps=10**6,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        report_to="none",
        disable_tqdm=True,
        logging_strategy="no",
        use_cpu=True,
    )
    trainer = BudgetTrainer(
        model=tiny_model("bert", "classification"),
        args=args,
        train_dataset=toy_dataset("bert", 256),
        eval_dataset=scenario["eval_data"](),
    )
    start = time.monotonic()
    trainer.train()
    took = time.monotonic() - start
    budget_s = trainer.budget_callback.budget_s
    records = [json.loads(line) for line in (Path(output_dir) / "budget_log.jsonl").read_text().splitlines()]
    events = [r.get("event") for r in records]
    return {
        "took_s": round(took, 3),
        "overshoot": round(took / budget_s - 1, 4),
        "evaluations": sum(1 for r in records if "metrics" in r),
        "skipped": sum(1 for r in records if r.get("event") == "skip"),
        "final_subset": "final_evaluation_subset" in events,
        "cut": sum(1 for r in records if "cut" in r),
        "ended_by": records[-1].get("ended_by"),
        "estimated_eval_s": next((r["eval_s"] for r in records if r.get("event") == "evaluation_cost"), None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="run this scenario only (default: all)")
    parser.add_argument("--out", default="benchmarks/results/budget_deadline.json")
    args = parser.parse_args()
    cpu = cpu_description()
    print(f"CPU: {cpu}")
    results = {}
    if args.scenario and os.path.exists(args.out):  # keep the other scenarios' runs
        with open(args.out) as f:
            kept = json.load(f)
        if kept.get("cpu") == cpu and kept.get("repeats") == args.repeats:
            results = {k: v for k, v in kept["results"].items() if not k.startswith(f"{args.scenario}/")}
    for name in [args.scenario] if args.scenario else SCENARIOS:
        for load in ("alone", "competing"):
            runs = []
            for _ in range(args.repeats):
                competitor = None
                if load == "competing":
                    code = COMPETITOR.format(seconds=60)
                    competitor = subprocess.Popen([sys.executable, "-c", code])
                    time.sleep(0.5)
                try:
                    with tempfile.TemporaryDirectory() as tmp:
                        runs.append(run_once(name, tmp))
                finally:
                    if competitor is not None:
                        competitor.kill()
                        competitor.wait()
            worst = max(r["overshoot"] for r in runs)
            results[f"{name}/{load}"] = {"runs": runs, "worst_overshoot": worst}
            print(
                f"{name:13s} {load:9s} worst overshoot {100 * worst:+.1f}% (median "
                f"{100 * sorted(r['overshoot'] for r in runs)[len(runs) // 2]:+.1f}%), "
                f"skipped {sum(r['skipped'] for r in runs)}, cut {sum(r['cut'] for r in runs)}, "
                f"final subsets {sum(r['final_subset'] for r in runs)} of {len(runs)} runs",
                flush=True,
            )
    overall = max(r["worst_overshoot"] for r in results.values())
    print(f"worst overshoot over every run in {args.out}: {100 * overall:+.1f}% (the target: at most +3%)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"cpu": cpu, "repeats": args.repeats, "results": results, "worst_overshoot": overall}, f, indent=2)


if __name__ == "__main__":
    main()
