"""Resume from a sharded (FSDP2) checkpoint in new processes: masks and movement scores come back.

    torchrun --nproc_per_node 2 tests/scripts/sharded_resume_worker.py OUT first
    torchrun --nproc_per_node 2 tests/scripts/sharded_resume_worker.py OUT resume
    python tests/scripts/sharded_resume_worker.py OUT resume    # one process resumes the 2-rank checkpoint

`first`: per check and family, the one-process reference and an uninterrupted 2-rank run (FSDP2, or DDP for
`movement_hard_ddp`) train all STEPS batches; a third, sharded run saves `checkpoint-STOP` and stops there (mid-schedule, between two mask
updates). Rank 0 writes what the two full runs saw (whole masks and movement scores at step STOP, at the last
step, the final weights, the sparsity). It also gathers models whose weights are on the meta device.
`resume`: new processes resume the checkpoint with a model of other initial weights, train the remaining
batches and compare with both full runs. Each writes `<phase>-<world>-<rank>.json` into OUT.
"""

import json
import os
import shutil
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.distributed.device_mesh import init_device_mesh  # noqa: E402
from transformers import AutoModelForMaskedLM, TrainerCallback  # noqa: E402

import tlc_hf  # noqa: E402, F401
from tlc_hf.compression.magnitude import MagnitudePruningCallback  # noqa: E402
from tlc_hf.compression.masks import get_mask, target_sparsity  # noqa: E402
from tlc_hf.compression.movement import MovementPruningCallback  # noqa: E402
from tlc_hf.compression.movement.callback import SCORES_NAME  # noqa: E402
from tlc_hf.compression.sharding import full, local, shard_like, unwrap_model  # noqa: E402
from tlc_hf.training.sharded import gather_whole, save_whole, shard_model_, train_sharded  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from sharded_worker import FAMILIES, STEPS, batches_for, model_for  # noqa: E402

STOP = 3  # of STEPS = 6: masks updated at steps 2, 4, 6; checkpoint-3 holds step-2 masks, 3 steps of scores
CHECKS = {  # check: (its pruning callback, how the 2 ranks train: FSDP2 shards or DDP replicas)
    "magnitude_global": (
        lambda: MagnitudePruningCallback(sparsity=0.6, scope="global", update_every=2, end=0.75),
        "fsdp2",
    ),
    "movement_hard": (lambda: MovementPruningCallback(sparsity=0.5, update_every=2, end=0.75), "fsdp2"),
    "movement_soft": (
        lambda: MovementPruningCallback(variant="soft", threshold=0.0, update_every=2, end=0.75),
        "fsdp2",
    ),
    "movement_hard_ddp": (lambda: MovementPruningCallback(sparsity=0.5, update_every=2, end=0.75), "ddp"),
}
ONLY = {"movement_hard_ddp": ("bert",)}  # families of a check, when not all (keeps the test short)


class Probe(TrainerCallback):
    """Whole masks and movement scores (gathered from the shards) after train begin and at every step end;
    placed after the pruning callback, so it sees what that callback has just done. Stops at `stop`."""

    def __init__(self, pruning, stop=None):
        self.pruning, self.stop, self.seen = pruning, stop, {}

    def _look(self, key):
        masks, scores = {}, {}
        for name, module in self.pruning.targets.items():
            weight = module.weight
            mask = get_mask(module)
            mask = torch.ones_like(local(weight), dtype=torch.bool) if mask is None else mask
            masks[name] = full(shard_like(mask, weight)).clone()
            if getattr(self.pruning, "scores", None):
                scores[name] = full(shard_like(self.pruning.scores[name], weight)).clone()
        self.seen[key] = {"masks": masks, "scores": scores}

    def on_train_begin(self, args, state, control, **kwargs):
        self._look(f"begin-{state.global_step}")

    def on_step_end(self, args, state, control, **kwargs):
        self._look(state.global_step)
        if state.global_step == self.stop:
            control.should_training_stop = True  # "preempted" right after the checkpoint


def run(family, check, output_dir, sharded, stop=None, init_seed=0, resume=None):
    """Train (or resume) one run; returns what it saw and its gathered final weights."""
    model = model_for(family, seed=init_seed)
    make_pruning, engine = CHECKS[check]
    if sharded and engine == "fsdp2":
        model = shard_model_(model, init_device_mesh("cpu", (dist.get_world_size(),)))
    elif sharded:
        model = torch.nn.parallel.DistributedDataParallel(model)
    pruning = make_pruning()
    probe = Probe(pruning, stop)
    logs = train_sharded(
        model,
        batches_for(family),
        [pruning, probe],
        output_dir=output_dir,
        save_steps=stop,
        resume_from_checkpoint=resume,
    )
    sparsity = target_sparsity(pruning.targets)  # each rank measures its shards, summed over ranks
    whole = gather_whole(model, rank0_only=False) if sharded and engine == "fsdp2" else unwrap_model(model)
    return {
        "seen": probe.seen,
        "state": {k: v.detach().clone() for k, v in whole.state_dict().items()},
        "sparsity": sparsity,
        "steps": [entry["step"] for entry in logs],
    }


def first(out):
    rank = dist.get_rank()
    results = {}
    for check in CHECKS:
        for family in ONLY.get(check, FAMILIES):
            folder = os.path.join(out, check, family)
            torch.manual_seed(0)
            reference = run(family, check, os.path.join(folder, "reference"), sharded=False)
            uninterrupted = run(family, check, os.path.join(folder, "uninterrupted"), sharded=True)
            stopped = run(family, check, os.path.join(folder, "run"), sharded=True, stop=STOP)
            if rank == 0:
                torch.save({"reference": reference, "uninterrupted": uninterrupted}, os.path.join(folder, "full.pt"))
            checkpoint = os.path.join(folder, "run", f"checkpoint-{STOP}")
            results[f"{check}/{family}"] = {
                "stopped_steps": stopped["steps"],
                "checkpoint_files": sorted(os.listdir(checkpoint)),
                "leftovers": sorted(n for n in os.listdir(os.path.dirname(checkpoint)) if n.startswith(".")),
            }
    results["meta"] = meta_checks(out)
    return results


def meta_checks(out):
    """gather_whole / save_whole on FSDP2 models whose weights are on the meta device."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    real = model_for("bert")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    with torch.device("meta"):
        model = shard_model_(AutoModelForMaskedLM.from_config(real.config), mesh)
    result = {}
    for action, call in (
        ("gather_whole", lambda: gather_whole(model)),
        ("save_whole", lambda: save_whole(model, os.path.join(out, "meta-save"))),
    ):
        try:
            call()
            result[action] = None
        except ValueError as err:
            result[action] = str(err)
    result["save_dir_exists"] = os.path.exists(os.path.join(out, "meta-save"))
    # meta init, then to_empty and the weights broadcast from rank 0: gathered real weights
    model.to_empty(device="cpu")
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(model, real.state_dict() if dist.get_rank() == 0 else {}, options=options)
    whole = gather_whole(model, rank0_only=False)
    result["materialised_max_diff"] = max(
        float((whole.state_dict()[k] - v).abs().max()) for k, v in real.state_dict().items()
    )
    save_whole(model, os.path.join(out, "materialised"))
    reloaded = AutoModelForMaskedLM.from_pretrained(os.path.join(out, "materialised"))
    result["reloaded_max_diff"] = max(
        float((reloaded.state_dict()[k] - v).abs().max()) for k, v in real.state_dict().items()
    )
    return result


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in b)


def _equal(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in b)


def _score_diff(a: dict, b: dict) -> float | None:
    """Largest score difference relative to the largest score (None without scores)."""
    if not b:
        return None
    return _max_diff(a, b) / max(float(v.abs().max()) for v in b.values())


def resume(out, sharded):
    results = {}
    for check in CHECKS:
        for family in ONLY.get(check, FAMILIES):
            folder = os.path.join(out, check, family)
            full_runs = torch.load(os.path.join(folder, "full.pt"), weights_only=False)
            output_dir = os.path.join(folder, "run")
            if not sharded:  # a copy: the 2-rank resume writes no checkpoint, but keep the folders apart anyway
                output_dir = os.path.join(folder, "run-1")
                shutil.copytree(os.path.join(folder, "run", f"checkpoint-{STOP}"), f"{output_dir}/checkpoint-{STOP}")
            checkpoint = os.path.join(output_dir, f"checkpoint-{STOP}")
            torch.manual_seed(0)
            resumed = run(family, check, output_dir, sharded, init_seed=5, resume=checkpoint)
            at_resume, end = resumed["seen"][f"begin-{STOP}"], resumed["seen"][STEPS]
            result = {"steps": resumed["steps"], "sparsity": resumed["sparsity"]}
            for name in ("reference", "uninterrupted"):
                other = full_runs[name]
                at_stop, other_end = other["seen"][STOP], other["seen"][STEPS]
                result[name] = {
                    "masks_at_resume_equal": _equal(at_resume["masks"], at_stop["masks"]),
                    "scores_at_resume_diff": _score_diff(at_resume["scores"], at_stop["scores"]),
                    "masks_at_end_equal": _equal(end["masks"], other_end["masks"]),
                    "scores_at_end_diff": _score_diff(end["scores"], other_end["scores"]),
                    "pruned_at_end": sum(int((~m).sum()) for m in other_end["masks"].values()),
                    "weights_max_diff": _max_diff(resumed["state"], other["state"]),
                    "zeros_equal": all(
                        torch.equal(resumed["state"][k] == 0, other["state"][k] == 0) for k in other["state"]
                    ),
                    "sparsity": other["sparsity"],
                }
            if check == "movement_hard" and family == "bert":
                result["control_without_scores"] = control_without_scores(folder, family, check, sharded, full_runs)
            results[f"{check}/{family}"] = result
    return results


def control_without_scores(folder, family, check, sharded, full_runs):
    """The same resume from a copy of the checkpoint without the scores file: the masks must differ (the test
    would see scores that were not restored)."""
    output_dir = os.path.join(folder, f"no-scores-{dist.get_world_size() if sharded else 1}")
    if not dist.is_initialized() or dist.get_rank() == 0:
        shutil.copytree(os.path.join(folder, "run", f"checkpoint-{STOP}"), f"{output_dir}/checkpoint-{STOP}")
        os.remove(os.path.join(output_dir, f"checkpoint-{STOP}", SCORES_NAME))
    if dist.is_initialized():
        dist.barrier()
    torch.manual_seed(0)
    resumed = run(
        family, check, output_dir, sharded, init_seed=5, resume=os.path.join(output_dir, f"checkpoint-{STOP}")
    )
    return {
        "masks_at_end_equal": _equal(
            resumed["seen"][STEPS]["masks"], full_runs["uninterrupted"]["seen"][STEPS]["masks"]
        )
    }


def main():
    out, phase = sys.argv[1], sys.argv[2]
    sharded = "RANK" in os.environ  # under torchrun
    if sharded:
        dist.init_process_group("gloo")
    torch.set_num_threads(1)
    rank, world = (dist.get_rank(), dist.get_world_size()) if sharded else (0, 1)
    results = first(out) if phase == "first" else resume(out, sharded)
    with open(os.path.join(out, f"{phase}-{world}-{rank}.json"), "w") as f:
        json.dump(results, f, indent=1)
    if sharded:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
