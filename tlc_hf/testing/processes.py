"""Several CPU processes for multi-rank tests: torchrun / `accelerate launch` over gloo, with this tlc_hf first on
the workers' path and a failing rank's output in the assertion."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout whose tlc_hf is imported: workers import the same


def free_port() -> int:
    """A TCP port free on this machine now (for a process group's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rank_env(**extra: str) -> dict:
    """The environment for worker processes: one thread per rank (2 ranks share the cores), unbuffered output,
    this tlc_hf first on the path, no GPU, plus `extra`."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def run_checked(command: list, *, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `command` (with `rank_env()` by default); raise AssertionError with the end of its output if it fails.

    Example:
        ```python
        run_checked([sys.executable, "worker.py", str(out)])
        ```
    """
    run = subprocess.run(
        [str(part) for part in command], env=env or rank_env(), capture_output=True, text=True, timeout=timeout
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    return run


def torchrun_command(nproc: int = 2, port: int | None = None) -> list[str]:
    """`python -m torch.distributed.run` for `nproc` local processes (gloo on CPU), on `port` or a free one."""
    port = port or free_port()
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(port)]


def launch_ranks(
    script, *args, nproc: int = 2, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run `script args...` on `nproc` ranks with torchrun; fail with the output's end if any rank fails.

    Example:
        ```python
        launch_ranks(Path("tests/scripts/sharded_worker.py"), out)  # each rank writes its results into out
        ```
    """
    return run_checked([*torchrun_command(nproc), script, *args], env=env, timeout=timeout)


def accelerate_launch_command(num_processes: int = 2, port: int = 29500) -> list[str]:
    """`accelerate launch` for several CPU processes (gloo). `--multi_gpu` goes through torchrun; in
    accelerate 1.15 `--cpu --num_processes N` without an MPI host file starts a single process."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
    ]
