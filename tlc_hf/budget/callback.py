"""`WallClockBudgetCallback`: train any `transformers.Trainer` to a wall-clock budget.

The callback keeps the clock and decides when training stops; the rest is in small parts it drives:
`DeadlinePolicy` (deadline.py: what to keep time for, what may still run), `TimedIntervals` (intervals.py),
`StopSignals` (preemption.py) and `BudgetLog` (log.py). `BudgetTrainer` talks to it through its public
methods (`use_evaluation_probe`, `count_setup_from`, `start_spent`, `begin_bounded_evaluation`).
"""

from __future__ import annotations

import logging

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState

from ..logs import add_log_fields
from .clock import BudgetClock
from .deadline import DeadlinePolicy
from .duration import format_duration, parse_duration
from .evaluation import EvaluationWatch
from .intervals import TimedIntervals, parse_intervals
from .log import BUDGET_LOG_NAME, BudgetLog
from .preemption import StopSignals
from .schedules import UNBOUNDED_MAX_STEPS

logger = logging.getLogger(__name__)

__all__ = ["BUDGET_LOG_NAME", "WallClockBudgetCallback"]


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
        self.budget_s = parse_duration(budget, "budget")
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
        self.clock = BudgetClock(self.budget_s)
        self.log = BudgetLog(log_file)
        self.deadline = DeadlinePolicy(
            self.clock,
            self.log,
            self.log_fields,
            enabled=deadline,
            count_evaluation=count_evaluation,
            max_final_eval_share=max_final_eval_share,
        )
        intervals = dict(eval_every=eval_every, save_every=save_every, log_every=log_every)
        self.intervals = TimedIntervals(parse_intervals(self.budget_s, **intervals))
        self.signals = StopSignals() if handle_signals else None
        self.count_evaluation = count_evaluation
        self.max_steps: int | None = None  # a step limit next to the budget: whichever comes first
        self.steps_done = 0
        self.ended_by: str | None = None
        self.preempted = False
        self.resume_elapsed_s: float | None = None  # set by checkpoint restore
        self._train_entered_at: float | None = None  # set by `count_setup_from`
        self._training = False
        self._evaluating = False  # the clock is paused for an evaluation (count_evaluation=False)
        self._prediction_steps = 0
        self._done_at_stop: set[str] = set()  # the final evaluation / save that already ran at the stop

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

    @property
    def estimates(self):
        """The `DurationEstimates` of this run (step, evaluation, save)."""
        return self.deadline.estimates

    def log_fields(self) -> dict[str, float]:
        return {"elapsed_s": round(self.elapsed_s, 3), "budget_progress": round(self.progress, 6)}

    # ---- what BudgetTrainer tells it --------------------------------------------------------------
    def use_evaluation_probe(self, probe) -> None:
        """`probe()` times a few evaluation batches at train begin, and the trainer bounds its evaluations
        with `BoundedEvalLoader` (see `DeadlinePolicy.use_evaluation_probe`)."""
        self.deadline.use_evaluation_probe(probe)

    def count_setup_from(self, entered_at: float) -> None:
        """Charge the set-up since `entered_at` (a `clock.monotonic()` reading in `train()`) to the budget."""
        self._train_entered_at = entered_at

    def start_spent(self, elapsed: float) -> None:
        """A resumed run whose budget was spent at its checkpoint: the clock shows `elapsed`, stopped."""
        self.clock.start(elapsed)
        self.clock.sync()
        self.clock.pause()

    def begin_bounded_evaluation(self, total_batches: int | None = None) -> EvaluationWatch:
        """A watch for the evaluation starting now (asked by `BoundedEvalLoader`)."""
        return self.deadline.begin_bounded_evaluation()

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
        self.clock.start(elapsed, since=self._train_entered_at)
        self._train_entered_at = None
        self._training = True
        self.intervals.start(elapsed)
        self.ended_by = None
        self.steps_done = state.global_step
        self.max_steps = state.max_steps if 0 < state.max_steps < UNBOUNDED_MAX_STEPS else None
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
        if self.signals is not None:
            self.signals.clear()
            self.signals.install()
        self._prediction_steps = 0
        self._done_at_stop = set()
        evaluates = args.eval_strategy != "no" or "eval_every" in self.intervals
        self.deadline.start(args, state, evaluates=evaluates, probe=not control.should_training_stop)
        return control

    def on_optimizer_step(self, args, state, control, **kwargs):
        # Before the LR scheduler steps: the next LR and this step's stop decision use the same p.
        self.steps_done = state.global_step + 1
        signalled = self.signals is not None and self.signals.received
        reserve, costs = self.deadline.reserve(args), self.deadline.estimates.local_costs()
        if self.clock.sync(args.device, flag=signalled, reserve=reserve, costs=costs):
            self.preempted = True
        self.deadline.agree()

    def on_save(self, args, state, control, **kwargs):
        self.deadline.save_ended()
        if self._training and control.should_training_stop:
            self._done_at_stop.add("save")

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        self._prediction_steps = 0  # predict() is not an evaluation

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self.deadline.step_ended()
        elapsed = self.elapsed_s
        self.intervals.fire_due(elapsed, args, control)
        if self.preempted:
            self.ended_by = "signal"
            logger.warning("Stop signal received: saving a checkpoint at step %d and stopping.", state.global_step)
            control.should_save = True
            control.should_training_stop = True
        elif self.clock.spent or (self.deadline.enabled and self.clock.deadline_reached):
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
        self.deadline.admit(args, state, control)
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if control.should_training_stop and self.ended_by is not None:
            # the stop's final evaluation and save already ran at its step: not a second time
            control.should_evaluate = control.should_evaluate and "evaluation" not in self._done_at_stop
            control.should_save = control.should_save and "save" not in self._done_at_stop
        self.deadline.admit(args, state, control)
        return control

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
        batches, self._prediction_steps = self._prediction_steps, 0
        watch = self.deadline.evaluation_ended(batches)
        if self._training:
            if control.should_training_stop:
                self._done_at_stop.add("evaluation")
            record = {"step": state.global_step, **self.log_fields(), "metrics": metrics or {}}
            if watch is not None and watch.cut:
                total = self.estimates.eval_batches
                record["cut"] = {"batches": batches, "of": total, "reason": "its time before the deadline was up"}
                logger.warning("Evaluation cut after %d of %s batches to end within the budget.", batches, total)
            self.log.append(args, state, {**record, "estimates": self.estimates.to_dict()})

    def on_train_end(self, args, state, control, **kwargs):
        self._training = False
        self.deadline.stop()
        self.clock.sync(args.device)
        self.clock.pause()
        if self.signals is not None:
            self.signals.restore()
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
        record = {**end, "estimates": self.estimates.to_dict(), "deadline": self.deadline.enabled}
        self.log.append(args, state, record)
