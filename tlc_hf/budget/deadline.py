"""`WallClockBudgetCallback`: train any `transformers.Trainer` to a wall-clock budget."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState

from ..logs import add_log_fields
from . import clock as clock_module
from .clock import BudgetClock
from .duration import format_duration, parse_duration
from .evaluation import EvaluationWatch

logger = logging.getLogger(__name__)

BUDGET_LOG_NAME = "budget_log.jsonl"
_RECENT_STEPS = 8  # the step estimate is the slowest of the last this-many steps


class DurationEstimates:
    """How long a training step, an evaluation and a checkpoint save take in this run (seconds).

    Deliberately pessimistic: the slowest recent step, the slowest save seen so far, and an evaluation's cost
    as its batches times the slowest per-batch cost seen (timed on a few batches at train begin, then on each
    evaluation), so a subset evaluation still teaches what a whole one costs.
    """

    def __init__(self):
        self.steps: list[float] = []
        self.eval_batch_s: float | None = None
        self.eval_batches: int | None = None  # batches in one whole evaluation (on this rank)
        self.save_s: float | None = None

    def observe(self, kind: str, seconds: float) -> None:
        if kind == "step":
            self.steps = [*self.steps[-(_RECENT_STEPS - 1) :], seconds]
        else:
            setattr(self, f"{kind}_s", max(seconds, getattr(self, f"{kind}_s") or 0.0))

    def observe_evaluation(self, seconds: float, batches: int, whole: bool) -> None:
        """An evaluation of `batches` batches took `seconds`; `whole`: it ran every batch."""
        batches = max(batches, 1)
        self.eval_batch_s = max(seconds / batches, self.eval_batch_s or 0.0)
        if whole:
            self.eval_batches = max(batches, self.eval_batches or 0)

    @property
    def step_s(self) -> float:
        return max(self.steps) if self.steps else 0.0

    @property
    def eval_s(self) -> float | None:
        """Seconds one whole evaluation is expected to take, or None before any was timed."""
        if self.eval_batch_s is None:
            return None
        return self.eval_batch_s * (self.eval_batches or 1)

    def to_dict(self) -> dict:
        rounded = {"step_s": self.step_s, "eval_s": self.eval_s, "save_s": self.save_s}
        return {
            **{key: None if value is None else round(value, 4) for key, value in rounded.items()},
            "eval_batches": self.eval_batches,
        }


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class WallClockBudgetCallback(TrainerCallback, ExportableState):
    """Train to a wall-clock budget: `train()` returns within it (deadline mode), on every rank at once.

    Works with a stock `transformers.Trainer`; `tlc_hf.BudgetTrainer` adds time-keyed LR schedules.

    What counts: by default everything inside `train()` counts against the budget: set-up, training steps,
    evaluation, checkpoint saves and logging (a stock `Trainer` tells callbacks nothing before
    `on_train_begin`, so there the set-up before it is not counted; `BudgetTrainer` counts it). With `count_evaluation=False` the
    clock pauses while evaluation runs (from its first prediction step to the end of metric computation).

    Args:
        budget: seconds (int/float) or a string: "90s", "45m", "2h30m", "1d", "01:30:00".
        count_evaluation: charge evaluation time to the budget (default `True`).
        eval_every, save_every, log_every: wall-clock intervals ("10m") at which to evaluate / save a
            checkpoint / log, on top of the step-based strategies of `TrainingArguments`.
        handle_signals: on SIGTERM or SIGINT, save a checkpoint at the next step boundary and stop
            cleanly, so `resume_from_checkpoint` continues with the remaining budget. A second SIGINT
            interrupts at once.
        log_file: each evaluation appends `{"elapsed_s", "step", "budget_progress", "metrics", "estimates"}`
            to this file in `output_dir` (main process only): the raw material for loss-vs-time curves;
            the end of training appends `{"event": "end", "ended_by", "estimates", ...}`.
        deadline: `True` (default): keep running estimates of step, evaluation and save durations measured
            in this run, and stop early enough that the final step, evaluation and save end within the
            budget. `False`: stop at the first optimizer step after the budget is spent.
        max_final_eval_share: in deadline mode, the final evaluation is given at most this share of the
            budget (default 0.25); a longer one evaluates the first batches that fit (a stated subset).

    Evaluations and saves under the deadline (with `count_evaluation=True`):
        - `BudgetTrainer` times a few evaluation batches at train begin (inside the budget) and scales them by
          the batches in one evaluation, so the first evaluation's cost is known before it runs; it is then
          updated with the slowest per-batch cost of each evaluation.
        - A timed or step-based evaluation or save that would not leave room for the final step, evaluation
          and save is skipped; `budget_log.jsonl` gets `{"event": "skip", "what", "reason", ...}`.
        - The final evaluation always fits: if a whole one cannot, it runs the first batches that fit
          (`{"event": "final_evaluation_subset", "batches", "of"}` and a warning) or, when not even one
          batch fits (or the trainer cannot cut an evaluation short), it is skipped with a warning and a log line.
        - `BudgetTrainer` checks the clock between evaluation batches and ends an evaluation that would run
          past its time (`"cut"` in its log record). A stock `Trainer` with this callback gets the skip rules
          from durations measured in the run, but no probe and no cut.

    With `max_steps` (or epochs) set as well, training ends at whichever limit comes first, and schedules
    follow the progress of the binding limit (the larger of time and step progress); the log says which
    limit ended training (`ended_by`: "deadline", "time_budget", "max_steps", "signal" or "epochs").

    Every log record gains `elapsed_s` and `budget_progress`. Elapsed time (never a start timestamp)
    rides in each checkpoint's `trainer_state.json`, so a resumed run spends only what is left and
    downtime is not charged. On a stock `Trainer` a budget already spent at the resumed checkpoint stops
    after one more step (the loop checks its flags only at step ends); `BudgetTrainer` stops before it.
    """

    def __init__(
        self,
        budget: int | float | str,
        *,
        count_evaluation: bool = True,
        eval_every: int | float | str | None = None,
        save_every: int | float | str | None = None,
        log_every: int | float | str | None = None,
        handle_signals: bool = True,
        log_file: str | None = BUDGET_LOG_NAME,
        deadline: bool = True,
        max_final_eval_share: float = 0.25,
    ):
        if not 0.0 < max_final_eval_share <= 1.0:
            raise ValueError(f"max_final_eval_share={max_final_eval_share!r} must lie in (0, 1]")
        self.budget_s = parse_duration(budget, "budget")
        self.intervals = {}
        for name, value in (("eval_every", eval_every), ("save_every", save_every), ("log_every", log_every)):
            if value is None:
                continue
            seconds = parse_duration(value, name)
            if seconds > self.budget_s:
                raise ValueError(
                    f"{name}={value!r} ({format_duration(seconds)}) is longer than the budget "
                    f"{format_duration(self.budget_s)}; it would never fire"
                )
            self.intervals[name] = seconds
        self._init_args = dict(
            budget=self.budget_s,
            count_evaluation=count_evaluation,
            eval_every=eval_every,
            save_every=save_every,
            log_every=log_every,
            handle_signals=handle_signals,
            log_file=log_file,
            deadline=deadline,
            max_final_eval_share=max_final_eval_share,
        )
        self.deadline = deadline
        self.max_final_eval_share = max_final_eval_share
        # set by BudgetTrainer: time a few evaluation batches -> (seconds per batch, batches) or None
        self.eval_probe = None
        self.bounds_evaluation = False  # BudgetTrainer wraps evaluation loaders in BoundedEvalLoader
        self._agreed: dict = {}  # the estimates every rank agreed on at the last step
        self._eval_plan: tuple[float, int | None] | None = None  # (end by elapsed s, at most batches)
        self._watch: EvaluationWatch | None = None
        self._prediction_steps = 0
        self._device = None
        self._done_at_stop: set[str] = set()
        self.estimates = DurationEstimates()
        self.max_steps: int | None = None  # a step limit next to the budget: whichever comes first
        self.steps_done = 0
        self.ended_by: str | None = None
        self._last_step_end: float | None = None
        self._mark: float | None = None  # start of the evaluation / save now running after a step
        self._paused_in_step = 0.0  # evaluation / save time inside the current step interval
        self.count_evaluation = count_evaluation
        self.handle_signals = handle_signals
        self.log_file = log_file
        self.clock = BudgetClock(self.budget_s)
        self.resume_elapsed_s: float | None = None  # set by checkpoint restore
        self.train_entered_at: float | None = None  # set by BudgetTrainer.train: count its set-up too
        self.preempted = False
        self._signal_received = threading.Event()
        self._previous_handlers: dict[int, object] = {}
        self._next_fire: dict[str, float] = {}
        self._evaluating = False
        self._training = False

    # ---- checkpoint state -------------------------------------------------------------------------
    def state(self) -> dict:
        return {"args": dict(self._init_args), "attributes": {"resume_elapsed_s": self.elapsed_s}}

    @staticmethod
    def elapsed_in_state(trainer_state: TrainerState | dict) -> float | None:
        """Elapsed seconds recorded in a `TrainerState` (or its JSON dict), or None if absent."""
        callbacks = (
            trainer_state.get("stateful_callbacks", {})
            if isinstance(trainer_state, dict)
            else trainer_state.stateful_callbacks
        )
        saved = (callbacks or {}).get(WallClockBudgetCallback.__name__)
        if isinstance(saved, list):
            saved = saved[0] if saved else None
        if not saved:
            return None
        return saved.get("attributes", {}).get("resume_elapsed_s")

    # ---- what the rest of tlc_hf reads ------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        """Elapsed seconds all ranks agreed on at the last step boundary."""
        return self.clock.synced_elapsed

    @property
    def progress(self) -> float:
        """Progress p in [0, 1], the same on every rank: elapsed / budget, or steps / max_steps when a step
        limit binds first (the larger of the two)."""
        if self.max_steps:
            return max(self.clock.progress, min(self.steps_done / self.max_steps, 1.0))
        return self.clock.progress

    def log_fields(self) -> dict[str, float]:
        return {"elapsed_s": round(self.elapsed_s, 3), "budget_progress": round(self.progress, 6)}

    # ---- events -----------------------------------------------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        elapsed = 0.0
        if state.global_step > 0:  # resumed from a checkpoint
            restored = self.elapsed_in_state(state)
            if restored is None and self.resume_elapsed_s is None:
                logger.warning(
                    "Resumed at step %d from a checkpoint without a budget record; the budget starts from zero.",
                    state.global_step,
                )
            elapsed = float(restored if restored is not None else self.resume_elapsed_s or 0.0)
        self.resume_elapsed_s = None
        self.preempted = False
        self._signal_received.clear()
        self.clock.start(elapsed, since=self.train_entered_at)
        self.train_entered_at = None
        self._training = True
        self._next_fire = {name: (elapsed // every + 1) * every for name, every in self.intervals.items()}
        self.estimates = DurationEstimates()
        self.ended_by = None
        self.steps_done = state.global_step
        self._last_step_end, self._mark, self._paused_in_step = None, None, 0.0
        self.max_steps = state.max_steps if 0 < state.max_steps < 10**9 else None
        if self.max_steps:
            logger.info(
                "max_steps=%d next to a %s wall-clock budget: training ends at whichever comes first.",
                self.max_steps,
                format_duration(self.budget_s),
            )
        elif args.max_steps <= 0:
            logger.warning(
                "num_train_epochs=%s bounds this run next to the %s budget: the Trainer stops after its epochs "
                "even if budget is left. Use tlc_hf.BudgetTrainingArguments(time_budget=...) to train until the "
                "budget is spent.",
                args.num_train_epochs,
                format_duration(self.budget_s),
            )
        if self.clock.spent:
            logger.warning(
                "The budget of %s was already spent (%s elapsed) at the resumed checkpoint; stopping.",
                format_duration(self.budget_s),
                format_duration(elapsed),
            )
            control.should_training_stop = True
        if self.handle_signals:
            self._install_signal_handlers()
        self._agreed, self._eval_plan, self._watch, self._prediction_steps = {}, None, None, 0
        self._device = args.device
        self._done_at_stop = set()
        if self._evaluation_counts(args) and self.eval_probe is not None and not control.should_training_stop:
            self._probe_evaluation(args, state)
        return control

    def _evaluation_counts(self, args) -> bool:
        """Evaluations run in this training and are charged to a deadline."""
        evaluates = args.eval_strategy != "no" or "eval_every" in self.intervals
        return self.deadline and self.count_evaluation and evaluates

    def _probe_evaluation(self, args, state) -> None:
        started = clock_module.monotonic()
        measured = self.eval_probe()
        if measured is None:
            return
        self.estimates.eval_batch_s, self.estimates.eval_batches = measured
        eval_s = self.estimates.eval_s
        self._append_log(
            args,
            state,
            {
                "event": "evaluation_cost",
                **self.log_fields(),
                "eval_s": round(eval_s, 4),
                "batch_s": round(measured[0], 4),
                "batches": measured[1],
                "probe_s": round(clock_module.monotonic() - started, 4),
            },
        )
        if eval_s > self.max_final_eval_share * self.budget_s:
            logger.warning(
                "One evaluation is expected to take %s (%d batches), more than %d%% of the %s budget: periodic "
                "evaluations that do not fit are skipped and the final one covers only the batches that fit.",
                format_duration(eval_s),
                measured[1],
                round(100 * self.max_final_eval_share),
                format_duration(self.budget_s),
            )

    def on_optimizer_step(self, args, state, control, **kwargs):
        # Before the LR scheduler steps: the next LR and this step's stop decision use the same p.
        self.steps_done = state.global_step + 1
        reserve = self._reserve(args) if self.deadline else 0.0
        estimates = self.estimates
        local = (estimates.step_s, estimates.eval_batch_s, estimates.eval_batches, estimates.save_s)
        flag = self._signal_received.is_set()
        if self.clock.sync(args.device, flag=flag, reserve=reserve, costs=[-1.0 if v is None else v for v in local]):
            self.preempted = True
        step_s, batch_s, batches, save_s = (None if v < 0 else v for v in self.clock.synced_costs)
        eval_s = None if batch_s is None else batch_s * (batches or 1)
        self._agreed = {"step_s": step_s or 0.0, "eval_s": eval_s, "batch_s": batch_s, "save_s": save_s or 0.0}

    def _end_margin(self, step_s: float) -> float:
        """Time kept for the end of train() itself (logging, callbacks, timer jitter): a step, at most 2%."""
        return min(step_s, 0.02 * self.budget_s)

    def _reserve(self, args) -> float:
        """Seconds to keep: one more step, the final evaluation (at most `max_final_eval_share` of the
        budget) and save, and the end margin."""
        estimates = self.estimates
        final_eval = 0.0
        if args.eval_strategy != "no" and self.count_evaluation:
            final_eval = min(estimates.eval_s or 0.0, self.max_final_eval_share * self.budget_s)
        final_save = (estimates.save_s or 0.0) if args.save_strategy != "no" else 0.0
        return estimates.step_s + final_eval + final_save + self._end_margin(estimates.step_s)

    def _observe_step(self) -> None:
        now = clock_module.monotonic()
        if self._last_step_end is not None:
            self.estimates.observe("step", now - self._last_step_end - self._paused_in_step)
        self._last_step_end = self._mark = now
        self._paused_in_step = 0.0

    def _observe_after_step(self) -> float | None:
        """Seconds of the evaluation or save that ran after a step, from the step's end (or the previous one
        of the two) to now; None outside training."""
        if self._mark is None or not self._training:
            return None
        now = clock_module.monotonic()
        seconds = now - self._mark
        self._paused_in_step += seconds
        self._mark = now
        return seconds

    def on_save(self, args, state, control, **kwargs):
        seconds = self._observe_after_step()
        if seconds is not None:
            self.estimates.observe("save", seconds)
        if self._training and control.should_training_stop:
            self._done_at_stop.add("save")

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        self._prediction_steps = 0  # predict() is not an evaluation

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._observe_step()
        elapsed = self.elapsed_s
        for name, due in self._next_fire.items():
            if elapsed >= due:
                setattr(
                    control,
                    {"eval_every": "should_evaluate", "save_every": "should_save"}.get(name, "should_log"),
                    True,
                )
                if name == "eval_every" and args.load_best_model_at_end and args.save_strategy != "no":
                    control.should_save = True  # the best evaluation must have a checkpoint to load
                every = self.intervals[name]
                self._next_fire[name] = (elapsed // every + 1) * every
        if self.preempted:
            self.ended_by = "signal"
            logger.warning("Stop signal received: saving a checkpoint at step %d and stopping.", state.global_step)
            control.should_save = True
            control.should_training_stop = True
        elif self.clock.spent or (self.deadline and self.clock.deadline_reached):
            self.ended_by = "time_budget" if self.clock.spent else "deadline"
            logger.info(
                "Wall-clock budget of %s %s at step %d (%s elapsed, %s kept for the last step, evaluation "
                "and save); stopping.",
                format_duration(self.budget_s),
                "spent" if self.clock.spent else "nearly spent",
                state.global_step,
                format_duration(elapsed),
                format_duration(self.clock.synced_reserve),
            )
            control.should_training_stop = True
            control.should_log = True
            if args.save_strategy != "no":
                control.should_save = True
            if args.eval_strategy != "no":
                control.should_evaluate = True
        if self.deadline and self._training and self._agreed:
            self._admit(args, state, control)
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if control.should_training_stop and self.ended_by is not None:
            # the stop's final evaluation and save already ran at its step: not a second time
            control.should_evaluate = control.should_evaluate and "evaluation" not in self._done_at_stop
            control.should_save = control.should_save and "save" not in self._done_at_stop
        if self.deadline and self._training and self._agreed:
            self._admit(args, state, control)
        return control

    # ---- what may still run before the deadline -----------------------------------------------------
    def _admit(self, args, state, control) -> None:
        """Skip an evaluation or save that would not leave room for the final ones; bound the final
        evaluation to what fits. Decisions use the estimates all ranks agreed on, so every rank agrees."""
        agreed, elapsed = self._agreed, self.elapsed_s
        eval_s = (agreed["eval_s"] or 0.0) if self.count_evaluation else 0.0
        self._eval_plan = None
        if control.should_training_stop:
            if control.should_evaluate and self.count_evaluation:
                save_s = agreed["save_s"] if control.should_save else 0.0
                self._plan_final_evaluation(
                    args, state, control, self.budget_s - save_s - self._end_margin(agreed["step_s"])
                )
            return
        after = self.clock.synced_reserve  # the next step, the final evaluation and save, the end margin
        end_by = self.budget_s - after
        if control.should_evaluate and elapsed + eval_s > end_by:
            control.should_evaluate = False
            self._log_skip(args, state, "evaluation", eval_s, end_by - elapsed)
            if args.load_best_model_at_end:
                control.should_save = False  # its checkpoint would have no evaluation to rank it
        elif control.should_evaluate:
            self._eval_plan = (end_by, None)
        if control.should_save:
            needed = agreed["save_s"] + (eval_s if control.should_evaluate else 0.0)
            if elapsed + needed > end_by:
                control.should_save = False
                self._log_skip(args, state, "save", agreed["save_s"], end_by - elapsed - needed + agreed["save_s"])

    def _plan_final_evaluation(self, args, state, control, end_by: float) -> None:
        room = end_by - self.elapsed_s
        eval_s, batch_s = self._agreed["eval_s"], self._agreed["batch_s"]
        if eval_s is None or eval_s <= room:
            self._eval_plan = (end_by, None)
            return
        # a loader may read one batch ahead: plan one batch fewer than fit
        batches = int(room // batch_s) - 1 if batch_s else 0
        total = self.estimates.eval_batches
        reason = f"a whole evaluation takes ~{eval_s:.2f}s; {max(room, 0.0):.2f}s are left for it"
        if self.bounds_evaluation and total and batches >= 1:
            self._eval_plan = (end_by, batches)
            record = {"event": "final_evaluation_subset", "step": state.global_step, **self.log_fields()}
            self._append_log(args, state, {**record, "batches": batches, "of": total, "reason": reason})
            logger.warning("The final evaluation runs on %d of its %d batches: %s.", batches, total, reason)
        else:
            control.should_evaluate = False
            self._log_skip(args, state, "final evaluation", eval_s, room)

    def _log_skip(self, args, state, what: str, needed_s: float, left_s: float) -> None:
        reason = f"needs ~{needed_s:.2f}s, {max(left_s, 0.0):.2f}s left before the time kept for the final ones"
        if what == "final evaluation":
            reason = f"needs ~{needed_s:.2f}s, {max(left_s, 0.0):.2f}s left and not even one batch fits"
            logger.warning("The final evaluation is skipped to end within the budget: %s.", reason)
        else:
            logger.info("Skipping the %s at step %d to end within the budget: %s.", what, state.global_step, reason)
        record = {"event": "skip", "what": what, "step": state.global_step, **self.log_fields(), "reason": reason}
        self._append_log(args, state, {**record, "needed_s": round(needed_s, 4), "left_s": round(left_s, 4)})

    # ---- BoundedEvalLoader's questions ------------------------------------------------------------
    def begin_bounded_evaluation(self, total_batches: int | None) -> EvaluationWatch:
        """A watch for the evaluation starting now: by when it must end, how many batches it may run."""
        end_by, max_batches = None, None
        if self._training and self.deadline and self.count_evaluation:
            end_by, max_batches = self._eval_plan or (self.budget_s - self.clock.synced_reserve, None)
        batch_s = self.estimates.eval_batch_s or 0.0
        self._watch = EvaluationWatch(self.clock, end_by, max_batches, batch_s, device=self._device)
        return self._watch

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and "elapsed_s" not in logs:
            add_log_fields(state, logs, self.log_fields())

    def on_prediction_step(self, args, state, control, **kwargs):
        self._prediction_steps += 1
        if not self.count_evaluation and not self._evaluating and self.clock.running:
            self._evaluating = True
            self.clock.pause()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self._evaluating:
            self._evaluating = False
            self.clock.resume()
        seconds = self._observe_after_step()
        watch, self._watch, self._eval_plan = self._watch, None, None
        batches, self._prediction_steps = self._prediction_steps, 0
        if seconds is not None and self.count_evaluation:
            whole = watch is None or not (watch.cut or watch.limited)
            self.estimates.observe_evaluation(seconds, batches, whole=whole)
        if self._training:
            if control.should_training_stop:
                self._done_at_stop.add("evaluation")
            record = {"step": state.global_step, **self.log_fields(), "metrics": metrics or {}}
            if watch is not None and watch.cut:
                total = self.estimates.eval_batches
                record["cut"] = {"batches": batches, "of": total, "reason": "its time before the deadline was up"}
                logger.warning("Evaluation cut after %d of %s batches to end within the budget.", batches, total)
            self._append_log(args, state, {**record, "estimates": self.estimates.to_dict()})

    def on_train_end(self, args, state, control, **kwargs):
        self._training = False
        self.clock.sync(args.device)
        self.clock.pause()
        self._restore_signal_handlers()
        if self.ended_by is None:
            reached_steps = self.max_steps is not None and state.global_step >= self.max_steps
            self.ended_by = "max_steps" if reached_steps else "epochs"
        logger.info(
            "Training ended by %s at step %d (%s elapsed).",
            self.ended_by,
            state.global_step,
            format_duration(self.clock.read()),
        )
        end = {"event": "end", "ended_by": self.ended_by, "step": state.global_step, **self.log_fields()}
        self._append_log(args, state, {**end, "estimates": self.estimates.to_dict(), "deadline": self.deadline})

    def _append_log(self, args, state, record: dict) -> None:
        if self.log_file and state.is_world_process_zero and args.output_dir:
            os.makedirs(args.output_dir, exist_ok=True)
            with open(os.path.join(args.output_dir, self.log_file), "a") as f:
                f.write(json.dumps(record) + "\n")

    # ---- preemption -------------------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            logger.warning("Not in the main thread: SIGTERM/SIGINT will not checkpoint before stopping.")
            return
        for sig in _STOP_SIGNALS:
            self._previous_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signal_handlers(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGINT and self._signal_received.is_set():
            self._restore_signal_handlers()
            raise KeyboardInterrupt
        self._signal_received.set()
