"""The deadline policy: keep time for the last step, evaluation and save, so `train()` ends within the budget.

Lightning's `Timer` stops once the time is up; a deadline also needs to know what the end will cost. The
policy measures step, evaluation and save durations in this run (`DurationEstimates`), says how much time to
keep (`reserve`), skips an evaluation or save that would eat into it, and bounds the final evaluation to the
batches that fit. Every decision uses the estimates all ranks agreed on, so all ranks decide alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from transformers import TrainerControl, TrainerState, TrainingArguments

from . import clock as clock_module
from .clock import BudgetClock
from .duration import format_duration
from .evaluation import EvaluationWatch
from .log import BudgetLog

logger = logging.getLogger(__name__)

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

    def local_costs(self) -> list[float]:
        """This rank's estimates as numbers for the clock's cross-rank agreement (-1 for "not known")."""
        local = (self.step_s, self.eval_batch_s, self.eval_batches, self.save_s)
        return [-1.0 if v is None else v for v in local]

    def to_dict(self) -> dict:
        rounded = {"step_s": self.step_s, "eval_s": self.eval_s, "save_s": self.save_s}
        return {
            **{key: None if value is None else round(value, 4) for key, value in rounded.items()},
            "eval_batches": self.eval_batches,
        }


class DeadlinePolicy:
    """Times the run's steps, evaluations and saves, and decides what may still run before the deadline.

    Args:
        clock: the run's `BudgetClock` (its synced elapsed time is what every rank agreed on).
        log: where skips, subsets and the evaluation cost go.
        log_fields: `elapsed_s` and `budget_progress` for a log record.
        enabled: keep time for the end (`deadline=True`); `False` only measures.
        count_evaluation: evaluation time is charged to the budget.
        max_final_eval_share: the final evaluation gets at most this share of the budget.
    """

    def __init__(
        self,
        clock: BudgetClock,
        log: BudgetLog,
        log_fields: Callable[[], dict],
        *,
        enabled: bool = True,
        count_evaluation: bool = True,
        max_final_eval_share: float = 0.25,
    ):
        if not 0.0 < max_final_eval_share <= 1.0:
            raise ValueError(f"max_final_eval_share={max_final_eval_share!r} must lie in (0, 1]")
        self.clock, self.log, self.log_fields = clock, log, log_fields
        self.enabled, self.count_evaluation = enabled, count_evaluation
        self.max_final_eval_share = max_final_eval_share
        self.eval_probe: Callable[[], tuple[float, int] | None] | None = None  # see `use_evaluation_probe`
        self.bounds_evaluation = False
        self.estimates = DurationEstimates()
        self.training = False
        self._agreed: dict = {}  # the estimates every rank agreed on at the last step
        self._eval_plan: tuple[float, int | None] | None = None  # (end by elapsed s, at most batches)
        self._watch: EvaluationWatch | None = None
        self._device = None
        self._last_step_end: float | None = None
        self._mark: float | None = None  # start of the evaluation / save now running after a step
        self._paused_in_step = 0.0  # evaluation / save time inside the current step interval

    @property
    def budget_s(self) -> float:
        return self.clock.budget_s

    def use_evaluation_probe(self, probe: Callable[[], tuple[float, int] | None]) -> None:
        """`probe()` times a few evaluation batches (seconds per batch, batches in one evaluation), and the
        trainer wraps its evaluation loaders in `BoundedEvalLoader`: what `BudgetTrainer` provides."""
        self.eval_probe, self.bounds_evaluation = probe, True

    # ---- the run --------------------------------------------------------------------------------------
    def start(self, args: TrainingArguments, state: TrainerState, *, evaluates: bool, probe: bool) -> None:
        """Training begins: fresh estimates; `probe`: time the evaluation now (inside the budget)."""
        self.training = True
        self.estimates = DurationEstimates()
        self._last_step_end, self._mark, self._paused_in_step = None, None, 0.0
        self._agreed, self._eval_plan, self._watch = {}, None, None
        self._device = args.device
        if probe and self.enabled and self.count_evaluation and evaluates and self.eval_probe is not None:
            self._probe_evaluation(args, state)

    def stop(self) -> None:
        self.training = False

    def _probe_evaluation(self, args, state) -> None:
        started = clock_module.monotonic()
        measured = self.eval_probe()
        if measured is None:
            return
        self.estimates.eval_batch_s, self.estimates.eval_batches = measured
        eval_s = self.estimates.eval_s
        self.log.append(
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

    # ---- what to keep -----------------------------------------------------------------------------------
    def reserve(self, args: TrainingArguments) -> float:
        """Seconds to keep: one more step, the final evaluation (at most `max_final_eval_share` of the
        budget) and save, and the end margin; 0 when the deadline is off."""
        if not self.enabled:
            return 0.0
        estimates = self.estimates
        final_eval = 0.0
        if args.eval_strategy != "no" and self.count_evaluation:
            final_eval = min(estimates.eval_s or 0.0, self.max_final_eval_share * self.budget_s)
        final_save = (estimates.save_s or 0.0) if args.save_strategy != "no" else 0.0
        return estimates.step_s + final_eval + final_save + self._end_margin(estimates.step_s)

    def _end_margin(self, step_s: float) -> float:
        """Time kept for the end of train() itself (logging, callbacks, timer jitter): a step, at most 2%."""
        return min(step_s, 0.02 * self.budget_s)

    def agree(self) -> None:
        """Take the estimates every rank agreed on in the clock's last sync (the largest rank's each)."""
        step_s, batch_s, batches, save_s = (None if v < 0 else v for v in self.clock.synced_costs)
        eval_s = None if batch_s is None else batch_s * (batches or 1)
        self._agreed = {"step_s": step_s or 0.0, "eval_s": eval_s, "batch_s": batch_s, "save_s": save_s or 0.0}

    # ---- timing what ran -----------------------------------------------------------------------------------
    def step_ended(self) -> None:
        now = clock_module.monotonic()
        if self._last_step_end is not None:
            self.estimates.observe("step", now - self._last_step_end - self._paused_in_step)
        self._last_step_end = self._mark = now
        self._paused_in_step = 0.0

    def _seconds_since_mark(self) -> float | None:
        """Seconds of the evaluation or save that ran after a step, from the step's end (or the previous one
        of the two) to now; None outside training."""
        if self._mark is None or not self.training:
            return None
        now = clock_module.monotonic()
        seconds = now - self._mark
        self._paused_in_step += seconds
        self._mark = now
        return seconds

    def save_ended(self) -> None:
        seconds = self._seconds_since_mark()
        if seconds is not None:
            self.estimates.observe("save", seconds)

    def evaluation_ended(self, batches: int) -> EvaluationWatch | None:
        """An evaluation of `batches` batches ended; returns its watch (None when it was not bounded)."""
        seconds = self._seconds_since_mark()
        watch, self._watch, self._eval_plan = self._watch, None, None
        if seconds is not None and self.count_evaluation:
            whole = watch is None or not (watch.cut or watch.limited)
            self.estimates.observe_evaluation(seconds, batches, whole=whole)
        return watch

    # ---- what may still run before the deadline -----------------------------------------------------
    def admit(self, args, state, control: TrainerControl) -> None:
        """Skip an evaluation or save that would not leave room for the final ones; bound the final
        evaluation to what fits. Decisions use the estimates all ranks agreed on, so every rank agrees."""
        if not (self.enabled and self.training and self._agreed):
            return
        agreed, elapsed = self._agreed, self.clock.synced_elapsed
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
        room = end_by - self.clock.synced_elapsed
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
            self.log.append(args, state, {**record, "batches": batches, "of": total, "reason": reason})
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
        self.log.append(args, state, {**record, "needed_s": round(needed_s, 4), "left_s": round(left_s, 4)})

    # ---- BoundedEvalLoader's question -----------------------------------------------------------------
    def begin_bounded_evaluation(self) -> EvaluationWatch:
        """A watch for the evaluation starting now: by when it must end, how many batches it may run."""
        end_by, max_batches = None, None
        if self.training and self.enabled and self.count_evaluation:
            end_by, max_batches = self._eval_plan or (self.budget_s - self.clock.synced_reserve, None)
        batch_s = self.estimates.eval_batch_s or 0.0
        self._watch = EvaluationWatch(self.clock, end_by, max_batches, batch_s, device=self._device)
        return self._watch
