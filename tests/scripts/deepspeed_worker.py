"""Compression callbacks on DeepSpeed ZeRO-2 / ZeRO-3 vs one process: run under torchrun (2 CPU ranks, gloo).

Each check trains a tiny BERT and a tiny T5 twice from the same init on the same global batches: once whole in
this process with torch's AdamW (the one-process reference; each rank runs it alone), once as a DeepSpeed
engine (ZeRO stage 2 or 3, AdamW with the same settings) through `tlc_hf.train_sharded`. It writes
`results-<rank>.json`: per stage, check and family the largest difference of the model's weights and of
DeepSpeed's fp32 master weights to the reference, whether their zero patterns (masks) agree, the sparsity each
rank measures, and the whole-saved model reloaded with `from_pretrained` against the reference.

    DS_ACCELERATOR=cpu torchrun --nproc_per_node 2 tests/scripts/deepspeed_worker.py OUT [CHECK ...]

Needs deepspeed (a side venv: see examples/ACCELERATE.md).
"""

import json
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
warnings.filterwarnings("ignore")

import deepspeed  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

# the one-process reference's models, batches and outputs are the FSDP2 worker's (this folder is on sys.path)
from sharded_worker import BATCH, FAMILIES, auto_class, batches_for, kd_hidden, model_for, outputs  # noqa: E402

import tlc_hf  # noqa: E402, F401  (installs the from_pretrained hook)
from tlc_hf.compression import find_targets, zero  # noqa: E402
from tlc_hf.compression.drophead import DropHeadCallback  # noqa: E402
from tlc_hf.compression.magnitude import MagnitudePruningCallback, prune_magnitude_  # noqa: E402
from tlc_hf.compression.masks import MASK_BUFFER, target_sparsity  # noqa: E402
from tlc_hf.compression.movement import MovementPruningCallback  # noqa: E402
from tlc_hf.compression.quantization import QATCallback, QuantNoiseCallback  # noqa: E402
from tlc_hf.compression.record import compression_history  # noqa: E402
from tlc_hf.compression.sharding import full, shard_like  # noqa: E402
from tlc_hf.compression.structured import StructuredPruningCallback, prune_structured_  # noqa: E402
from tlc_hf.training.sharded import distillation_loss, gather_whole, save_whole, train_sharded  # noqa: E402

STAGES = (2, 3)
# ZeRO-3 with param_persistence_threshold 0: the tiny models' parameters (all below DeepSpeed's default 1e5
# entries) otherwise stay gathered between steps; every training method runs the gather-per-forward path as well
# (the one large models take)
UNPERSISTED = "3-unpersisted"
UNPERSISTED_CHECKS = (
    "magnitude_local",
    "magnitude_global",
    "movement_hard",
    "movement_soft",
    "qat",
    "quant_noise",
    "structured",
    "structured_gradient",
    "drophead",
    "kd_magnitude_qat",
)
LR = 1e-3


def engine_for(model, stage):
    zero_config = {"stage": 3 if stage == UNPERSISTED else stage}
    if stage == UNPERSISTED:  # every ZeRO-3 parameter gathered per forward (the tiny models all stay gathered)
        zero_config["param_persistence_threshold"] = 0
    config = {
        "train_micro_batch_size_per_gpu": BATCH // dist.get_world_size(),
        "gradient_accumulation_steps": 1,
        "zero_optimization": zero_config,
        "optimizer": {"type": "AdamW", "params": {"lr": LR, "weight_decay": 0.0, "torch_adam": True}},
        # DeepSpeed clips the global gradient norm at 1.0 unless told (0.19.8: GRADIENT_CLIPPING_DEFAULT); the
        # reference does not clip. Clipped, the tiny models' norms (BERT 1.56, T5 2.78 at step 0) scale every
        # gradient, which AdamW undoes except where |g| is near eps: 2.4e-4 (BERT) / 3.1e-4 (T5) after 6 steps
        "gradient_clipping": 0.0,
        "steps_per_print": 10**9,
    }
    engine, *_ = deepspeed.initialize(model=model, config=config, model_parameters=model.parameters())
    return engine


def compare(reference, engine, family: str, out: str, callbacks=()) -> dict:
    """Weights and fp32 masters vs the reference, zero patterns, masks, sparsity, and the reloaded whole save."""
    module = engine.module
    targets, ref_targets = find_targets(module), find_targets(reference)
    sparsity = target_sparsity(targets)  # measured on the partitions (ZeRO-3), summed over ranks
    kept = [n for n, m in targets.items() if m._buffers.get(MASK_BUFFER) is not None]
    masks_equal = None
    if kept:
        masks_equal = all(
            torch.equal(
                full(shard_like(targets[n]._buffers[MASK_BUFFER], targets[n].weight)).view(
                    ref_targets[n].weight.shape
                ),
                ref_targets[n].tlc_mask,
            )
            for n in kept
        )
    # DeepSpeed's fp32 master weights of the targets (what its optimizer steps), gathered; structured pruning
    # removed units from the reference, the masters keep the full shapes (compared through the whole model below)
    masters = {n: full(m.weight).detach() for n, m in targets.items()}
    masters_diff = masters_zeros_equal = None
    if all(masters[n].shape == ref_targets[n].weight.shape for n in targets):
        masters_diff = max(float((masters[n] - ref_targets[n].weight).abs().max()) for n in targets)
        masters_zeros_equal = all(torch.equal(masters[n] == 0, ref_targets[n].weight == 0) for n in targets)
    whole = gather_whole(engine, rank0_only=False)
    ref_state, whole_state = reference.state_dict(), whole.state_dict()
    same_keys = set(ref_state) == set(whole_state)
    diff = max(float((whole_state[k] - ref_state[k]).abs().max()) for k in ref_state) if same_keys else None
    zeros_equal = all(torch.equal(whole_state[k] == 0, ref_state[k] == 0) for k in ref_state if ".weight" in k)
    ref_dir, saved_dir = os.path.join(out, "reference"), os.path.join(out, "deepspeed")
    if dist.get_rank() == 0:
        reference.save_pretrained(ref_dir)
    save_whole(engine, saved_dir)
    reloaded = auto_class(family).from_pretrained(saved_dir)
    dist.barrier()
    return {
        "weights_max_diff": diff,
        "masters_max_diff": masters_diff,
        "same_keys": same_keys,
        "zeros_equal": zeros_equal,
        "masters_zeros_equal": masters_zeros_equal,
        "masks_equal": masks_equal,
        "sparsity": sparsity,
        "reference_sparsity": target_sparsity(ref_targets),
        "reload_vs_reference": float((outputs(reloaded, family) - outputs(reference, family)).abs().max()),
        "params": sum(p.numel() for p in reloaded.parameters()),
        "reference_params": sum(p.numel() for p in reference.parameters()),
        "methods": [m["method"] for m in compression_history(reloaded)],
        "reference_methods": [m["method"] for m in compression_history(reference)],
    }


def train_pair(stage, family, make_callbacks, out, loss_for=None):
    batches = batches_for(family)
    reference = model_for(family)
    loss_fn = loss_for(model_for(family, seed=7, hidden=64)) if loss_for else None
    train_sharded(reference, batches, make_callbacks(), output_dir=out, learning_rate=LR, loss_fn=loss_fn)
    engine, callbacks = engine_for(model_for(family), stage), make_callbacks()
    loss_fn = loss_for(model_for(family, seed=7, hidden=64)) if loss_for else None
    train_sharded(engine, batches, callbacks, output_dir=out, loss_fn=loss_fn)
    result = compare(reference, engine, family, out, callbacks)
    base = engine.optimizer.optimizer
    group = {k: v for k, v in base.param_groups[0].items() if k != "params"}
    result["optimizer"] = {
        "engine_steps": engine.global_steps,
        "state_steps": sorted({float(st["step"]) for st in base.state.values() if "step" in st}),
        "group": {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for k, v in group.items()},
    }
    engine.destroy()
    return result


def one_shot(stage, family, prune, out):
    """One-shot pruning of the model inside a fresh engine vs the same call on the whole model."""
    reference = model_for(family)
    prune(reference)
    engine = engine_for(model_for(family), stage)
    report = prune(engine.module)
    result = compare(reference, engine, family, out)
    result["report"] = {k: v for k, v in report.items() if k != "per_module"}
    engine.destroy()
    return result


def refused_projections(stage, family, out):
    """Hidden-state distillation with learned projections (teacher twice the student's width) on an engine:
    train_sharded's refusal, before any step."""
    engine = engine_for(model_for(family), stage)
    loss_fn = kd_hidden(model_for(family, seed=7, hidden=64), engine.module)
    try:
        train_sharded(engine, batches_for(family), [], output_dir=out, loss_fn=loss_fn)
        refusal = None
    except ValueError as err:
        refusal = str(err)
    steps = engine.global_steps
    engine.destroy()
    return {"refusal": refusal, "engine_steps": steps}


def lp_only_control(stage, family, out):
    """The bug the ZeRO path prevents: masks applied to the model's parameters only (not the fp32 masters)."""
    original = zero.mask_

    def model_copy_only(param, mask):
        if zero.is_zero3(param):
            param.ds_tensor.data.flatten()[: mask.numel()].mul_(mask.flatten())
        else:
            param.data.mul_(mask)

    zero.mask_ = model_copy_only
    try:
        return train_pair(
            stage, family, lambda: [MagnitudePruningCallback(sparsity=0.6, update_every=2, end=0.5)], out
        )
    finally:
        zero.mask_ = original


CHECKS = {
    "prune_magnitude_local": lambda s, f, out: one_shot(s, f, lambda m: prune_magnitude_(m, sparsity=0.6), out),
    "prune_magnitude_global": lambda s, f, out: one_shot(
        s, f, lambda m: prune_magnitude_(m, sparsity=0.6, scope="global"), out
    ),
    "prune_structured": lambda s, f, out: one_shot(s, f, lambda m: prune_structured_(m, heads=0.5, ffn=0.5), out),
    "plain": lambda s, f, out: train_pair(s, f, lambda: [], out),
    "magnitude_local": lambda s, f, out: train_pair(
        s, f, lambda: [MagnitudePruningCallback(sparsity=0.6, update_every=2, end=0.5)], out
    ),
    "magnitude_global": lambda s, f, out: train_pair(
        s, f, lambda: [MagnitudePruningCallback(sparsity=0.6, scope="global", update_every=2, end=0.5)], out
    ),
    "movement_hard": lambda s, f, out: train_pair(
        s, f, lambda: [MovementPruningCallback(sparsity=0.5, update_every=2, end=0.5)], out
    ),
    "movement_soft": lambda s, f, out: train_pair(
        s, f, lambda: [MovementPruningCallback(variant="soft", threshold=0.0, update_every=2, end=0.5)], out
    ),
    "qat": lambda s, f, out: train_pair(s, f, lambda: [QATCallback(bits=8, start=0.3)], out),
    "quant_noise": lambda s, f, out: train_pair(
        s, f, lambda: [QuantNoiseCallback(noise_rate=0.5, bits=4, start=0.0, end=0.5, seed=0)], out
    ),
    "structured": lambda s, f, out: train_pair(
        s, f, lambda: [StructuredPruningCallback(heads=0.5, ffn=0.5, steps=2, end=0.5)], out
    ),
    "structured_gradient": lambda s, f, out: train_pair(
        s, f, lambda: [StructuredPruningCallback(heads=0.5, ffn=0.5, steps=2, end=0.5, importance="gradient")], out
    ),
    "drophead": lambda s, f, out: train_pair(
        s, f, lambda: [DropHeadCallback(rate=0.3, schedule="constant", seed=0)], out
    ),
    "kd_magnitude_qat": lambda s, f, out: train_pair(
        s,
        f,
        lambda: [MagnitudePruningCallback(sparsity=0.5, update_every=2, end=0.5), QATCallback(bits=8, start=0.0)],
        out,
        loss_for=distillation_loss,
    ),
    "control_model_copy_only": lp_only_control,
    "refused_projections": refused_projections,
}


def main():
    out, wanted = sys.argv[1], sys.argv[2:] or list(CHECKS)
    deepspeed.init_distributed("gloo")
    torch.set_num_threads(1)
    results = {}
    for stage in (*STAGES, UNPERSISTED):
        for name in wanted if stage != UNPERSISTED else [n for n in wanted if n in UNPERSISTED_CHECKS]:
            for family in FAMILIES:
                torch.manual_seed(0)
                folder = os.path.join(out, f"zero{stage}", name, family)
                results[f"zero{stage}/{name}/{family}"] = CHECKS[name](stage, family, folder)
    with open(os.path.join(out, f"results-{dist.get_rank()}.json"), "w") as f:
        json.dump(results, f, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
