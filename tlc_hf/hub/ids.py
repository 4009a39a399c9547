"""Hub model ids: check one before a push, and tell a Hub id from a local path (a card's `base_model`)."""

from __future__ import annotations

import json
import os


def check_repo_id(repo_id: str) -> None:
    """A one-line ValueError unless `repo_id` is a Hub model id with a namespace ("user-or-org/name")."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not is_hub_id(repo_id):
        raise ValueError(
            f"repo_id={repo_id!r} is not a Hub id: use 'user-or-org/name' with letters, digits, '-', '_' and '.' "
            "(not starting or ending with '-' or '.', no '--' or '..', at most 96 characters)"
        )


def is_hub_id(name) -> bool:
    """`name` is a valid Hub model id ("org/name", or a legacy "name") and not a path on this machine."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    name = str(name)
    if name.count("/") > 1 or name.startswith((".", "/", "~")) or os.path.exists(name):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def base_model_of(baseline: str | os.PathLike | None) -> tuple[str | None, str | None]:
    """(Hub id, note) naming the model `baseline` stands for, for a card's `base_model`.

    A Hub id is itself; a local folder is the Hub id its config records (`_name_or_path`), else nothing, with a
    note that says why (a card's `base_model` must name a Hub model, never a path on the machine that wrote it).
    """
    if baseline is None:
        return None, None
    if not os.path.isdir(baseline):
        return (str(baseline), None) if is_hub_id(baseline) else (None, f"{baseline} is not a Hub id")
    recorded = None
    path = os.path.join(baseline, "config.json")
    if os.path.isfile(path):
        with open(path) as f:
            recorded = json.load(f).get("_name_or_path")
    if recorded and is_hub_id(recorded):
        return recorded, None
    return None, "the baseline was a local folder whose config names no Hub model"
