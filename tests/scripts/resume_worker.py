"""Train a tiny BERT with one pruning callback, checkpointing; or resume such a run in a new process.

Writes `sparsity.json` into --output_dir: the target sparsity seen at each step end of this process.
"""

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402

from tlc_hf import MagnitudePruningCallback, MovementPruningCallback  # noqa: E402
from tlc_hf.compression.masks import target_sparsity  # noqa: E402
from tlc_hf.testing import tiny_model, toy_dataset  # noqa: E402


class Trace(TrainerCallback):
    def __init__(self, pruning):
        self.pruning, self.seen, self.resumed = pruning, [], False

    def on_step_end(self, args, state, control, **kwargs):
        self.seen.append([state.global_step, target_sparsity(self.pruning.targets)])
        if state.global_step == 8 and not self.resumed:  # "preempted" right after checkpoint-8 is written
            control.should_training_stop = True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--method", choices=("movement", "magnitude"), required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    settings = dict(sparsity=0.8, start=0.0, end=0.4, update_every=2)
    pruning = (MovementPruningCallback if args.method == "movement" else MagnitudePruningCallback)(**settings)
    trace = Trace(pruning)
    training = TrainingArguments(
        output_dir=args.output_dir,
        max_steps=16,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="steps",
        save_steps=8,
        seed=0,
    )
    trainer = Trainer(
        model=tiny_model("bert").train(),
        args=training,
        train_dataset=toy_dataset("bert", labels="tokens"),
        callbacks=[pruning, trace],
    )
    trace.resumed = args.resume
    trainer.train(resume_from_checkpoint=os.path.join(args.output_dir, "checkpoint-8") if args.resume else None)
    with open(os.path.join(args.output_dir, f"sparsity{'-resumed' if args.resume else ''}.json"), "w") as f:
        json.dump(trace.seen, f)


if __name__ == "__main__":
    main()
