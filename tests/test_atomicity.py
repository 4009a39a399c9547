"""kill -9 / SIGTERM at random points of `tlc-hf train` and `tlc-hf compress`: never a half-written final
folder, and the next run on the same output removes what a killed run left behind."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

TRAIN = [
    "train", "--config", "bert-tiny", "--task", "mlm", "--max_examples", "200", "--vocab_size", "300",
    "--block_size", "32", "--per_device_train_batch_size", "8", "--report_to", "none", "--use_cpu", "true",
    "--time_budget", "1s", "--save_strategy", "steps", "--save_steps", "5",
]  # fmt: skip


def _env(cache):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TLC_HF_CACHE": str(cache)}


def _cli(argv, env, kill_after=None, sig=signal.SIGKILL):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tlc_hf.cli", *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if kill_after is None:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        return proc.returncode
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(sig)
    proc.communicate(timeout=120)
    return proc.returncode


def _final_model_is_whole(out) -> bool:
    """No root config.json: no final model (the previous state). With one: everything loads."""
    if not (out / "config.json").exists():
        return True
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    AutoModelForMaskedLM.from_pretrained(out)
    AutoTokenizer.from_pretrained(out)
    return json.loads((out / "config.json").read_text())["model_type"] == "bert"


def _temporaries(folder):
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def _kill_runs(tmp_path, tries, seed):
    rng = random.Random(seed)
    env = _env(tmp_path / "cache")
    reference = tmp_path / "reference"
    start = time.monotonic()
    _cli([*TRAIN, "--output_dir", str(reference)], env)  # builds the cached tokenizer; times a whole run
    whole = time.monotonic() - start
    base = reference
    for attempt in range(tries):
        out = tmp_path / f"train{attempt}"
        sig = signal.SIGKILL if attempt % 2 == 0 else signal.SIGTERM
        _cli([*TRAIN, "--output_dir", str(out)], env, kill_after=rng.uniform(0.3, 1.1) * whole, sig=sig)
        assert _final_model_is_whole(out), f"try {attempt}: half-written final model in {out}"
        last = attempt == tries - 1
        if _temporaries(out) or last:  # the next run on the same output cleans up and completes
            _cli([*TRAIN, "--output_dir", str(out), "--overwrite_output_dir", "true"], env)
            assert _final_model_is_whole(out) and (out / "config.json").exists()
            assert _temporaries(out) == [], _temporaries(out)
        compressed = tmp_path / f"compressed{attempt}"
        argv = ["compress", str(base), "--output_dir", str(compressed), "--prune_magnitude", "0.5"]
        _cli(argv, env, kill_after=rng.uniform(0.5, 1.0) * whole)
        assert not compressed.exists() or (compressed / "config.json").exists()  # renamed in whole, or absent
        if _temporaries(tmp_path) or last:
            _cli([*argv, "--overwrite"], env)
            assert (compressed / "model.safetensors").exists()
            assert not [t for t in _temporaries(tmp_path) if t.startswith(f".{compressed.name}.")]


def test_killed_runs_never_leave_a_broken_folder(tmp_path):
    _kill_runs(tmp_path, tries=5, seed=0)


@pytest.mark.slow
def test_killed_runs_never_leave_a_broken_folder_twenty_times(tmp_path):
    _kill_runs(tmp_path, tries=20, seed=1)


def test_output_folders_follow_the_umask(tmp_path):
    from tlc_hf.data.cache import atomic_directory

    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "out") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
