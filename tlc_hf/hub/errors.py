"""What went wrong talking to the Hub, in one line: `huggingface_hub`'s errors (several lines each, with URLs and
advice) and the HTTP client's transport errors, translated for a push or a pull."""

from __future__ import annotations

import importlib


def transport_errors() -> tuple[type[BaseException], ...]:
    """The errors of the HTTP client `huggingface_hub` uses (httpx2 or httpx) when no answer comes back."""
    found = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def hub_errors() -> tuple[type[BaseException], ...]:
    """Every error a Hub call can raise for a reason outside the caller's code."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    return (HfHubHTTPError, HFValidationError, OfflineModeIsEnabled, *transport_errors())


def hub_cause(err: BaseException) -> BaseException | None:
    """`err` or the first error of its `__cause__` chain that came from the Hub (the client wraps some, e.g. a
    failed LFS upload in a RuntimeError naming the file)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, hub_errors()):
            return err
        seen.add(id(err))
        err = err.__cause__
    return None


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def describe_hub_error(err: BaseException, repo_id: str) -> tuple[type[Exception], str]:
    """(exception class, one-line reason) for `err`, raised while talking to the Hub about `repo_id`."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(err, OfflineModeIsEnabled):
        return ConnectionError, "HF_HUB_OFFLINE is set, so the Hub is not contacted; unset it to push or pull"
    if isinstance(err, transport_errors()):
        return ConnectionError, f"cannot reach the Hub at {endpoint()} ({type(err).__name__}: {_first_line(err)})"
    if isinstance(err, HFValidationError):
        return ValueError, f"repo_id={repo_id!r} is not a Hub id: {_first_line(err)}"
    if isinstance(err, RevisionNotFoundError):
        return FileNotFoundError, f"{repo_id} has no such revision (branch, tag or commit) on {endpoint()}"
    if isinstance(err, RemoteEntryNotFoundError):
        return FileNotFoundError, f"{repo_id} on {endpoint()} has no file {_url_path(err)}"
    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, RepositoryNotFoundError) or status == 401:
        return PermissionError, (
            f"{repo_id} was not found on {endpoint()}, or it is private and the token may not read it "
            f"(HTTP {status}); check the id, or log in (`hf auth login`, HF_TOKEN, token=...)"
        )
    if status == 403:
        return PermissionError, (
            f"the token may not write to {repo_id} (HTTP 403: {_server_message(err)}); push to your own "
            "namespace or to an organization you can write to"
        )
    if isinstance(err, HfHubHTTPError):
        return ConnectionError, f"the Hub at {endpoint()} answered HTTP {status}: {_server_message(err)}"
    return type(err) if isinstance(err, Exception) else RuntimeError, _first_line(err)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _server_message(err: BaseException) -> str:
    return getattr(err, "server_message", None) or _first_line(err)


def _url_path(err: BaseException) -> str:
    url = str(getattr(getattr(err, "response", None), "url", ""))
    return url.split("/resolve/", 1)[-1].split("/", 1)[-1] if "/resolve/" in url else "(a file)"
