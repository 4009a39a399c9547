"""Evaluation under a budget: its cost known before the first one runs, and a bound once one has started.

`time_evaluation_batches` times a few evaluation batches at train begin (inside the budget) so the first
evaluation's cost is an estimate, not a surprise. `BoundedEvalLoader` wraps the evaluation dataloader during
training: between batches it asks the budget callback whether the next batch still fits, and ends the
evaluation early (on every rank at once) when it does not.
"""

from __future__ import annotations

import torch

from . import clock as clock_module

PROBE_BATCHES = 3  # evaluation batches timed at train begin; the first (warm-up, look-ahead) is not used


def time_evaluation_batches(loaders, run_batch, batches: int = PROBE_BATCHES) -> tuple[float, int] | None:
    """Seconds per evaluation batch (loading included) and the batches in one whole evaluation.

    Args:
        loaders: the evaluation dataloaders of one evaluation (one, or one per named eval dataset).
        run_batch: `run_batch(inputs)` runs one prediction step.
        batches: how many batches of the first loader to run (the first is not timed when more ran).

    The global RNG is left as it was (iterating a `DataLoader` draws a seed from it), so a run with the
    probe trains on the same data order as one without.
    """
    try:
        total = sum(len(loader) for loader in loaders)
    except TypeError:  # an iterable dataset: no length, no estimate
        return None
    if total == 0:
        return None
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    times = []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        iterator = iter(loaders[0])
        start = clock_module.monotonic()
        for _ in range(min(batches, len(loaders[0]))):
            run_batch(next(iterator))
            now = clock_module.monotonic()
            times.append(now - start)
            start = now
    if not times:
        return None
    # the first batch pays the warm-up and the loader's look-ahead (a second batch): the slowest of the rest
    return max(times[1:] or times), total


class BoundedEvalLoader:
    """An evaluation dataloader that stops between batches when the budget callback says time is up.

    Everything but iteration is the wrapped loader's (`dataset`, `batch_size`, `len()`), so the Trainer's
    evaluation loop sees the same loader; metrics are computed on the batches that ran.
    """

    def __init__(self, loader, budget_callback):
        self._loader = loader
        self._budget_callback = budget_callback

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def __iter__(self):
        try:
            total = len(self._loader)
        except TypeError:
            total = None
        watch = self._budget_callback.begin_bounded_evaluation(total)
        for ran, inputs in enumerate(self._loader, start=1):
            yield inputs
            if ran != total and watch.time_is_up(ran):
                break


class EvaluationWatch:
    """Decides, between batches, whether one evaluation may run another batch.

    Args:
        clock: the run's `BudgetClock`.
        end_at: elapsed seconds by which the evaluation must have ended (`None`: no time bound).
        max_batches: at most this many batches (`None`: all).
        batch_s: the estimated seconds of one batch before any has run here.
        device: the training device (for the cross-rank agreement).
    """

    def __init__(self, clock, end_at: float | None, max_batches: int | None, batch_s: float, device=None):
        self.clock, self.end_at, self.max_batches, self.device = clock, end_at, max_batches, device
        self.batch_s = batch_s
        self.started = clock.read()
        self.last = self.first_done = self.started
        self.cut = False  # ended early because its time was up
        self.limited = False  # ended at its planned number of batches

    def time_is_up(self, ran: int) -> bool:
        """After `ran` batches: stop now? (The same answer on every rank.)"""
        now = self.clock.read()
        if ran == 1:  # the first batch may have paid for a second (a loader's look-ahead) and the warm-up
            self.first_done = now
            self.batch_s = max(self.batch_s, (now - self.started) / 2)
        else:  # the next batch costs as much as the slowest of: this evaluation's mean since its first, its last
            self.batch_s = max((now - self.first_done) / (ran - 1), now - self.last)
        self.last = now
        self.limited = self.max_batches is not None and ran >= self.max_batches
        stop = self.limited or (self.end_at is not None and now + self.batch_s > self.end_at)
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if distributed and torch.distributed.get_world_size() > 1:
            flag = torch.tensor([float(stop)], device=self.device or "cpu")
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        self.cut = self.cut or (stop and not self.limited)
        return stop
