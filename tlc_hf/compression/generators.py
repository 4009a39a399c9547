"""Seeded random generators of compression callbacks (DropHead, Quant-Noise) in checkpoints.

A callback with a seed draws from its own `torch.Generator`, which neither the Trainer's `rng_state.pth` nor
`train_sharded`'s per-rank RNG files hold. `save_generator` writes its state beside the checkpoint
(`<checkpoint>/tlc_<name>_generator.safetensors`, a uint8 tensor) in `on_save`; `restore_generator` reads it back
at train begin of a resumed run, so the resumed run draws what the uninterrupted one would have.
"""

from __future__ import annotations

import logging
import os

import torch

from .masks import checkpoint_path, resumed_checkpoint

logger = logging.getLogger(__name__)


def generator_file(name: str) -> str:
    """The file name of callback `name`'s generator state in a checkpoint folder."""
    return f"tlc_{name}_generator.safetensors"


def save_generator(generator: torch.Generator | None, args, state, name: str) -> None:
    """Write `generator`'s state into the checkpoint of this step (rank 0; every rank holds the same state).

    Args:
        generator: the callback's seeded generator; None (unseeded: the global RNG, saved by the trainer) writes
            nothing.
        args: the `TrainingArguments` (`output_dir`).
        state: the `TrainerState` (`global_step`, `is_world_process_zero`).
        name: the callback's short name, e.g. "drophead".

    Example:
        ```python
        def on_save(self, args, state, control, **kwargs):
            save_generator(self.generator, args, state, "drophead")
        ```
    """
    checkpoint = checkpoint_path(args, state)
    if generator is None or not state.is_world_process_zero or not os.path.isdir(checkpoint):
        return
    from safetensors.torch import save_file

    save_file({"state": generator.get_state()}, os.path.join(checkpoint, generator_file(name)))


def restore_generator(generator: torch.Generator | None, args, state, name: str) -> None:
    """On a resumed run, set `generator` to the state saved in the checkpoint it resumed from; a resumed run
    whose checkpoint has no such file (older, or moved without `resume_from_checkpoint` set) says so in a
    warning and draws on from the seed.

    Args:
        generator: the callback's seeded generator (None: nothing to restore).
        args: the `TrainingArguments` (`resume_from_checkpoint`, `output_dir`).
        state: the `TrainerState` at train begin (`global_step` > 0 when resumed).
        name: the callback's short name, as given to `save_generator`.

    Example:
        ```python
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            restore_generator(self.generator, args, state, "drophead")
        ```
    """
    if generator is None or state.global_step == 0:
        return
    checkpoint = resumed_checkpoint(args, state)
    path = os.path.join(checkpoint, generator_file(name)) if checkpoint else None
    if path is None or not os.path.exists(path):
        logger.warning(
            "resumed at step %d without the %s generator's state (no %s in %s): it draws on from its seed, not "
            "as the uninterrupted run would. Resuming from a folder other than output_dir/checkpoint-<step>? "
            "Set TrainingArguments.resume_from_checkpoint to it.",
            state.global_step,
            name,
            generator_file(name),
            checkpoint or checkpoint_path(args, state),
        )
        return
    from safetensors.torch import load_file

    generator.set_state(load_file(path)["state"])
