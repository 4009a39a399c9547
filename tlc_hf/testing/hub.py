"""A small Hub-compatible HTTP server for tests: the unmodified `huggingface_hub` and transformers clients push to
it and pull from it over real HTTP on 127.0.0.1, with repos stored on disk (standard library only).

What it reproduces of the Hub (as the installed clients call it; Xet storage off, so uploads take the LFS path):

- `POST /api/repos/create`: needs a token that may write to the namespace (403 otherwise; 409 with the repo's
  url if it exists);
  a new repo starts with one commit holding the Hub's default `.gitattributes`.
- `POST /api/validate-yaml`: the card's front matter must parse; `base_model` must be Hub ids (never a path);
  `model-index` must have a name and results with task type, dataset type/name and metrics with type and value.
- `POST /api/models/{id}/preupload/{rev}`: "lfs" for `.gitattributes` LFS patterns and binary files, else
  "regular"; the remote oid of a file already there (so unchanged files are not committed again).
- LFS: `POST /{id}.git/info/lfs/objects/batch` (no upload action for an object already stored), `PUT` of the
  content (its sha256 and size checked), `verify`.
- `POST /api/models/{id}/commit/{rev}` (NDJSON: header, file, lfsFile, deletedFile, deletedFolder): applied as
  one new commit or not at all; an `lfsFile` whose object was never uploaded fails the commit.
- `GET /api/models/{id}[/revision/{rev}]`, `/tree/{rev}[/{path}]`, `/refs`, `/commits/{rev}`, `/api/whoami-v2`.
- `HEAD`/`GET /{id}/resolve/{rev}/{path}`: `ETag`, `X-Repo-Commit`, `Content-Length`, and `X-Linked-Etag` /
  `X-Linked-Size` for LFS files; byte ranges.
- Errors as the Hub sends them (`X-Error-Code`): 404 `EntryNotFound` for a missing file of an existing repo,
  404 `RevisionNotFound`, `RepoNotFound` for a missing or private repo (401 without a token, 404 with one),
  401 for an unknown token, 403 for a repo of another owner.

Not reproduced: pull requests, branches other than those created by commits, Xet, datasets and spaces,
pagination (one page), gated repos.

Example:
    ```python
    with HubServer(tmp_path / "hub") as hub, hub.environment():
        push_compressed_to_hub("out/pruned", "org/tiny")
        model = AutoModelForSequenceClassification.from_pretrained("org/tiny")
    ```
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

TEST_TOKEN = "hf_tlc_test_token"
TEST_USER = "tlc-user"
TEST_ORGS = ("org",)
OTHER_TOKEN = "hf_tlc_other_token"
OTHER_USER = "someone-else"
_NAME = re.compile(r"^(?![.-])[A-Za-z0-9._-]{1,96}(?<![.-])$")
_LFS_PATTERNS = [
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.ftz",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.lfs.*",
    "*.mlmodel",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.rar",
    "*.safetensors",
    "saved_model/**/*",
    "*.tar.*",
    "*.tar",
    "*.tflite",
    "*.tgz",
    "*.wasm",
    "*.xz",
    "*.zip",
    "*.zst",
    "*tfevents*",
]
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in _LFS_PATTERNS).encode()
_PIPELINE_TAGS = {
    "text-classification",
    "fill-mask",
    "text2text-generation",
    "text-generation",
    "token-classification",
    "question-answering",
    "feature-extraction",
    "sentence-similarity",
    "summarization",
    "translation",
    "zero-shot-classification",
}
_STEPS = ("create", "validate-yaml", "preupload", "lfs-batch", "lfs-upload", "commit", "info", "resolve")


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, **body):
        super().__init__(message)
        self.status, self.code, self.headers, self.body = status, code, headers or {}, body


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def check_card_metadata(content: str) -> tuple[list[str], list[str]]:
    """The errors and warnings the test Hub's validate-yaml gives for a README's front matter."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
    if match is None:
        return [], ["Empty or missing yaml metadata in repo card"]
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        return [f"Error parsing YAML metadata: {' '.join(str(err).split())}"], []
    if not isinstance(meta, dict):
        return ["YAML metadata must be a mapping"], []
    errors = []
    for key in ("base_model", "tags", "datasets"):
        value = meta.get(key)
        values = [value] if isinstance(value, str) else value
        if value is not None and not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
            errors.append(f'"{key}" must be a string or a list of strings')
        elif key == "base_model" and value is not None:
            errors += [f'"base_model" {v!r} is not a Hub model id' for v in values if not is_hub_repo_id(v)]
    if meta.get("pipeline_tag") is not None and meta["pipeline_tag"] not in _PIPELINE_TAGS:
        errors.append(f'"pipeline_tag" {meta["pipeline_tag"]!r} is not a known pipeline tag')
    for i, entry in enumerate(meta.get("model-index") or []):
        where = f"model-index[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            errors.append(f'"{where}.name" is required')
            continue
        for j, result in enumerate(entry.get("results") or []):
            at = f"{where}.results[{j}]"
            if not isinstance((result.get("task") or {}).get("type"), str):
                errors.append(f'"{at}.task.type" is required')
            dataset = result.get("dataset") or {}
            if not (isinstance(dataset.get("type"), str) and isinstance(dataset.get("name"), str)):
                errors.append(f'"{at}.dataset" needs a type and a name')
            metrics = result.get("metrics")
            if not metrics or any(not isinstance(m.get("type"), str) or "value" not in m for m in metrics):
                errors.append(f'"{at}.metrics" needs a list of {{type, value}}')
        if not isinstance(entry.get("results"), list):
            errors.append(f'"{where}.results" must be a list (may be empty)')
    return errors, []


def is_hub_repo_id(name: str) -> bool:
    """`name` looks like a Hub model id ("org/name", or a legacy canonical "name"), not a path."""
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(_NAME.match(p) and "--" not in p and ".." not in p for p in parts)


class Repo:
    """One repo on disk: `repo.json` (visibility, refs, commits with their trees); file contents in the store."""

    def __init__(self, path: str):
        self.path = path

    def load(self) -> dict:
        with open(self.path) as f:
            return json.load(f)

    def save(self, state: dict) -> None:
        tmp = f"{self.path}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)  # a commit is visible entirely or not at all


class HubServer:
    """A Hub-compatible server on 127.0.0.1 (a free port), repos under `root`. Use as a context manager.

    Args:
        root: the folder holding the repos and the object store.
        tokens: token -> user; each user may write to its own namespace and to `orgs[user]`.
        orgs: user -> organizations.

    Test helpers: `fail(step, status)` makes the next request of that step fail (`create`, `validate-yaml`,
    `preupload`, `lfs-batch`, `lfs-upload`, `commit`, `info`, `resolve`); `commits(repo_id)` lists commit ids,
    newest first; `files(repo_id, revision)` maps path -> bytes; `requests` logs (method, path, status).
    """

    def __init__(self, root, tokens: dict | None = None, orgs: dict | None = None):
        self.root = str(root)
        self.tokens = tokens or {TEST_TOKEN: TEST_USER, OTHER_TOKEN: OTHER_USER}
        self.orgs = orgs or {TEST_USER: TEST_ORGS}
        self.requests: list[tuple[str, str, int]] = []
        self._failures: dict[str, list[int]] = {}
        self._lock = threading.RLock()
        os.makedirs(os.path.join(self.root, "objects"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "repos"), exist_ok=True)
        self._httpd = None
        self._thread = None

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> HubServer:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name="tlc-hub-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @contextlib.contextmanager
    def environment(self, token: str | None = TEST_TOKEN, cache_dir=None):
        """Point `huggingface_hub` and transformers at this server (online, Xet off, `token` as HF_TOKEN, a
        fresh download cache), and restore everything afterwards."""
        with hub_client_environment(self.url, token=token, cache_dir=cache_dir or os.path.join(self.root, "cache")):
            yield self

    # ---- test helpers -------------------------------------------------------------------------------
    def push(self, folder, repo_id: str, **kwargs) -> str:
        """`push_compressed_to_hub(folder, repo_id)` to this server (inside `environment()`)."""
        from ..hub.push import push_compressed_to_hub

        return push_compressed_to_hub(folder, repo_id, **kwargs)

    def fail(self, step: str, status: int = 500, times: int = 1) -> None:
        if step not in _STEPS:
            raise ValueError(f"step={step!r} is not known; choose one of {_STEPS}")
        with self._lock:
            self._failures.setdefault(step, []).extend([status] * times)

    def commits(self, repo_id: str) -> list[str]:
        state = self._repo(repo_id).load()
        oid, out = state["refs"]["main"], []
        while oid is not None:
            out.append(oid)
            oid = state["commits"][oid]["parent"]
        return out

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        state = self._repo(repo_id).load()
        tree = state["commits"][self._resolve(state, revision)]["tree"]
        return {path: self._read(entry["sha256"]) for path, entry in tree.items()}

    def create_repo(self, repo_id: str, user: str, private: bool = False) -> None:
        namespace, name = repo_id.split("/")
        with self._lock:
            path = os.path.join(self.root, "repos", namespace, f"{name}.json")
            if os.path.exists(path):
                raise HubError(409, "You already created this model repo", url=f"{self.url}/{repo_id}")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            sha = self._store(GITATTRIBUTES)
            state = {"private": private, "owner": namespace, "created": _now(), "refs": {"main": None}, "commits": {}}
            entry = {"sha256": sha, "size": len(GITATTRIBUTES), "lfs": False, "oid": git_blob_oid(GITATTRIBUTES)}
            self._add_commit(state, "main", {".gitattributes": entry}, "initial commit", user)
            Repo(path).save(state)

    # ---- storage ------------------------------------------------------------------------------------
    def _repo(self, repo_id: str) -> Repo:
        parts = repo_id.split("/")
        path = os.path.join(self.root, "repos", *parts[:-1], f"{parts[-1]}.json")
        if len(parts) != 2 or not os.path.isfile(path):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return Repo(path)

    def _object(self, sha256: str) -> str:
        return os.path.join(self.root, "objects", sha256)

    def _store(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not os.path.exists(self._object(sha)):
            tmp = f"{self._object(sha)}.{threading.get_ident()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self._object(sha))
        return sha

    def _read(self, sha256: str) -> bytes:
        with open(self._object(sha256), "rb") as f:
            return f.read()

    @staticmethod
    def _resolve(state: dict, revision: str) -> str:
        if revision in state["refs"]:
            return state["refs"][revision]
        if revision in state["commits"]:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    @staticmethod
    def _add_commit(state: dict, branch: str, tree: dict, message: str, user: str) -> str:
        parent = state["refs"].get(branch)
        seed = json.dumps([parent, tree, message, time.time_ns(), len(state["commits"])], sort_keys=True)
        oid = hashlib.sha1(seed.encode()).hexdigest()
        state["commits"][oid] = {"parent": parent, "tree": tree, "message": message, "date": _now(), "author": user}
        state["refs"][branch] = oid
        return oid


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class _Handler(BaseHTTPRequestHandler):
    server_hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the requests are in `hub.requests`
        pass

    # ---- plumbing -----------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body=b"", headers: dict | None = None, head: bool = False) -> None:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.server_hub.requests.append((self.command, self.path, status))

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        user = self.server_hub.tokens.get(auth.removeprefix("Bearer ").strip())
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _may_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (namespace == user or namespace in self.server_hub.orgs.get(user, ()))

    def _readable(self, repo_id: str, user: str | None) -> tuple[Repo, dict]:
        hub = self.server_hub
        try:
            repo = hub._repo(repo_id)
            state = repo.load()
        except HubError:
            state = None
        if state is None or (state["private"] and not self._may_write(user, repo_id.split("/")[0])):
            # the Hub does not tell a private repo from a missing one
            raise HubError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        return repo, state

    def _writable(self, repo_id: str, user: str | None) -> tuple[Repo, dict]:
        if user is None:
            raise HubError(401, "You must be authenticated to write to a repo", "RepoNotFound")
        repo, state = self._readable(repo_id, user)
        if not self._may_write(user, repo_id.split("/")[0]):
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo, state

    def _maybe_fail(self, step: str) -> None:
        with self.server_hub._lock:
            queued = self.server_hub._failures.get(step)
            status = queued.pop(0) if queued else None
        if status is not None:
            raise HubError(status, f"injected failure of {step}")

    def _dispatch(self, method: str) -> None:
        parsed = urlsplit(self.path)
        parts = [unquote(p) for p in parsed.path.split("/") if p != ""]
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        try:
            user = self._user()
            route = _route(method, parts)
            if route is None:
                raise HubError(404, f"no route for {method} {parsed.path}")
            handler, args = route
            handler(self, user, query, *args)
        except HubError as err:
            headers = {"X-Error-Message": str(err), **err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
            self._send(err.status, {"error": str(err), **err.body}, headers, head=method == "HEAD")

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    # ---- endpoints ----------------------------------------------------------------------------------
    def create(self, user, query):
        payload = json.loads(self._body() or b"{}")
        self._maybe_fail("create")
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        namespace, name = payload.get("organization") or user, payload.get("name") or ""
        if payload.get("type", "model") != "model":
            raise HubError(400, "this test Hub holds model repos only")
        if not is_hub_repo_id(f"{namespace}/{name}"):
            raise HubError(400, f"Invalid repo name {namespace}/{name!r}")
        if not self._may_write(user, namespace):
            raise HubError(403, f"You don't have the rights to create a model under the namespace {namespace!r}")
        repo_id = f"{namespace}/{name}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        self.server_hub.create_repo(repo_id, user, private=private)
        self._send(200, {"url": f"{self.server_hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def validate_yaml(self, user, query):
        payload = json.loads(self._body() or b"{}")
        self._maybe_fail("validate-yaml")
        errors, warnings = check_card_metadata(payload.get("content", ""))
        body = {"errors": [{"message": m} for m in errors], "warnings": [{"message": m} for m in warnings]}
        self._send(400 if errors else 200, body)

    def whoami(self, user, query):
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        orgs = [{"name": o, "type": "org"} for o in self.server_hub.orgs.get(user, ())]
        self._send(200, {"type": "user", "name": user, "orgs": orgs, "auth": {"accessToken": {"role": "write"}}})

    def info(self, user, query, repo_id, revision="main"):
        self._maybe_fail("info")
        _, state = self._readable(repo_id, user)
        sha = self.server_hub._resolve(state, revision)
        tree = state["commits"][sha]["tree"]
        card = {}
        if "README.md" in tree:
            text = self.server_hub._read(tree["README.md"]["sha256"]).decode()
            match = re.match(r"^---\s*\n(.*?)\n---", text, re.S)
            card = (yaml.safe_load(match.group(1)) if match else None) or {}
        siblings = [{"rfilename": path} for path in sorted(tree)]
        self._send(
            200,
            {
                "_id": repo_id,
                "id": repo_id,
                "modelId": repo_id,
                "author": repo_id.split("/")[0],
                "sha": sha,
                "lastModified": state["commits"][sha]["date"],
                "createdAt": state["created"],
                "private": state["private"],
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": card.get("tags") or [],
                "pipeline_tag": card.get("pipeline_tag"),
                "library_name": card.get("library_name"),
                "cardData": card or None,
                "siblings": siblings,
            },
        )

    def tree(self, user, query, repo_id, revision, path=""):
        _, state = self._readable(repo_id, user)
        files = state["commits"][self.server_hub._resolve(state, revision)]["tree"]
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in files):
            raise HubError(404, f"{path} does not exist", "EntryNotFound")
        recursive = query.get("recursive", "false").lower() in ("1", "true")
        entries, folders = [], set()
        for name in sorted(files):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            for i in range(rest.count("/")):
                folders.add(prefix + "/".join(rest.split("/")[: i + 1]))
            entries.append(_tree_entry(name, files[name]))
        entries += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()} for f in folders]
        self._send(200, sorted(entries, key=lambda e: e["path"]))

    def refs(self, user, query, repo_id):
        _, state = self._readable(repo_id, user)
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid} for name, oid in state["refs"].items()
        ]
        self._send(200, {"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def commits_list(self, user, query, repo_id, revision):
        _, state = self._readable(repo_id, user)
        oid, out = self.server_hub._resolve(state, revision), []
        while oid is not None:
            commit = state["commits"][oid]
            title = commit["message"]
            out.append({"id": oid, "authors": [{"user": commit["author"]}], "date": commit["date"], "title": title})
            out[-1]["message"] = ""
            oid = commit["parent"]
        self._send(200, out)

    def preupload(self, user, query, repo_id, revision):
        payload = json.loads(self._body() or b"{}")
        self._maybe_fail("preupload")
        _, state = self._writable(repo_id, user)
        tree = state["commits"][self.server_hub._resolve(state, revision)]["tree"]
        patterns = _lfs_patterns(self.server_hub, tree, payload.get("gitIgnore"))
        files = []
        for f in payload.get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            lfs = b"\0" in sample or f.get("size", 0) >= 10 * 2**20 or _matches(f["path"], patterns)
            remote = tree.get(f["path"])
            oid = None if remote is None else (remote["sha256"] if remote["lfs"] else remote["oid"])
            files.append(
                {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        self._send(200, {"files": files, "commitOid": state["refs"]["main"]})

    def lfs_batch(self, user, query, repo_id):
        payload = json.loads(self._body() or b"{}")
        self._maybe_fail("lfs-batch")
        self._writable(repo_id, user)
        if payload.get("operation") != "upload":
            raise HubError(400, "this test Hub takes LFS uploads only (downloads go through /resolve)")
        objects = []
        for obj in payload.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if not os.path.exists(self.server_hub._object(obj["oid"])):
                href = f"{self.server_hub.url}/lfs-upload/{repo_id}/{obj['oid']}"
                entry["actions"] = {"upload": {"href": href, "header": {}}, "verify": {"href": href + "/verify"}}
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def lfs_upload(self, user, query, repo_id, oid):
        data = self._body()
        self._maybe_fail("lfs-upload")
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"the uploaded content does not hash to {oid}")
        self.server_hub._store(data)
        self._send(200, b"", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

    def lfs_verify(self, user, query, repo_id, oid):
        payload = json.loads(self._body() or b"{}")
        path = self.server_hub._object(oid)
        if not os.path.exists(path) or os.path.getsize(path) != payload.get("size"):
            raise HubError(404, f"LFS object {oid} was not uploaded")
        self._send(200, {"success": True})

    def commit(self, user, query, repo_id, revision):
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        self._maybe_fail("commit")
        hub = self.server_hub
        if query.get("create_pr"):
            raise HubError(400, "this test Hub does not open pull requests")
        with hub._lock:
            repo, state = self._writable(repo_id, user)
            head = hub._resolve(state, revision) if revision in state["refs"] else None
            if head is None:
                raise HubError(404, f"Invalid rev id: {revision} (commits go to a branch)", "RevisionNotFound")
            header = next((item["value"] for item in lines if item.get("key") == "header"), None)
            if header is None or not header.get("summary"):
                raise HubError(400, "the commit has no header with a summary")
            if header.get("parentCommit") not in (None, head):
                raise HubError(412, f"parentCommit {header['parentCommit']} is not the head of {revision}")
            tree = dict(state["commits"][head]["tree"])
            for item in lines:
                key, value = item.get("key"), item.get("value") or {}
                if key == "file":
                    data = base64.b64decode(value["content"])
                    tree[value["path"]] = {
                        "sha256": hub._store(data),
                        "size": len(data),
                        "lfs": False,
                        "oid": git_blob_oid(data),
                    }
                elif key == "lfsFile":
                    sha, path = value["oid"], hub._object(value["oid"])
                    if not os.path.exists(path):
                        raise HubError(422, f"LFS object {sha} for {value['path']} was never uploaded")
                    size = os.path.getsize(path)
                    pointer = _lfs_pointer(sha, size)
                    tree[value["path"]] = {"sha256": sha, "size": size, "lfs": True, "oid": git_blob_oid(pointer)}
                elif key == "deletedFile":
                    if tree.pop(value["path"], None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    tree = {p: e for p, e in tree.items() if not p.startswith(prefix)}
                elif key != "header":
                    raise HubError(400, f"unknown commit operation {key!r}")
            oid = hub._add_commit(state, revision, tree, header["summary"], user)
            repo.save(state)
        self._send(200, {"success": True, "commitOid": oid, "commitUrl": f"{hub.url}/{repo_id}/commit/{oid}"})

    def resolve(self, user, query, repo_id, revision, path):
        head = self.command == "HEAD"
        self._maybe_fail("resolve")
        _, state = self._readable(repo_id, user)
        sha = self.server_hub._resolve(state, revision)
        entry = state["commits"][sha]["tree"].get(path)
        if entry is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
        etag = entry["sha256"] if entry["lfs"] else entry["oid"]
        headers = {"ETag": f'"{etag}"', "X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if entry["lfs"]:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": entry["size"]})
        data = self.server_hub._read(entry["sha256"])
        status, ranged = 200, re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        if ranged:
            start, end = int(ranged.group(1)), int(ranged.group(2) or len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        headers["Content-Length"] = len(data)
        self._send(status, data, {"Content-Type": "application/octet-stream", **headers}, head=head)


def _tree_entry(path: str, entry: dict) -> dict:
    out = {"type": "file", "path": path, "size": entry["size"], "oid": entry["oid"]}
    if entry["lfs"]:
        pointer = _lfs_pointer(entry["sha256"], entry["size"])
        out["lfs"] = {"oid": entry["sha256"], "size": entry["size"], "pointerSize": len(pointer)}
    return out


def _lfs_patterns(hub: HubServer, tree: dict, override: str | None) -> list[str]:
    if ".gitattributes" not in tree:
        return []
    text = hub._read(tree[".gitattributes"]["sha256"]).decode()
    return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line]


def _matches(path: str, patterns: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns)


def _route(method: str, parts: list[str]):
    """(handler, args) for a request path split on "/"; None when no endpoint matches."""
    h = _Handler
    if parts[:2] == ["api", "repos"] and parts[2:] == ["create"] and method == "POST":
        return h.create, ()
    if parts == ["api", "validate-yaml"] and method == "POST":
        return h.validate_yaml, ()
    if parts == ["api", "whoami-v2"] and method == "GET":
        return h.whoami, ()
    if parts[:2] == ["api", "models"] and len(parts) >= 4:
        repo_id, rest = "/".join(parts[2:4]), parts[4:]
        if not rest and method == "GET":
            return h.info, (repo_id,)
        if len(rest) == 2 and rest[0] == "revision" and method == "GET":
            return h.info, (repo_id, rest[1])
        if len(rest) >= 2 and rest[0] == "tree" and method == "GET":
            return h.tree, (repo_id, rest[1], "/".join(rest[2:]))
        if rest == ["refs"] and method == "GET":
            return h.refs, (repo_id,)
        if len(rest) == 2 and rest[0] == "commits" and method == "GET":
            return h.commits_list, (repo_id, rest[1])
        if len(rest) == 2 and rest[0] == "preupload" and method == "POST":
            return h.preupload, (repo_id, rest[1])
        if len(rest) == 2 and rest[0] == "commit" and method == "POST":
            return h.commit, (repo_id, rest[1])
        return None
    if len(parts) == 6 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
        return (h.lfs_batch, (f"{parts[0]}/{parts[1][:-4]}",)) if method == "POST" else None
    if parts[:1] == ["lfs-upload"] and len(parts) in (4, 5):
        repo_id = "/".join(parts[1:3])
        if len(parts) == 4 and method == "PUT":
            return h.lfs_upload, (repo_id, parts[3])
        if len(parts) == 5 and parts[4] == "verify" and method == "POST":
            return h.lfs_verify, (repo_id, parts[3])
        return None
    if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
        return h.resolve, ("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
    return None


@contextlib.contextmanager
def hub_client_environment(endpoint: str, token: str | None = TEST_TOKEN, cache_dir=None):
    """Point the installed `huggingface_hub` and transformers at `endpoint`: online (tests run with
    HF_HUB_OFFLINE=1), Xet off, no telemetry, `token` as HF_TOKEN (None: no token at all), `cache_dir` as the
    download cache. Their module-level settings are read once at import, so they are patched here and restored
    on exit, with the environment variables."""
    from huggingface_hub import constants
    from huggingface_hub import hf_api as hf_api_module

    patched_env = {
        "HF_ENDPOINT": endpoint,
        "HF_HUB_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_TOKEN": token,
        "HF_HUB_CACHE": None if cache_dir is None else str(cache_dir),
    }
    patched_constants = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        # never a stored login of the machine's user: the token is `token` or none
        "HF_TOKEN_PATH": os.path.join(str(cache_dir or "."), "no-stored-token"),
    }
    if cache_dir is not None:
        patched_constants["HF_HUB_CACHE"] = str(cache_dir)
    saved_env = {key: os.environ.get(key) for key in patched_env}
    saved_constants = {key: getattr(constants, key) for key in patched_constants}
    saved_api_endpoint = hf_api_module.api.endpoint

    def apply(env: dict, values: dict, api_endpoint: str) -> None:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for key, value in values.items():
            setattr(constants, key, value)
        hf_api_module.api.endpoint = api_endpoint
        _reset_client_caches()

    try:
        apply(patched_env, patched_constants, endpoint)
        yield
    finally:
        apply(saved_env, saved_constants, saved_api_endpoint)


def _reset_client_caches() -> None:
    """transformers keeps one HfApi (with the endpoint of its first use); the HTTP session keeps connections."""
    import transformers.utils.hub as transformers_hub
    from huggingface_hub import close_session

    transformers_hub._hf_api = None
    close_session()
