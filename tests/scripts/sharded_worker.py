"""Every during-training compression method on FSDP2 shards vs one process: run under torchrun (2 ranks, gloo).

Each check trains a tiny BERT and a tiny T5 twice from the same init on the same global batches: once whole
in this process (the one-process reference; each rank runs it alone), once sharded with `fully_shard` over
the 2 ranks. It writes `results-<rank>.json` into the output folder: per check and family the largest weight
difference, whether the zero patterns (masks) agree, the sparsity each rank measures, and the largest output
difference of the whole-saved sharded model reloaded with plain `from_pretrained` against the reference.

    torchrun --nproc_per_node 2 tests/scripts/sharded_worker.py OUT [CHECK ...]
"""

import json
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.distributed.device_mesh import init_device_mesh  # noqa: E402
from transformers import AutoModelForMaskedLM, AutoModelForSeq2SeqLM  # noqa: E402

import tlc_hf  # noqa: E402, F401  (installs the from_pretrained hook)
from tlc_hf.compression import find_targets  # noqa: E402
from tlc_hf.compression.distillation import DistillationConfig  # noqa: E402
from tlc_hf.compression.drophead import DropHeadCallback  # noqa: E402
from tlc_hf.compression.magnitude import MagnitudePruningCallback, prune_magnitude_  # noqa: E402
from tlc_hf.compression.masks import MASK_BUFFER, target_sparsity  # noqa: E402
from tlc_hf.compression.movement import MovementPruningCallback  # noqa: E402
from tlc_hf.compression.quantization import QATCallback, QuantNoiseCallback  # noqa: E402
from tlc_hf.compression.record import compression_history  # noqa: E402
from tlc_hf.compression.sharding import full, is_sharded, shard_like, unwrap_model  # noqa: E402
from tlc_hf.compression.structured import StructuredPruningCallback, prune_structured_  # noqa: E402
from tlc_hf.testing import tiny_model, toy_dataset  # noqa: E402
from tlc_hf.training.sharded import (  # noqa: E402
    distillation_loss,
    gather_whole,
    save_whole,
    shard_model_,
    train_sharded,
)

FAMILIES = ("bert", "t5")
STEPS, BATCH = 6, 8


def model_for(family: str, seed: int = 0, hidden: int = 32):
    if family == "bert":  # 65 FFN neurons: uneven shards (33 + 32 rows)
        return tiny_model(
            "bert",
            seed=seed,
            hidden_size=hidden,
            intermediate_size=2 * hidden + 1,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
    # GELU, not ReLU: a ReLU at its kink turns the ~1e-8 float noise of half-batch sums into 1e-3 weight
    # differences once pruning zeroes most of a neuron's inputs (measured: 7e-4 with "relu", 2e-7 with "gelu")
    return tiny_model("t5", seed=seed, hidden_size=hidden, dropout_rate=0.0, feed_forward_proj="gelu")


def batches_for(family: str) -> list[dict]:
    rows = toy_dataset(family, n=STEPS * BATCH, labels="tokens" if family == "bert" else "decoder", seed=3)
    return [
        {k: torch.stack([torch.as_tensor(r[k]) for r in rows[i : i + BATCH]]) for k in rows[0]}
        for i in range(0, len(rows), BATCH)
    ]


def auto_class(family: str):
    return AutoModelForMaskedLM if family == "bert" else AutoModelForSeq2SeqLM


def outputs(model, family: str) -> torch.Tensor:
    batch = {k: v for k, v in batches_for(family)[0].items() if k != "labels"}
    if family == "t5":
        batch["decoder_input_ids"] = batches_for(family)[1]["labels"][:, :4]
    with torch.no_grad():
        return model.eval()(**batch).logits


def compare(reference, sharded, family: str, out: str, callbacks=()) -> dict:
    """Weights, zero patterns, masks, sparsity per rank, and the whole-saved sharded model reloaded."""
    rank = dist.get_rank()
    targets = find_targets(sharded)
    sparsity = target_sparsity(targets)  # measured on the shards, summed over ranks
    masks_equal = None
    ref_targets = find_targets(reference)
    kept = [n for n, m in targets.items() if m._buffers.get(MASK_BUFFER) is not None]
    if kept:
        masks_equal = all(
            torch.equal(full(shard_like(targets[n]._buffers[MASK_BUFFER], targets[n].weight)), ref_targets[n].tlc_mask)
            for n in kept
        )
    whole = gather_whole(sharded, rank0_only=False)
    ref_state, whole_state = reference.state_dict(), whole.state_dict()
    same_keys = set(ref_state) == set(whole_state)
    diff = max(float((whole_state[k] - ref_state[k]).abs().max()) for k in ref_state) if same_keys else None
    zeros_equal = all(torch.equal(whole_state[k] == 0, ref_state[k] == 0) for k in ref_state if ".weight" in k)
    ref_dir, sharded_dir = os.path.join(out, "reference"), os.path.join(out, "sharded")
    if rank == 0:
        reference.save_pretrained(ref_dir)
    save_whole(sharded, sharded_dir)
    reloaded = auto_class(family).from_pretrained(sharded_dir)
    ref_reloaded = auto_class(family).from_pretrained(ref_dir)
    dist.barrier()
    return {
        "weights_max_diff": diff,
        "same_keys": same_keys,
        "zeros_equal": zeros_equal,
        "masks_equal": masks_equal,
        "sparsity": sparsity,
        "reference_sparsity": target_sparsity(ref_targets),
        "reported": [getattr(cb, "current", getattr(cb, "current_sparsity", None)) for cb in callbacks],
        "reload_vs_reference": float((outputs(reloaded, family) - outputs(reference, family)).abs().max()),
        "reference_reload": float((outputs(ref_reloaded, family) - outputs(reference, family)).abs().max()),
        "params": sum(p.numel() for p in reloaded.parameters()),
        "reference_params": sum(p.numel() for p in reference.parameters()),
        "methods": [m["method"] for m in compression_history(reloaded)],
        "reference_methods": [m["method"] for m in compression_history(reference)],
    }


def teacher_for(family: str) -> torch.nn.Module:
    return model_for(family, seed=7, hidden=64)  # twice the student's width: hidden-state KD learns projections


def kd_logits(teacher, student):
    return distillation_loss(teacher)


def kd_hidden(teacher, student):
    # the projections' init differs per rank (no seeding by hand): train_sharded starts every rank from rank 0's,
    # which is the reference's (seed 5)
    distributed = isinstance(student, torch.nn.parallel.DistributedDataParallel) or is_sharded(
        next(student.parameters())
    )
    torch.manual_seed(5 + (dist.get_rank() if distributed else 0))
    loss = distillation_loss(teacher, DistillationConfig(alpha=0.5, hidden_weight=1.0), student=student)
    loss.initial = [p.detach().clone() for p in loss.parameters()]
    return loss


def projections_diff(loss_ref, loss_fn) -> float | None:
    """The largest difference of the loss's trained parameters (hidden-state projections) from the reference's."""
    if not isinstance(loss_fn, torch.nn.Module) or not list(loss_fn.parameters()):
        return None
    return max(float((a - b).abs().max()) for a, b in zip(loss_ref.parameters(), loss_fn.parameters(), strict=True))


def projections_moved(loss_ref, loss_fn) -> float | None:
    """How far training moved the loss's parameters from rank 0's initialisation, the reference's (0: never
    trained)."""
    if not isinstance(loss_fn, torch.nn.Module) or not list(loss_fn.parameters()):
        return None
    return max(float((a - b).abs().max()) for a, b in zip(loss_fn.parameters(), loss_ref.initial, strict=True))


def train_pair(family, make_callbacks, out, loss_for=None):
    """Train the one-process reference and the sharded model; compare them."""
    batches = batches_for(family)
    reference, callbacks_ref = model_for(family), make_callbacks()
    loss_ref = loss_for(teacher_for(family), reference) if loss_for else None
    train_sharded(reference, batches, callbacks_ref, output_dir=out, loss_fn=loss_ref)
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    sharded, callbacks = shard_model_(model_for(family), mesh), make_callbacks()
    loss_fn = loss_for(shard_model_(teacher_for(family), mesh), sharded) if loss_for else None
    train_sharded(sharded, batches, callbacks, output_dir=out, loss_fn=loss_fn)
    return {
        **compare(reference, sharded, family, out, callbacks),
        "projections_diff": projections_diff(loss_ref, loss_fn),
        "projections_moved": projections_moved(loss_ref, loss_fn),
    }


def train_ddp(family, make_callbacks, out, loss_for=None):
    """DDP: every rank holds the whole model (and the whole teacher); the callbacks get the model inside the
    wrapper, as under the Trainer."""
    batches = batches_for(family)
    reference, callbacks_ref = model_for(family), make_callbacks()
    loss_ref = loss_for(teacher_for(family), reference) if loss_for else None
    train_sharded(reference, batches, callbacks_ref, output_dir=out, loss_fn=loss_ref)
    student = model_for(family)
    wrapped, callbacks = torch.nn.parallel.DistributedDataParallel(student), make_callbacks()
    loss_fn = loss_for(teacher_for(family), wrapped) if loss_for else None  # the wrapper: unwrapped for its config
    train_sharded(wrapped, batches, callbacks, output_dir=out, loss_fn=loss_fn)
    return {
        **compare(reference, student, family, out, callbacks),
        "projections_diff": projections_diff(loss_ref, loss_fn),
        "projections_moved": projections_moved(loss_ref, loss_fn),
    }


def shard(model):
    return shard_model_(model, init_device_mesh("cpu", (dist.get_world_size(),)))


def lora_pair(family, out, wrap=shard):
    """LoRA recovery through peft on FSDP2 (or DDP): the adapter trains on shards (or replicas), merges on the
    gathered whole model."""
    from peft import LoraConfig, get_peft_model

    from tlc_hf.compression.lora import merge_keeping_zeros

    def make():
        base = model_for(family)
        prune_magnitude_(base, sparsity=0.5)  # recovery after pruning: the merge keeps the zeros
        torch.manual_seed(1)
        return get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value", "q", "v"]))

    batches = batches_for(family)
    reference = make()
    train_sharded(reference, batches, output_dir=out, learning_rate=1e-2)
    sharded = wrap(make())
    train_sharded(sharded, batches, output_dir=out, learning_rate=1e-2)
    ref_state = {k: v.detach().clone() for k, v in reference.state_dict().items()}  # the merge writes in place
    whole_state = {k: full(v).detach() for k, v in unwrap_model(sharded).state_dict().items()}  # on every rank
    same_keys = set(ref_state) == set(whole_state)
    gathered = make()
    gathered.load_state_dict(whole_state)
    merged, ref_merged = merge_keeping_zeros(gathered), merge_keeping_zeros(reference)
    if dist.get_rank() == 0:
        merged.save_pretrained(os.path.join(out, "merged"))
    dist.barrier()
    reloaded = auto_class(family).from_pretrained(os.path.join(out, "merged"))
    lora_moved = max(float(v.abs().max()) for k, v in ref_state.items() if "lora_B" in k)
    return {
        "weights_max_diff": max(float((whole_state[k] - ref_state[k]).abs().max()) for k in ref_state),
        "same_keys": same_keys and lora_moved > 0,
        "zeros_equal": all(torch.equal(whole_state[k] == 0, ref_state[k] == 0) for k in ref_state if "lora" not in k),
        "masks_equal": None,
        "sparsity": target_sparsity(find_targets(merged)),
        "reference_sparsity": target_sparsity(find_targets(ref_merged)),
        "reload_vs_reference": float((outputs(reloaded, family) - outputs(ref_merged, family)).abs().max()),
        "params": sum(p.numel() for p in reloaded.parameters()),
        "reference_params": sum(p.numel() for p in ref_merged.parameters()),
        "methods": [m["method"] for m in compression_history(reloaded)],
        "reference_methods": [m["method"] for m in compression_history(ref_merged)],
    }


def one_shot(family, prune, out):
    reference = model_for(family)
    prune(reference)
    sharded = shard_model_(model_for(family), init_device_mesh("cpu", (dist.get_world_size(),)))
    report = prune(sharded)
    result = compare(reference, sharded, family, out)
    result["report"] = {k: v for k, v in report.items() if k != "per_module"}
    return result


# training checks: (callbacks, loss) run under FSDP2 (`train_pair`) and, for DDP_CHECKED, under DDP (`train_ddp`)
TRAINED = {
    "magnitude_local": (lambda: [MagnitudePruningCallback(sparsity=0.6, update_every=2, end=0.5)], None),
    "magnitude_global": (
        lambda: [MagnitudePruningCallback(sparsity=0.6, scope="global", update_every=2, end=0.5)],
        None,
    ),
    "movement_hard": (lambda: [MovementPruningCallback(sparsity=0.5, update_every=2, end=0.5)], None),
    "movement_soft": (
        lambda: [MovementPruningCallback(variant="soft", threshold=0.0, update_every=2, end=0.5)],
        None,
    ),
    "structured": (lambda: [StructuredPruningCallback(heads=0.5, ffn=0.5, steps=2, end=0.5)], None),
    "structured_gradient": (
        lambda: [StructuredPruningCallback(heads=0.5, ffn=0.5, steps=2, end=0.5, importance="gradient")],
        None,
    ),
    "qat": (lambda: [QATCallback(bits=8, start=0.3)], None),
    "quant_noise": (lambda: [QuantNoiseCallback(noise_rate=0.5, bits=4, start=0.0, end=0.5, seed=0)], None),
    "drophead": (lambda: [DropHeadCallback(rate=0.3, schedule="constant", seed=0)], None),
    "kd": (lambda: [], kd_logits),
    "kd_hidden": (lambda: [], kd_hidden),
    "kd_magnitude_qat": (
        lambda: [MagnitudePruningCallback(sparsity=0.5, update_every=2, end=0.5), QATCallback(bits=8, start=0.0)],
        kd_logits,
    ),
}
# DDP (every rank whole): the methods the FSDP2 checks cover, each against one process
DDP_CHECKED = (
    "magnitude_global",
    "movement_soft",
    "structured",
    "structured_gradient",
    "quant_noise",
    "drophead",
    "kd",
    "kd_hidden",
)


def _trained(run, name):
    make_callbacks, loss_for = TRAINED[name]
    return lambda f, out: run(f, make_callbacks, out, loss_for=loss_for)


CHECKS = {
    "prune_magnitude_local": lambda f, out: one_shot(f, lambda m: prune_magnitude_(m, sparsity=0.6), out),
    "prune_magnitude_global": lambda f, out: one_shot(
        f, lambda m: prune_magnitude_(m, sparsity=0.6, scope="global"), out
    ),
    "prune_structured": lambda f, out: one_shot(f, lambda m: prune_structured_(m, heads=0.5, ffn=0.5), out),
    **{name: _trained(train_pair, name) for name in TRAINED},
    "lora": lora_pair,
    "ddp_magnitude_movement_qat": lambda f, out: train_ddp(
        f,
        lambda: [
            MagnitudePruningCallback(sparsity=0.5, update_every=2, end=0.5, target_modules=r"(?i)attention"),
            MovementPruningCallback(
                sparsity=0.5,
                update_every=2,
                end=0.5,
                target_modules=r"intermediate\.dense|layer\.\d+\.output\.dense|DenseReluDense",
            ),
            QATCallback(bits=8, start=0.3),
        ],
        out,
    ),
    **{f"ddp_{name}": _trained(train_ddp, name) for name in DDP_CHECKED},
    "ddp_lora": lambda f, out: lora_pair(f, out, wrap=torch.nn.parallel.DistributedDataParallel),
}


def main():
    out, wanted = sys.argv[1], sys.argv[2:] or list(CHECKS)
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    results = {}
    for name in wanted:
        for family in FAMILIES:
            torch.manual_seed(0)
            folder = os.path.join(out, name, family)
            # a failing check ends the run (launch_ranks puts the rank's traceback in the assertion): recording it
            # and going on would leave the other rank waiting in a collective whenever only one rank failed
            results[f"{name}/{family}"] = CHECKS[name](family, folder)
    with open(os.path.join(out, f"results-{dist.get_rank()}.json"), "w") as f:
        json.dump(results, f, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
