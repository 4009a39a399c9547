"""Seeded random generators of compression callbacks (DropHead, Quant-Noise) in checkpoints.

A callback with a seed draws from its own `torch.Generator`, which neither the Trainer's `rng_state.pth` nor
`train_sharded`'s per-rank RNG files hold. `save_generator` writes its state beside the checkpoint
(`<checkpoint>/tlc_<name>_generator.safetensors`, a uint8 tensor) in `on_save`; `restore_generator` reads it back
at train begin of a resumed run, so the resumed run draws what the uninterrupted one would have.
"""

from __future__ import annotations

import os

import torch

from .masks import checkpoint_path, resumed_file


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
    if generator is None:
        return
    otherwise = "it draws on from its seed, not as the uninterrupted run would"
    path = resumed_file(args, state, generator_file(name), f"the {name} generator's state", otherwise)
    if path is None:
        return
    from safetensors.torch import load_file

    generator.set_state(load_file(path)["state"])
