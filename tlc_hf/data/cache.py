"""Where tlc_hf caches what it builds (tokenizers, tokenized datasets), and atomic folder writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def cache_root() -> Path:
    """`$TLC_HF_CACHE`, else `$HF_HOME/tlc_hf`, else `~/.cache/tlc_hf`."""
    if os.environ.get("TLC_HF_CACHE"):
        return Path(os.environ["TLC_HF_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "tlc_hf"
    return Path.home() / ".cache" / "tlc_hf"


def cache_key(**parts) -> str:
    """A short stable hash of JSON-able parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(final_path: str | os.PathLike) -> list[str]:
    """Remove the temporary folders that killed runs left beside `final_path` (`.<name>.tmp-<pid>-*`,
    `.<name>.old-<pid>`) whose process is gone; returns what was removed."""
    final_path = Path(final_path)
    removed = []
    if not final_path.parent.is_dir():
        return removed
    for entry in final_path.parent.iterdir():
        for marker in (f".{final_path.name}.tmp-", f".{final_path.name}.old-"):
            if entry.name.startswith(marker):
                pid = entry.name[len(marker) :].split("-", 1)[0]
                if pid.isdigit() and not _alive(int(pid)):
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(str(entry))
    return removed


def check_output_folder(path: str | os.PathLike) -> None:
    """Refuse an output folder that is a file, or lies under one, naming the file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file; give a folder to write into")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    f"output folder {str(path)!r} lies under {str(parent)!r}, which is a file; give a folder path"
                )
            return


@contextlib.contextmanager
def atomic_directory(final_path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `final_path`; rename it into place only if the block succeeds.

    A failure leaves nothing at `final_path` (or the previous content untouched), never a half-written folder.
    """
    if not str(final_path).strip():
        raise ValueError("the output folder is empty (''); give the folder to write into")
    final_path = Path(final_path)
    check_output_folder(final_path)
    if final_path.exists() and not overwrite and any(final_path.iterdir()):
        raise FileExistsError(f"{final_path} exists and is not empty; pass overwrite=True to replace it")
    final_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final_path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_path.name}.tmp-{os.getpid()}-", dir=final_path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the result follows the user's umask
    try:
        yield tmp
        if final_path.exists():
            old = final_path.with_name(f".{final_path.name}.old-{os.getpid()}")
            os.replace(final_path, old)
            os.replace(tmp, final_path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
