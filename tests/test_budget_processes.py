"""Budget runs in real processes: SIGTERM preemption and resume, two ranks under `accelerate launch`."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tlc_hf.testing import accelerate_launch_command

WORKER = Path(__file__).parent / "scripts" / "budget_worker.py"


def _env():
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _result(out, rank=0):
    return json.loads((out / f"result-{rank}.json").read_text())


def test_sigterm_leaves_a_checkpoint_and_resume_spends_only_the_rest(tmp_path):
    out, ready = tmp_path / "out", tmp_path / "ready"
    out.mkdir()
    budget = 8.0
    cmd = [sys.executable, str(WORKER), "--output_dir", str(out), "--budget", f"{budget}s"]
    proc = subprocess.Popen(
        [*cmd, "--ready_file", str(ready)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the worker never started training"
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 0, log[-3000:]

    first = _result(out)
    assert first["preempted"] and first["elapsed_s"] < budget
    checkpoints = [p for p in out.iterdir() if p.name.startswith("checkpoint-")]
    assert [p.name for p in checkpoints] == [f"checkpoint-{first['global_step']}"]
    state = json.loads((checkpoints[0] / "trainer_state.json").read_text())
    assert state["global_step"] == first["global_step"]
    assert (checkpoints[0] / "model.safetensors").exists() and (checkpoints[0] / "optimizer.pt").exists()

    resumed = subprocess.run([*cmd, "--resume"], env=_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    second = _result(out)
    remaining = budget - first["elapsed_s"]
    assert not second["preempted"] and second["global_step"] > first["global_step"]
    assert budget - 1.0 <= second["elapsed_s"] <= budget * 1.03
    # the resumed train() ran for what was left of the budget (less a step or two), not a new budget
    assert remaining - 1.0 <= second["train_call_s"] <= remaining + 0.5, (remaining, second["train_call_s"])


def test_two_ranks_stop_on_the_same_step_with_the_same_lr(tmp_path):
    """`accelerate launch` with 2 CPU processes (gloo); rank 1 is three times slower per step."""
    out = tmp_path / "out"
    out.mkdir()
    cmd = [
        *accelerate_launch_command(2, port=29517),
        str(WORKER),
        "--output_dir",
        str(out),
        "--budget",
        "3s",
        "--slow_rank",
        "1",
    ]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    rank0, rank1 = _result(out, 0), _result(out, 1)
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["global_step"] == rank1["global_step"] > 0
    assert rank0["steps"] == rank1["steps"]  # the same LR and progress at every step
    assert rank0["final_lr"] == rank1["final_lr"]
    assert rank0["weights_sum"] == pytest.approx(rank1["weights_sum"], rel=0, abs=1e-9)
    # deadline mode: both ranks keep the slowest rank's step estimate (the reserve travels with the clock)
    assert rank0["elapsed_s"] == rank1["elapsed_s"]
    assert 2.0 <= rank0["elapsed_s"] <= 3.0 * 1.05
