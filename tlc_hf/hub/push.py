"""Push a compressed model folder (weights, configs, compression config, report, card, plot) to the Hub."""

from __future__ import annotations

import json
import os

IGNORE_PATTERNS = ["checkpoint-*", "checkpoint-*/**", ".*", "*.tmp*", "runs/**", "training_args.bin"]


def _is_main_process() -> bool:
    try:
        from accelerate import PartialState

        if PartialState._shared_state and PartialState().num_processes > 1:
            return PartialState().is_main_process
    except ImportError:  # pragma: no cover
        pass
    return int(os.environ.get("RANK", "0")) == 0


def push_compressed_to_hub(
    model_dir: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    api=None,
) -> str | None:
    """Create `repo_id` (if needed) and upload `model_dir` in **one** commit, from the main process only.

    Returns the commit URL on the main process and None on the others. A missing token or an unreachable
    Hub raises a clear error; a push is a single commit, so a failure uploads nothing.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise FileNotFoundError(f"{model_dir} has no config.json; push a folder written by save_compressed")
    if "/" not in repo_id or repo_id.count("/") != 1:
        raise ValueError(f"repo_id={repo_id!r} must look like 'user-or-org/name'")
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
    try:
        api.create_repo(repo_id=repo_id, private=private, exist_ok=True, token=token)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(model_dir),
            commit_message=message,
            token=token,
            ignore_patterns=IGNORE_PATTERNS,
        )
    except (HfHubHTTPError, OSError) as err:
        raise ConnectionError(f"could not push {model_dir} to {repo_id}: {err}. Nothing was uploaded.") from err
    return str(getattr(commit, "commit_url", commit))
