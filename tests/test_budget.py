"""Wall-clock budget: fake-clock tests (patched clock, no sleeping) and a few real-time ones."""

import json
import math
import os
import time

import pytest
import torch
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments

from tlc_hf import (
    BudgetTrainer,
    BudgetTrainingArguments,
    WallClockBudgetCallback,
    find_resumable_checkpoint,
    parse_duration,
    time_lr_lambda,
)
from tlc_hf.budget import clock as clock_module
from tlc_hf.testing import tiny_model, toy_dataset

BASE_LR = 1e-3


class FakeTime:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def fake_time(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "monotonic", fake)
    return fake


class Tick(TrainerCallback):
    """Each optimizer step costs `per_step` fake seconds; each evaluation `per_eval`."""

    def __init__(self, fake, per_step=1.0, per_eval=0.0):
        self.fake, self.per_step, self.per_eval = fake, per_step, per_eval
        self.steps = 0
        self.lr_at_step = {}

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        self.lr_at_step[state.global_step] = optimizer.param_groups[0]["lr"]
        self.fake.now += self.per_step
        self.steps += 1

    def on_evaluate(self, args, state, control, **kwargs):
        self.fake.now += self.per_eval


def toy_data(n=64):
    return toy_dataset("bert", n)


def budget_trainer(tmp_path, callbacks=(), trainer_cls=BudgetTrainer, eval_data=None, **arg_overrides):
    """A BudgetTrainer on fake time. Stop-at-budget mode unless a test asks for the deadline: these tests
    are about schedules, logs and resume, and exact step counts read more easily there."""
    kwargs = dict(
        time_deadline=False,
        output_dir=str(tmp_path / "out"),
        time_budget="10s",
        per_device_train_batch_size=4,
        learning_rate=BASE_LR,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        logging_steps=1,
    )
    kwargs.update(arg_overrides)
    args = BudgetTrainingArguments(**kwargs)
    return trainer_cls(
        model=tiny_model("bert", "classification"),
        args=args,
        train_dataset=toy_data(),
        eval_dataset=eval_data,
        callbacks=list(callbacks),
    )


# ---- parsing and schedules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, seconds",
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90s", 90.0),
        ("45m", 2700.0),
        ("2h30m", 9000.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        ("3600", 3600.0),
        ("01:30:00", 5400.0),
        ("1d2h3m4s", 93784.0),
    ],
)
def test_parse_duration_forms(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [0, -5, "0s", "abc", "2x", "30m2h", "1h1h", "", "1:75", float("inf")])
def test_parse_duration_rejects_with_the_allowed_forms(value):
    with pytest.raises(ValueError, match=r"budget=.*(expected|must be)") as err:
        parse_duration(value)
    assert repr(value) in str(err.value)


def test_parse_duration_type_error():
    with pytest.raises(TypeError, match="budget=None"):
        parse_duration(None)


@pytest.mark.parametrize(
    "schedule, warmup, formula",
    [
        ("linear", 0.2, lambda p: p / 0.2 if p < 0.2 else 1 - (p - 0.2) / 0.8),
        ("cosine", 0.2, lambda p: p / 0.2 if p < 0.2 else 0.5 * (1 + math.cos(math.pi * (p - 0.2) / 0.8))),
        ("constant", 0.2, lambda p: p / 0.2 if p < 0.2 else 1.0),
        ("triangle", 0.0, lambda p: p / 0.5 if p < 0.5 else 1 - (p - 0.5) / 0.5),
    ],
)
def test_lr_follows_each_schedule_formula_in_training(tmp_path, fake_time, schedule, warmup, formula):
    tick = Tick(fake_time)
    trainer = budget_trainer(tmp_path, [tick], time_lr_schedule=schedule, time_warmup_ratio=warmup)
    trainer.train()
    assert trainer.state.global_step == 10
    # The LR of step k+1 is set right after step k, when p = k seconds / 10 seconds.
    for k in (0, 1, 3, 5, 8, 9):
        assert tick.lr_at_step[k] == pytest.approx(BASE_LR * formula(k / 10), abs=1e-12), (schedule, k)


def test_schedule_bad_names():
    with pytest.raises(ValueError, match="time_lr_schedule='poly'.*'linear', 'cosine', 'constant', 'triangle'"):
        time_lr_lambda("poly")
    with pytest.raises(ValueError, match="time_warmup_ratio=1.5"):
        time_lr_lambda("linear", 1.5)


# ---- stopping, logging, intervals -----------------------------------------------------------------


@pytest.mark.parametrize("per_step, expected_steps", [(1.0, 10), (1.5, 7), (3.0, 4)])
def test_without_deadline_stops_on_the_first_step_after_the_budget(tmp_path, fake_time, per_step, expected_steps):
    trainer = budget_trainer(tmp_path, [Tick(fake_time, per_step)], time_deadline=False)
    trainer.train()
    assert trainer.state.global_step == expected_steps
    assert trainer.budget_callback.elapsed_s == pytest.approx(expected_steps * per_step)
    assert trainer.budget_callback.ended_by == "time_budget"


@pytest.mark.parametrize("per_step, expected_steps", [(1.0, 9), (1.5, 6), (3.0, 3)])
def test_deadline_stops_before_a_step_that_would_overrun(tmp_path, fake_time, per_step, expected_steps):
    """The step estimate is the slowest recent step: stop when one more (plus a margin of min(step, 2% of
    the budget) for the end of train()) would end past the budget."""
    trainer = budget_trainer(tmp_path, [Tick(fake_time, per_step)], time_deadline=True)
    trainer.train()
    assert trainer.state.global_step == expected_steps
    assert trainer.budget_callback.elapsed_s <= 10.0
    assert trainer.budget_callback.ended_by == "deadline"


class SlowSave(TrainerCallback):
    def __init__(self, fake, seconds):
        self.fake, self.seconds = fake, seconds

    def on_save(self, args, state, control, **kwargs):
        self.fake.now += self.seconds


def test_deadline_keeps_time_for_the_final_evaluation_and_save(tmp_path, fake_time):
    """Steps 1 s, evaluations 2 s, saves 1 s: the run keeps 1 + 2 + 1 s for its last step, evaluation and
    save, so the whole of train() ends within the 20 s budget, and budget_log.jsonl has the estimates."""
    tick = Tick(fake_time, per_step=1.0, per_eval=2.0)
    trainer = budget_trainer(
        tmp_path,
        [tick, SlowSave(fake_time, 1.0)],
        time_budget="20s",
        eval_data=toy_data(8),
        eval_strategy="steps",
        eval_steps=5,
        save_strategy="steps",
        save_steps=5,
        time_deadline=True,
    )
    start = fake_time.now
    trainer.train()
    assert fake_time.now - start <= 20.0
    records = [json.loads(line) for line in (tmp_path / "out" / "budget_log.jsonl").read_text().splitlines()]
    end = records[-1]
    assert end["event"] == "end" and end["ended_by"] == "deadline"
    assert end["estimates"] == {"step_s": 1.0, "eval_s": 2.0, "save_s": 1.0, "eval_batches": 1}
    # without the deadline the same run overruns by its last evaluation and save
    fake_time.now = 1000.0
    late = budget_trainer(
        tmp_path / "late",
        [Tick(fake_time, per_step=1.0, per_eval=2.0), SlowSave(fake_time, 1.0)],
        time_budget="20s",
        eval_data=toy_data(8),
        eval_strategy="steps",
        eval_steps=5,
        save_strategy="steps",
        save_steps=5,
        time_deadline=False,
    )
    late.train()
    assert fake_time.now - 1000.0 > 20.0


def test_time_budget_and_max_steps_end_at_whichever_comes_first(tmp_path, fake_time):
    trainer = budget_trainer(tmp_path, [Tick(fake_time, 1.0)], time_budget="1h", max_steps=15)
    trainer.train()
    assert trainer.state.global_step == 15
    assert trainer.budget_callback.ended_by == "max_steps"
    end = json.loads((tmp_path / "out" / "budget_log.jsonl").read_text().splitlines()[-1])
    assert end["ended_by"] == "max_steps"
    # the LR follows the binding limit: step progress (15 steps) runs ahead of time progress (15 s of 1 h)
    lrs = trainer.state.log_history
    assert [log["learning_rate"] for log in lrs if "learning_rate" in log][-1] < BASE_LR * 0.1


def test_the_budget_binds_before_max_steps(tmp_path, fake_time):
    trainer = budget_trainer(tmp_path, [Tick(fake_time, 1.0)], time_budget="5s", max_steps=100, time_deadline=True)
    trainer.train()
    # 1 s steps and a 0.1 s margin: after step 4, one more step would end at 5.1 s > 5 s
    assert trainer.state.global_step == 4 and trainer.budget_callback.ended_by == "deadline"


def test_overridden_scheduler_flags_warn_once_naming_them(tmp_path):
    with pytest.warns(UserWarning, match="--lr_scheduler_type cosine, --warmup_steps 10 are replaced by the time"):
        BudgetTrainingArguments(
            output_dir=str(tmp_path), time_budget="1h", lr_scheduler_type="cosine", warmup_steps=10
        )


def test_every_log_record_has_elapsed_and_progress(tmp_path, fake_time):
    trainer = budget_trainer(tmp_path, [Tick(fake_time, 2.0)])
    trainer.train()
    step_logs = [log for log in trainer.state.log_history if "loss" in log]
    assert [log["step"] for log in step_logs] == [1, 2, 3, 4, 5]
    for log in trainer.state.log_history:
        assert log["elapsed_s"] == pytest.approx(2.0 * log["step"])
        assert log["budget_progress"] == pytest.approx(min(0.2 * log["step"], 1.0))


def test_stock_trainer_with_the_callback(tmp_path, fake_time):
    callback = WallClockBudgetCallback("5s", deadline=False)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=10**6,
        per_device_train_batch_size=4,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
    )
    trainer = Trainer(
        model=tiny_model("bert", "classification"),
        args=args,
        train_dataset=toy_data(),
        callbacks=[Tick(fake_time, 1.0), callback],
    )
    trainer.train()
    assert trainer.state.global_step == 5
    assert all("elapsed_s" in log and "budget_progress" in log for log in trainer.state.log_history)


def test_eval_every_writes_budget_log(tmp_path, fake_time):
    trainer = budget_trainer(tmp_path, [Tick(fake_time, 1.0)], eval_data=toy_data(8), eval_every="3s")
    trainer.train()
    lines = (tmp_path / "out" / "budget_log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    evaluations = [r for r in records if "metrics" in r]
    assert [(r["step"], r["elapsed_s"]) for r in evaluations] == [(3, 3.0), (6, 6.0), (9, 9.0)]
    assert all("eval_loss" in r["metrics"] for r in evaluations)
    assert records[-1]["event"] == "end" and records[-1]["ended_by"] == "time_budget"
    trainer.evaluate()  # after train(): not part of the training curve
    assert len((tmp_path / "out" / "budget_log.jsonl").read_text().splitlines()) == 4


def test_save_every_and_log_every(tmp_path, fake_time):
    trainer = budget_trainer(tmp_path, [Tick(fake_time, 1.0)], save_every="4s", log_every="5s", logging_steps=1000)
    trainer.train()
    assert sorted(os.listdir(tmp_path / "out")) == ["budget_log.jsonl", "checkpoint-4", "checkpoint-8"]
    assert [log["step"] for log in trainer.state.log_history if "loss" in log] == [5, 10]


@pytest.mark.parametrize("count_evaluation, expected_steps", [(True, 5), (False, 10)])
def test_evaluation_time_counts_unless_excluded(tmp_path, fake_time, count_evaluation, expected_steps):
    tick = Tick(fake_time, per_step=1.0, per_eval=5.0)
    trainer = budget_trainer(
        tmp_path,
        [tick],
        eval_data=toy_data(8),
        eval_strategy="steps",
        eval_steps=2,
        time_count_evaluation=count_evaluation,
        time_deadline=False,
    )
    trainer.train()
    # counted: steps 1-2 (2 s) + eval (5 s) + steps 3-4 (9 s) + eval (14 s) + step 5 -> 15 s >= 10 s
    assert trainer.state.global_step == expected_steps


# ---- slow evaluation under the deadline ---------------------------------------------------------------


class SlowLoading(torch.utils.data.Dataset):
    """Evaluation examples whose loading costs `per_item` seconds each (a slow dataset or a shared disk):
    fake seconds when given the fake clock, a real sleep otherwise."""

    def __init__(self, n, per_item, fake=None):
        self.rows, self.per_item, self.fake = toy_data(n), per_item, fake

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        if self.fake is not None:
            self.fake.now += self.per_item
        else:
            time.sleep(self.per_item)
        return self.rows[i]


def budget_records(tmp_path):
    return [json.loads(line) for line in (tmp_path / "out" / "budget_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "budget, eval_every, examples, per_item",
    [
        ("10s", "3s", 64, 0.08),  # an evaluation of ~5 s: half the budget
        ("12s", "4s", 512, 0.1),  # an evaluation of ~51 s: four times the budget, from the first one on
    ],
)
def test_slow_evaluation_is_known_before_it_runs_and_the_deadline_holds(
    tmp_path, fake_time, budget, eval_every, examples, per_item
):
    slow = SlowLoading(examples, per_item, fake_time)
    trainer = budget_trainer(
        tmp_path,
        [Tick(fake_time, per_step=0.5)],
        time_budget=budget,
        time_deadline=True,
        eval_data=slow,
        per_device_eval_batch_size=8,
        eval_every=eval_every,
        eval_strategy="steps",
        eval_steps=10**6,
    )
    start = fake_time.now
    trainer.train()
    took, budget_s = fake_time.now - start, parse_duration(budget)
    assert took <= budget_s * 1.03, took
    records = budget_records(tmp_path)
    cost = records[0]
    batches = examples // 8
    assert cost["event"] == "evaluation_cost" and cost["batches"] == batches
    assert cost["eval_s"] == pytest.approx(8 * per_item * batches)  # known before the first evaluation
    skips = [r for r in records if r.get("event") == "skip"]
    assert skips and all(r["what"] == "evaluation" and "left" in r["reason"] for r in skips)
    (subset,) = [r for r in records if r.get("event") == "final_evaluation_subset"]
    assert 1 <= subset["batches"] < subset["of"] == batches
    (final,) = [r for r in records if "metrics" in r]  # only the final evaluation ran, on the stated subset
    assert "eval_loss" in final["metrics"] and "cut" not in final
    assert records[-1]["event"] == "end" and records[-1]["ended_by"] == "deadline"


class SlowerAt(TrainerCallback):
    """From step `step` on, loading gets `factor` times slower (another job took the cores)."""

    def __init__(self, slow, step, factor):
        self.slow, self.step, self.factor = slow, step, factor

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.slow.per_item *= self.factor


def test_an_evaluation_slower_than_estimated_is_cut_between_batches(tmp_path, fake_time):
    """The probe says 0.8 s per evaluation; the first one runs 40x slower (32 s): it is cut when its next batch
    would eat the time kept for the final ones, the log says so, and train() still ends within the budget."""
    slow = SlowLoading(64, 0.0125, fake_time)
    trainer = budget_trainer(
        tmp_path,
        [Tick(fake_time, per_step=0.5), SlowerAt(slow, 2, 40.0)],
        time_budget="20s",
        time_deadline=True,
        eval_data=slow,
        per_device_eval_batch_size=8,
        eval_every="3s",
        eval_strategy="steps",
        eval_steps=10**6,
    )
    start = fake_time.now
    trainer.train()
    assert fake_time.now - start <= 20.0 * 1.03
    evaluations = [r for r in budget_records(tmp_path) if "metrics" in r]
    cut = [r for r in evaluations if "cut" in r]
    assert cut and all(1 <= r["cut"]["batches"] < r["cut"]["of"] == 8 for r in cut)
    assert cut[0]["estimates"]["eval_s"] >= 32.0  # learned from the cut one


def test_a_save_that_does_not_fit_is_skipped_and_logged(tmp_path, fake_time):
    trainer = budget_trainer(
        tmp_path,
        [Tick(fake_time, per_step=1.0), SlowSave(fake_time, 3.0)],
        time_budget="20s",
        time_deadline=True,
        save_strategy="steps",
        save_steps=10**6,
        save_every="2s",
    )
    start = fake_time.now
    trainer.train()
    assert fake_time.now - start <= 20.0
    records = budget_records(tmp_path)
    assert any(r.get("event") == "skip" and r["what"] == "save" for r in records)
    assert records[-1]["estimates"]["save_s"] == 3.0


def test_stock_trainer_skips_a_final_evaluation_it_cannot_cut(tmp_path, fake_time):
    """Without BudgetTrainer there is no probe and no cut: once an evaluation is known to be too long for the
    time left, the final one is skipped with a warning and a log line rather than run past the budget."""
    callback = WallClockBudgetCallback("10s", eval_every="2s")
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=100,
        per_device_train_batch_size=4,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        eval_strategy="steps",
        eval_steps=10**6,
        save_strategy="no",
    )
    trainer = Trainer(
        model=tiny_model("bert", "classification"),
        args=args,
        train_dataset=toy_data(),
        eval_dataset=toy_data(8),
        callbacks=[Tick(fake_time, per_step=0.5, per_eval=3.0), callback],
    )
    start = fake_time.now
    trainer.train()
    assert fake_time.now - start <= 10.0 * 1.03
    records = budget_records(tmp_path)
    assert any(r.get("event") == "skip" and r["what"] == "final evaluation" for r in records)


def test_real_slow_evaluation_first_longer_than_the_budget(tmp_path):
    """Real time: an evaluation whose loading sleeps (~6 s) against a 4 s budget; train() returns within it.

    Batches of ~0.24 s keep the final subset (~1 s: a quarter of the budget, less one batch for the loader's
    look-ahead) at about three batches, away from the edge where one batch fewer means no final evaluation."""
    trainer = budget_trainer(
        tmp_path,
        time_budget="4s",
        time_deadline=True,
        eval_data=SlowLoading(192, 0.03),
        per_device_eval_batch_size=8,
        eval_every="1s",
        eval_strategy="steps",
        eval_steps=10**6,
    )
    start = time.monotonic()
    trainer.train()
    took = time.monotonic() - start
    assert took <= 4.0 * 1.03, took
    records = budget_records(tmp_path)
    assert records[0]["event"] == "evaluation_cost" and records[0]["eval_s"] > 4.0
    assert any(r.get("event") == "final_evaluation_subset" for r in records)


# ---- resume ---------------------------------------------------------------------------------------


def test_elapsed_time_survives_save_and_resume_and_downtime_is_free(tmp_path, fake_time):
    first = budget_trainer(tmp_path, [Tick(fake_time)], save_strategy="steps", save_steps=4)
    first.train()
    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == ["budget_log.jsonl", "checkpoint-10", "checkpoint-4", "checkpoint-8"]
    state = json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())
    assert WallClockBudgetCallback.elapsed_in_state(state) == pytest.approx(8.0)

    fake_time.now += 5000.0  # a long downtime between runs is not charged
    second = budget_trainer(tmp_path, [Tick(fake_time)], save_strategy="steps", save_steps=4)
    second.train(resume_from_checkpoint=str(out / "checkpoint-8"))
    assert second.state.global_step == 10
    resumed = [log for log in second.state.log_history if "loss" in log and log["step"] > 8]
    assert [(log["step"], log["elapsed_s"]) for log in resumed] == [(9, 9.0), (10, 10.0)]


def test_lr_schedule_continues_from_restored_progress(tmp_path, fake_time):
    tick = Tick(fake_time)
    budget_trainer(tmp_path, [tick], save_strategy="steps", save_steps=4).train()
    resumed_tick = Tick(fake_time)
    resumed = budget_trainer(tmp_path, [resumed_tick], save_strategy="steps", save_steps=4)
    resumed.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-4"))
    for k in (4, 5, 7, 9):
        assert resumed_tick.lr_at_step[k] == pytest.approx(tick.lr_at_step[k], abs=1e-12)


def test_spent_budget_stops_at_once(tmp_path, fake_time):
    budget_trainer(tmp_path, [Tick(fake_time)], save_strategy="steps", save_steps=4).train()
    checkpoint = tmp_path / "out" / "checkpoint-10"
    tick = Tick(fake_time)
    trainer = budget_trainer(tmp_path, [tick], save_strategy="steps", save_steps=4)
    output = trainer.train(resume_from_checkpoint=str(checkpoint))
    assert tick.steps == 0 and output.global_step == 10
    from safetensors.torch import load_file

    saved = load_file(str(checkpoint / "model.safetensors"))
    for name, tensor in trainer.model.state_dict().items():
        if name in saved:
            assert torch.equal(tensor, saved[name]), name


def test_resume_true_skips_a_checkpoint_cut_off_mid_write(tmp_path, fake_time):
    budget_trainer(tmp_path, [Tick(fake_time)], save_strategy="steps", save_steps=4).train()
    out = tmp_path / "out"
    (out / "checkpoint-12").mkdir()  # killed mid-write: weights, but no trainer state
    (out / "checkpoint-12" / "model.safetensors").write_bytes(b"partial")
    (out / "checkpoint-10" / "trainer_state.json").write_text('{"global_step": 1')  # cut off
    assert find_resumable_checkpoint(out) == str(out / "checkpoint-8")
    trainer = budget_trainer(tmp_path, [Tick(fake_time)], save_strategy="no")
    trainer.train(resume_from_checkpoint=True)
    assert trainer.state.global_step == 10


# ---- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(time_budget="0"), "time_budget='0' must be > 0"),
        (dict(time_budget="soon"), "time_budget='soon' is not a duration"),
        (dict(time_budget="1m", eval_every="2m"), "eval_every='2m' is longer than time_budget='1m'"),
        (dict(time_budget="1h", time_lr_schedule="poly"), "time_lr_schedule='poly' is not known"),
        (dict(time_budget=None, save_every="5m"), "save_every needs time_budget"),
    ],
)
def test_bad_input_fails_before_anything_is_written(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        BudgetTrainingArguments(output_dir=str(tmp_path / "out"), **overrides)
    assert not (tmp_path / "out").exists()


def test_callback_rejects_interval_longer_than_budget():
    with pytest.raises(ValueError, match="save_every='2h'.*longer than the budget"):
        WallClockBudgetCallback("1h", save_every="2h")


def test_eval_every_without_eval_dataset(tmp_path):
    with pytest.raises(ValueError, match="eval_every needs an eval_dataset"):
        budget_trainer(tmp_path, eval_every="2s")


def test_hf_argument_parser_gains_time_budget():
    (args,) = HfArgumentParser(BudgetTrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", "x", "--time_budget", "2h", "--time_lr_schedule", "cosine", "--eval_every", "10m"]
    )
    assert args.time_budget_s == 7200 and args.time_lr_schedule == "cosine" and args.max_steps > 10**9


# ---- real time ------------------------------------------------------------------------------------


def test_real_three_second_budget(tmp_path):
    durations = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            self.start = time.monotonic()

        def on_step_end(self, *args, **kwargs):
            durations.append(time.monotonic() - self.start)

    trainer = budget_trainer(tmp_path, [StepTimer()], time_budget="3s", time_deadline=True)
    start = time.monotonic()
    trainer.train()
    took = time.monotonic() - start
    slowest_step = max(durations)
    assert 3.0 - 3 * slowest_step <= took <= 3.0 * 1.03, (took, slowest_step, len(durations))


def test_real_budget_with_slow_periodic_evaluation_returns_within_it(tmp_path):
    """Evaluation every 1 s takes ~0.3 s (30% of its interval), a checkpoint at each: train(), final
    evaluation and save included, still returns within the 6 s budget + 3%."""

    class SlowEvaluation(TrainerCallback):
        evaluations = []

        def on_prediction_step(self, args, state, control, **kwargs):
            time.sleep(0.075)  # 4 batches: ~0.3 s per evaluation

        def on_evaluate(self, args, state, control, **kwargs):
            self.evaluations.append(time.monotonic())

    trainer = budget_trainer(
        tmp_path,
        [SlowEvaluation()],
        time_deadline=True,
        time_budget="6s",
        eval_data=toy_data(16),
        per_device_eval_batch_size=4,
        eval_every="1s",
        eval_strategy="steps",
        eval_steps=10**6,  # periodic evaluation by time only; the strategy makes the final one
        save_strategy="steps",
        save_steps=10**6,
        save_every="1s",
        logging_steps=50,
    )
    start = time.monotonic()
    trainer.train()
    took = time.monotonic() - start
    assert took <= 6.0 * 1.03, took
    assert len(SlowEvaluation.evaluations) >= 4  # periodic ones and the final one all ran
    end = json.loads((tmp_path / "out" / "budget_log.jsonl").read_text().splitlines()[-1])
    assert end["ended_by"] == "deadline" and end["estimates"]["eval_s"] >= 0.25
