"""Compression through the real Trainer under DDP: `DistillationTrainer` with hidden states (a teacher twice
the student's width, so the projections train) + gradual structured pruning + seeded DropHead.

One process (the reference), then 2 CPU ranks under `accelerate launch --multi_gpu` (accelerate's MULTI_CPU:
torchrun, gloo, the model wrapped in DDP) from the same init on the same global batches (a sequential sampler;
each rank's per-device batch is half the global one, so rank r takes rows [4r, 4r + 4) of each batch of 8):

    python tests/scripts/ddp_trainer_worker.py OUT/reference
    accelerate launch --multi_gpu --num_processes 2 tests/scripts/ddp_trainer_worker.py OUT/ddp OUT/reference

Each run saves the final model with `trainer.save_model` and its trained state. With a reference folder, every
rank compares its model and projections with the one-process run's and writes `results-<rank>.json`.
"""

import json
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402
from sharded_worker import BATCH, FAMILIES, STEPS, auto_class, model_for, outputs, teacher_for  # noqa: E402
from transformers import Seq2SeqTrainingArguments, TrainingArguments  # noqa: E402

import tlc_hf  # noqa: E402, F401  (installs the from_pretrained hook)
from tlc_hf.compression.distillation import (  # noqa: E402
    DistillationConfig,
    DistillationSeq2SeqTrainer,
    DistillationTrainer,
)
from tlc_hf.compression.drophead import DropHeadCallback  # noqa: E402
from tlc_hf.compression.record import compression_history  # noqa: E402
from tlc_hf.compression.structured import StructuredPruningCallback  # noqa: E402
from tlc_hf.testing import toy_dataset  # noqa: E402


def train(family: str, folder: str):
    """Train one family with the Trainer in this process (whatever accelerate launched it as)."""
    seq2seq = family == "t5"
    rows = toy_dataset(family, n=STEPS * BATCH, labels="decoder" if seq2seq else "tokens", seed=3)
    args = (Seq2SeqTrainingArguments if seq2seq else TrainingArguments)(
        output_dir=folder,
        max_steps=STEPS,
        per_device_train_batch_size=BATCH // int(os.environ.get("WORLD_SIZE", "1")),
        learning_rate=1e-3,
        weight_decay=0.0,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,  # train_sharded's loop does not clip either; clipping is per-replica identical anyway
        train_sampling_strategy="sequential",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        logging_steps=1,
        seed=0,
    )
    callbacks = [
        StructuredPruningCallback(heads=0.5, ffn=0.5, steps=2, end=0.5),
        DropHeadCallback(rate=0.3, schedule="constant", seed=0),
    ]
    trainer = (DistillationSeq2SeqTrainer if seq2seq else DistillationTrainer)(
        model=model_for(family).train(),
        args=args,
        train_dataset=rows,
        callbacks=callbacks,
        teacher_model=teacher_for(family),
        distillation=DistillationConfig(alpha=0.5, hidden_weight=1.0),
    )
    trainer.initial_projections = [p.detach().clone() for p in trainer.projections.parameters()]
    trainer.train()
    trainer.save_model(os.path.join(folder, "final"))
    trainer.accelerator.wait_for_everyone()
    return trainer, callbacks


def compare(trainer, callbacks, family: str, folder: str, reference: str) -> dict:
    ref = torch.load(os.path.join(reference, "state.pt"))
    state = trainer.model.state_dict()
    same_keys = set(state) == set(ref["model"]) and all(state[k].shape == ref["model"][k].shape for k in state)
    projections = [p.detach() for p in trainer.projections.parameters()]
    reloaded = auto_class(family).from_pretrained(os.path.join(folder, "final"))
    ref_reloaded = auto_class(family).from_pretrained(os.path.join(reference, "final"))
    return {
        "distributed_type": str(trainer.accelerator.distributed_type),
        "wrapper": type(trainer.model_wrapped).__name__,
        "engines": [cb.engine for cb in callbacks],
        "same_keys": same_keys,
        "weights_max_diff": max(float((state[k] - ref["model"][k]).abs().max()) for k in state) if same_keys else None,
        "zeros_equal": same_keys and all(torch.equal(state[k] == 0, ref["model"][k] == 0) for k in state),
        "projections": len(projections),
        "projections_diff": max(
            float((a - b).abs().max()) for a, b in zip(projections, ref["projections"], strict=True)
        ),
        "projections_moved": max(
            float((a - b).abs().max()) for a, b in zip(projections, trainer.initial_projections, strict=True)
        ),
        "params": sum(p.numel() for p in reloaded.parameters()),
        "reference_params": sum(p.numel() for p in ref_reloaded.parameters()),
        "reload_vs_reference": float((outputs(reloaded, family) - outputs(ref_reloaded, family)).abs().max()),
        "methods": [m["method"] for m in compression_history(reloaded)],
        "reference_methods": [m["method"] for m in compression_history(ref_reloaded)],
        "drophead_rate": callbacks[1].current_rate,
    }


def main():
    out = sys.argv[1]
    reference = sys.argv[2] if len(sys.argv) > 2 else None
    torch.set_num_threads(1)
    results = {}
    for family in FAMILIES:
        folder = os.path.join(out, family)
        trainer, callbacks = train(family, folder)
        if reference is None:
            state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            projections = [p.detach().clone() for p in trainer.projections.parameters()]
            torch.save({"model": state, "projections": projections}, os.path.join(folder, "state.pt"))
        else:
            results[family] = compare(trainer, callbacks, family, folder, os.path.join(reference, family))
    if reference is not None:
        with open(os.path.join(out, f"results-{trainer.args.process_index}.json"), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
