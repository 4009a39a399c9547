"""Push a compressed model folder (weights, configs, compression config, report, card, plot) to the Hub."""

from __future__ import annotations

import json
import os

from .errors import describe_hub_error, hub_cause, hub_errors
from .ids import check_repo_id

IGNORE_PATTERNS = ["checkpoint-*", "checkpoint-*/**", ".*", "*.tmp*", "runs/**", "training_args.bin"]
KEPT_ON_THE_HUB = (".gitattributes",)


def _is_main_process() -> bool:
    try:
        from accelerate import PartialState

        if PartialState._shared_state and PartialState().num_processes > 1:
            return PartialState().is_main_process
    except ImportError:  # pragma: no cover
        pass
    return int(os.environ.get("RANK", "0")) == 0


def folder_files(model_dir: str | os.PathLike) -> list[str]:
    """The files of `model_dir` a push uploads (relative POSIX paths; training leftovers left out)."""
    from huggingface_hub.utils import filter_repo_objects

    paths = []
    for root, _, names in os.walk(model_dir):
        for name in names:
            paths.append(os.path.relpath(os.path.join(root, name), model_dir).replace(os.sep, "/"))
    return sorted(filter_repo_objects(paths, ignore_patterns=IGNORE_PATTERNS))


def _card_names(model_dir, repo_id: str) -> None:
    """Re-render the folder's tlc_hf card (from its report) when its snippet loads from another id than
    `repo_id`, so the card on the Hub loads the model it sits beside."""
    from .card import render_model_card
    from .report import REPORT_NAME, CompressionReport

    readme = os.path.join(model_dir, "README.md")
    if not os.path.isfile(os.path.join(model_dir, REPORT_NAME)):
        return
    text = None
    if os.path.isfile(readme):
        with open(readme) as f:
            text = f.read()
    if text is not None and ("tlc_hf" not in text or f'("{repo_id}")' in text):
        return  # not our card (leave it), or it already names the repo
    render_model_card(CompressionReport.load(model_dir), repo_id=repo_id, output_dir=model_dir)


def push_compressed_to_hub(
    model_dir: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    api=None,
) -> str | None:
    """Create `repo_id` (if needed) and make its files those of `model_dir`, in **one** commit, from the main
    process only.

    Files of the repo that are not in the folder (a previous push's) are deleted in the same commit, so the repo
    never mixes two models; `.gitattributes` is kept. Checkpoints, hidden files and `training_args.bin` are left out.
    A tlc_hf card (with its `compression_report.json`) whose snippet loads another id is re-rendered first, in
    the folder, so the card on the Hub loads `repo_id`.

    Args:
        model_dir: a folder written by `save_compressed` / `save_pretrained` (with `config.json`).
        repo_id: "user-or-org/name".
        private: create the repo private (an existing repo keeps its visibility).
        token: a write token; default: the login (`hf auth login`) or HF_TOKEN.
        commit_message: default: "Upload tlc_hf-compressed model".
        api: an `HfApi` to use (default: a new one with `token`).

    Returns:
        The commit URL on the main process, None on the others.

    Raises:
        ValueError: a bad `repo_id`, no token, or card metadata the Hub refuses.
        PermissionError: the token may not write to the repo (another owner's namespace, a bad token).
        ConnectionError: the Hub cannot be reached, or failed midway. Either way the repo is left at its
            previous commit (a push is one commit, made only once every file is uploaded).

    Example:
        ```python
        save_compressed(model, "out/pruned", tokenizer)
        push_compressed_to_hub("out/pruned", "me/tiny-pruned")
        ```
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise FileNotFoundError(f"{model_dir} has no config.json; push a folder written by save_compressed")
    check_repo_id(repo_id)
    if not _is_main_process():
        return None
    api = api or HfApi(token=token)
    token = token or getattr(api, "token", None)
    if token is None:
        from huggingface_hub import get_token

        token = get_token()
    if not token:
        raise ValueError("no Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass token=...")
    with open(os.path.join(model_dir, "config.json")) as f:
        has_compression = bool((json.load(f).get("tlc_compression") or {}).get("methods"))
    message = commit_message or ("Upload tlc_hf-compressed model" if has_compression else "Upload model with tlc_hf")
    _card_names(model_dir, repo_id)
    files = folder_files(model_dir)
    failed = f"could not push {model_dir} to {repo_id}"
    untouched = "nothing was committed, the repo is as it was"
    try:
        api.create_repo(repo_id=repo_id, private=private, exist_ok=True, token=token)
        stale = [p for p in api.list_repo_files(repo_id, token=token) if p not in files and p not in KEPT_ON_THE_HUB]
        operations = [CommitOperationAdd(path, os.path.join(model_dir, path)) for path in files]
        operations += [CommitOperationDelete(path) for path in stale]
        commit = api.create_commit(repo_id, operations, commit_message=message, token=token)
    except (*hub_errors(), RuntimeError) as err:
        cause = hub_cause(err)
        if cause is None:
            raise
        kind, reason = describe_hub_error(cause, repo_id)
        while_doing = "" if cause is err else f"{str(err).strip().rstrip('.')}: "
        raise kind(f"{failed}: {while_doing}{reason}; {untouched}") from err
    except ValueError as err:
        if "Invalid metadata in README.md" not in str(err):
            raise
        refused = "; ".join(line.lstrip("- ").strip() for line in str(err).splitlines()[1:] if line.strip())
        raise ValueError(f"{failed}: the Hub refused the card's metadata (README.md): {refused}; {untouched}") from err
    return str(getattr(commit, "commit_url", commit))
