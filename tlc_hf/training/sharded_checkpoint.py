"""Checkpoints of `train_sharded` runs, in the Trainer's layout `output_dir/checkpoint-<step>`.

Model and optimizer go through torch.distributed.checkpoint (DCP) with `get_state_dict` / `set_state_dict`:
each rank writes and reads its own shards, and DCP reshards on load (a 2-rank checkpoint resumes in one
process). Beside them: the callbacks' own files (`on_save`, e.g. movement scores saved whole) and
`trainer_state.json` (the step, and the state of `ExportableState` callbacks), written last — a folder
without it was cut off mid-write and is not resumed. Each rank's torch RNG state goes beside the shards
(`rng_state_<rank>.safetensors`, as the Trainer's `rng_state.pth`), so dropout draws on a resumed run what the
uninterrupted run would (a rank with no file of its number, in a larger world, is warned about).
Masks are not saved: pruned weights are exact zeros, and the pruning callbacks rebuild their masks from them when a run resumes.
"""

from __future__ import annotations

import logging
import os
import shutil

import torch
import torch.distributed as dist
from torch import nn
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .checkpoints import TRAINER_STATE_NAME, find_resumable_checkpoint, read_trainer_state

SHARDED_STATE_DIR = "sharded_state"  # the DCP folder: model and optimizer, one file per rank
logger = logging.getLogger(__name__)


def rng_state_file(rank: int) -> str:
    """The file name of rank `rank`'s torch RNG state in a checkpoint folder."""
    return f"rng_state_{rank}.safetensors"


def _save_rng_state(folder: str) -> None:
    from safetensors.torch import save_file

    rank = dist.get_rank() if dist.is_initialized() else 0
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    save_file(states, os.path.join(folder, rng_state_file(rank)))


def _load_rng_state(checkpoint: str) -> None:
    from safetensors.torch import load_file

    rank = dist.get_rank() if dist.is_initialized() else 0
    path = os.path.join(checkpoint, rng_state_file(rank))
    if not os.path.exists(path):
        logger.warning(
            "rank %d: no %s in %s (saved by fewer ranks, or an older checkpoint): this rank's dropout draws "
            "differ from the uninterrupted run's",
            rank,
            rng_state_file(rank),
            checkpoint,
        )
        return
    states = load_file(path)
    torch.set_rng_state(states["cpu"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


def _rank0() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def save_sharded_checkpoint(model: nn.Module, optimizer, handler, args, state, control):
    """Write `output_dir/checkpoint-<step>` (a collective): DCP model + optimizer and each rank's RNG state into a
    temp folder renamed into place, then the callbacks' `on_save` files, then `trainer_state.json`. Returns the
    control.

    Args:
        model: the model being trained (FSDP2-sharded, DDP-wrapped or plain).
        optimizer: its optimizer.
        handler: the run's `CallbackHandler` (its callbacks write their files in `on_save`).
        args: the `TrainingArguments` (`output_dir`).
        state: the `TrainerState` (`global_step` names the folder).
        control: the `TrainerControl`.

    Example:
        ```python
        control = save_sharded_checkpoint(model, optimizer, handler, args, state, control)  # on every rank
        ```
    """
    from torch.distributed.checkpoint import save
    from torch.distributed.checkpoint.state_dict import get_state_dict

    folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
    tmp = os.path.join(args.output_dir, f".tmp-{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
    if _rank0():
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    _barrier()
    model_state, optimizer_state = get_state_dict(model, optimizer)
    save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=os.path.join(tmp, SHARDED_STATE_DIR))
    _save_rng_state(tmp)
    _barrier()
    if _rank0():
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    _barrier()
    control = handler.on_save(args, state, control)  # movement scores: gathered whole, written by rank 0
    if _rank0():
        exported = {}
        for callback in [*handler.callbacks, control]:
            if isinstance(callback, ExportableState):
                exported.setdefault(type(callback).__name__, []).append(callback.state())
        state.stateful_callbacks = {name: s[0] if len(s) == 1 else s for name, s in exported.items()}
        state.save_to_json(os.path.join(folder, TRAINER_STATE_NAME))
    _barrier()
    return control


def resolve_checkpoint(resume_from_checkpoint: str | bool, output_dir: str) -> str:
    """The checkpoint folder to resume from: `True` is the newest complete `checkpoint-N` of `output_dir`;
    a path must be a complete `checkpoint-N` inside `output_dir` (callbacks read their files from there).
    Anything else is refused in one line.

    Args:
        resume_from_checkpoint: True, or the path of a `checkpoint-N` folder.
        output_dir: the run's output directory.

    Example:
        ```python
        resolve_checkpoint(True, "out")  # "out/checkpoint-6", the newest complete one
        ```
    """
    if resume_from_checkpoint is True:
        found = find_resumable_checkpoint(output_dir)
        if found is None:
            raise ValueError(
                f"resume_from_checkpoint=True: no complete checkpoint-N folder in {output_dir!r} (none written, or "
                "each cut off mid-write); pass a checkpoint folder, or train from the start"
            )
        if not os.path.isdir(os.path.join(found, SHARDED_STATE_DIR)):
            raise ValueError(
                f"resume_from_checkpoint=True: the newest complete checkpoint-N folder of {output_dir!r} is "
                f"{os.path.basename(found)!r}, not a train_sharded checkpoint (no {SHARDED_STATE_DIR}/); "
                "pass the checkpoint folder to resume"
            )
        return found
    path = str(resume_from_checkpoint)
    if os.path.realpath(os.path.dirname(os.path.abspath(path))) != os.path.realpath(output_dir):
        raise ValueError(
            f"resume_from_checkpoint={path!r} is not a checkpoint-N folder of output_dir={output_dir!r}: callbacks "
            "read their saved state (movement scores) from output_dir/checkpoint-N; pass output_dir=its parent"
        )
    if read_trainer_state(path) is None or not os.path.isdir(os.path.join(path, SHARDED_STATE_DIR)):
        raise ValueError(
            f"resume_from_checkpoint={path!r} has no readable {TRAINER_STATE_NAME} and {SHARDED_STATE_DIR}/ "
            "(not a train_sharded checkpoint, or cut off mid-write); pass another checkpoint or True"
        )
    return path


def load_sharded_checkpoint(checkpoint: str, model: nn.Module, optimizer, handler, max_steps: int, control):
    """Load model + optimizer shards (resharded to this run's world size), the TrainerState and the
    `ExportableState` callbacks' attributes from `checkpoint`, and this rank's RNG state. Returns (state, control).

    Args:
        checkpoint: a folder `resolve_checkpoint` returned.
        model: the model of this run, sharded (any world size) or plain, its weights to be overwritten.
        optimizer: its optimizer.
        handler: the run's `CallbackHandler` (its `ExportableState` callbacks get their saved attributes).
        max_steps: this run's number of batches; must equal the saved run's.
        control: the `TrainerControl` (replaced by the saved one, if any).

    Example:
        ```python
        state, control = load_sharded_checkpoint(resolve_checkpoint(True, "out"), model, opt, handler, 6, control)
        ```
    """
    from torch.distributed.checkpoint import load
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    from transformers import TrainerControl, TrainerState

    state = TrainerState.load_from_json(os.path.join(checkpoint, TRAINER_STATE_NAME))
    if state.max_steps != max_steps:
        raise ValueError(
            f"resume_from_checkpoint={checkpoint!r} was saved with max_steps={state.max_steps}, this run has "
            f"{max_steps} batches: pass the same global batches (schedules follow step / max_steps)"
        )
    model_state, optimizer_state = get_state_dict(model, optimizer)
    loaded = {"model": model_state, "optimizer": optimizer_state}
    load(loaded, checkpoint_id=os.path.join(checkpoint, SHARDED_STATE_DIR))
    set_state_dict(model, optimizer, model_state_dict=loaded["model"], optim_state_dict=loaded["optimizer"])
    _load_rng_state(checkpoint)
    for name, saved in state.stateful_callbacks.items():
        saved = saved if isinstance(saved, list) else [saved]
        if name == "TrainerControl":
            control = TrainerControl(**saved[0].get("args", {}))
            continue
        matching = [c for c in handler.callbacks if type(c).__name__ == name and isinstance(c, ExportableState)]
        for callback, data in zip(matching, saved, strict=False):  # as the Trainer: restored in order
            for attribute, value in data.get("attributes", {}).items():
                setattr(callback, attribute, value)
    state.is_world_process_zero = _rank0()
    return state, control
