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

logger = logging.getLogger(__name__)

BUDGET_LOG_NAME = "budget_log.jsonl"
_RECENT_STEPS = 8  # the step estimate is the slowest of the last this-many steps


class DurationEstimates:
    """How long a training step, an evaluation and a checkpoint save took in this run (seconds).

    Deliberately pessimistic: the slowest recent step, the slowest evaluation and save seen so far.
    """

    def __init__(self):
        self.steps: list[float] = []
        self.eval_s: float | None = None
        self.save_s: float | None = None

    def observe(self, kind: str, seconds: float) -> None:
        if kind == "step":
            self.steps = [*self.steps[-(_RECENT_STEPS - 1) :], seconds]
        else:
            setattr(self, f"{kind}_s", max(seconds, getattr(self, f"{kind}_s") or 0.0))

    @property
    def step_s(self) -> float:
        return max(self.steps) if self.steps else 0.0

    def reserve(self, final_eval: bool, final_save: bool) -> float:
        """Seconds one more step, then the final evaluation and save, would take."""
        return self.step_s + (self.eval_s or 0.0) * final_eval + (self.save_s or 0.0) * final_save

    def to_dict(self) -> dict:
        return {
            "step_s": round(self.step_s, 4),
            "eval_s": None if self.eval_s is None else round(self.eval_s, 4),
            "save_s": None if self.save_s is None else round(self.save_s, 4),
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
    ):
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
        )
        self.deadline = deadline
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
        return control

    def on_optimizer_step(self, args, state, control, **kwargs):
        # Before the LR scheduler steps: the next LR and this step's stop decision use the same p.
        self.steps_done = state.global_step + 1
        reserve = self._reserve(args) if self.deadline else 0.0
        if self.clock.sync(args.device, flag=self._signal_received.is_set(), reserve=reserve):
            self.preempted = True

    def _reserve(self, args) -> float:
        """Seconds to keep: one more step, the final evaluation and save, and a margin for the end of
        train() itself (logging, callbacks, timer jitter): another step, at most 2% of the budget."""
        final_eval = args.eval_strategy != "no" and self.count_evaluation
        margin = min(self.estimates.step_s, 0.02 * self.budget_s)
        return self.estimates.reserve(final_eval=final_eval, final_save=args.save_strategy != "no") + margin

    def _observe_step(self) -> None:
        now = clock_module.monotonic()
        if self._last_step_end is not None:
            self.estimates.observe("step", now - self._last_step_end - self._paused_in_step)
        self._last_step_end = self._mark = now
        self._paused_in_step = 0.0

    def _observe_after_step(self, kind: str) -> None:
        """An evaluation or a save that ran after a step: its duration, from the step's end (or the previous
        one of the two) to now."""
        if self._mark is None or not self._training:
            return
        now = clock_module.monotonic()
        self.estimates.observe(kind, now - self._mark)
        self._paused_in_step += now - self._mark
        self._mark = now

    def on_save(self, args, state, control, **kwargs):
        self._observe_after_step("save")

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
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and "elapsed_s" not in logs:
            add_log_fields(state, logs, self.log_fields())

    def on_prediction_step(self, args, state, control, **kwargs):
        if not self.count_evaluation and not self._evaluating and self.clock.running:
            self._evaluating = True
            self.clock.pause()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self._evaluating:
            self._evaluating = False
            self.clock.resume()
        self._observe_after_step("eval")
        if self._training:
            record = {"step": state.global_step, **self.log_fields(), "metrics": metrics or {}}
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
