"""The progress-bar rule: in a file or CI log a bar writes at most one line every ~10 s (live only in a terminal)."""

import re
import subprocess
import sys
import textwrap

# A sweep (its one bar over all runs) then a BudgetTrainer (the budget bar; evaluations every second, whose
# bar is nested in training), through the Python API, so no CLI setting helps: stderr goes to a file.
SCRIPT = textwrap.dedent(
    """
    import time
    from tlc_hf import BudgetTrainer, BudgetTrainingArguments, run_sweep
    from tlc_hf.testing import tiny_model, toy_dataset

    start = time.monotonic()
    run_sweep("1x32,2x32", output_dir=out + "/sweep", budget="12s", head_dim=16, vocab_size=300, block_size=32, max_examples=400)
    args = BudgetTrainingArguments(
        output_dir=out + "/budget", time_budget="12s", eval_every="1s", eval_strategy="steps", eval_steps=10**6,
        per_device_train_batch_size=4, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=False,
        logging_strategy="no",
    )
    BudgetTrainer(
        model=tiny_model("bert", "classification"), args=args, train_dataset=toy_dataset("bert", 64),
        eval_dataset=toy_dataset("bert", 256),
    ).train()
    print(f"seconds {time.monotonic() - start:.1f}")
    """
)


def _redraws(text: str, desc: str) -> int:
    """Lines or carriage-return redraws of the bar whose description is `desc`."""
    return sum(1 for part in re.split(r"[\r\n]", text) if part.startswith(f"{desc}:"))


def test_bars_in_a_file_redraw_at_most_every_ten_seconds(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as stderr:
        result = subprocess.run(
            [sys.executable, "-c", f"out = {str(tmp_path)!r}\n" + SCRIPT],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=300,
        )
    text = log.read_text()
    assert result.returncode == 0, text[-3000:]
    seconds = float(result.stdout.split("seconds ")[-1])
    sweep, budget = _redraws(text, "sweep"), _redraws(text, "budget")
    # the first draw, one every 10 s, the last: the sweep ran ~24 s, the budget ~12 s
    assert 2 <= sweep <= 24 / 10 + 3, (sweep, seconds)
    assert 2 <= budget <= 12 / 10 + 3, (budget, seconds)
    assert not re.search(r"\r?\s*\d+%\|.*\| \d+/256", text)  # no evaluation bar inside training
    assert len(text) < 20_000, len(text)
