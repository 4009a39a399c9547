"""Train a tiny model under a wall-clock budget; used by the SIGTERM and multi-process tests.

Writes `result-<rank>.json` into --output_dir: the final step, the LR and progress seen at every step,
elapsed time, and whether a stop signal ended the run. With --ready_file it creates that file once a few
steps have run, so a test knows when to send a signal.
"""

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from tlc_hf import BudgetTrainer, BudgetTrainingArguments  # noqa: E402
from tlc_hf.testing import random_batch, tiny_model  # noqa: E402


class Trace(TrainerCallback):
    def __init__(self, budget, slow_rank, step_sleep, ready_file):
        self.budget, self.slow_rank, self.step_sleep, self.ready_file = budget, slow_rank, step_sleep, ready_file
        self.steps = []

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        self.steps.append(
            {"step": state.global_step, "lr": optimizer.param_groups[0]["lr"], "p": self.budget.progress}
        )
        rank = args.process_index
        time.sleep(self.step_sleep * (3 if rank == self.slow_rank else 1))
        if self.ready_file and state.global_step == 5 and rank == 0:
            open(self.ready_file, "w").close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--budget", default="6s")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--slow_rank", type=int, default=-1)
    parser.add_argument("--step_sleep", type=float, default=0.02)
    parser.add_argument("--ready_file", default=None)
    cli = parser.parse_args()

    batch = random_batch("bert", batch_size=64, seq_len=16)
    data = [
        {"input_ids": ids, "attention_mask": mask, "labels": int(ids.sum() % 2)}
        for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
    ]
    args = BudgetTrainingArguments(
        output_dir=cli.output_dir,
        time_budget=cli.budget,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        time_lr_schedule="linear",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
    )
    trainer = BudgetTrainer(model=tiny_model("bert", "classification"), args=args, train_dataset=data)
    trace = Trace(trainer.budget_callback, cli.slow_rank, cli.step_sleep, cli.ready_file)
    trainer.add_callback(trace)
    start = time.monotonic()
    output = trainer.train(resume_from_checkpoint=True if cli.resume else None)
    result = {
        "global_step": output.global_step,
        "final_lr": trainer.optimizer.param_groups[0]["lr"],
        "elapsed_s": trainer.budget_callback.elapsed_s,
        "train_call_s": time.monotonic() - start,
        "preempted": trainer.budget_callback.preempted,
        "steps": trace.steps,
        "world_size": args.world_size,
        "weights_sum": float(sum(p.detach().double().sum() for p in trainer.model.parameters())),
    }
    with open(os.path.join(cli.output_dir, f"result-{args.process_index}.json"), "w") as f:
        json.dump(result, f)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # a rank that tears down while its peer is still exiting can hang
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
