"""Finding a checkpoint that is safe to resume from."""

from __future__ import annotations

import json
import logging
import os
import re

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def read_trainer_state(checkpoint: str | os.PathLike) -> dict | None:
    """The checkpoint's `trainer_state.json` as a dict, or None if it is missing or half-written."""
    try:
        with open(os.path.join(checkpoint, TRAINER_STATE_NAME)) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def find_resumable_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest `checkpoint-N` in `output_dir` that was written to the end, or None.

    The Trainer writes `trainer_state.json` last, so a checkpoint whose state file is missing or does not
    parse was cut off mid-write (killed, out of disk) and is skipped with a warning, where transformers'
    `get_last_checkpoint` would pick it and fail to resume.
    """
    if not os.path.isdir(output_dir):
        return None
    steps = sorted(
        ((int(m.group(1)), name) for name in os.listdir(output_dir) if (m := _CHECKPOINT.match(name))),
        reverse=True,
    )
    for _, name in steps:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path) and read_trainer_state(path) is not None:
            return path
        logger.warning("Skipping %s: it was not written to the end (no readable %s).", path, TRAINER_STATE_NAME)
    return None
