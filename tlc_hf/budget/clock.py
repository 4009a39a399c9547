"""One clock per run: monotonic, read on the main process, shared with every other rank."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch


def monotonic() -> float:
    """The clock's time source (tests patch this, instead of sleeping)."""
    return time.monotonic()


class BudgetClock:
    """Elapsed training time against a budget, with pause/resume and a cross-rank sync.

    The clock keeps *elapsed* seconds, never a start timestamp, so a resumed run keeps its budget and
    downtime between runs is not charged. `sync()` reads the clock on the main process and broadcasts
    it, so every rank sees the same `elapsed`, `progress` and stop decision.
    """

    def __init__(self, budget_s: float):
        if budget_s <= 0:
            raise ValueError(f"budget_s={budget_s!r} must be > 0")
        self.budget_s = float(budget_s)
        self._offset = 0.0
        self._started_at: float | None = None
        self.synced_elapsed = 0.0  # the value every rank agreed on at the last sync()
        self.synced_reserve = 0.0  # seconds to keep for what must still run (the largest rank's estimate)
        self.synced_costs: tuple[float, ...] = ()  # duration estimates, the largest rank's each

    @property
    def running(self) -> bool:
        return self._started_at is not None

    def start(self, elapsed: float = 0.0, since: float | None = None) -> None:
        """Start (or restart) counting from `elapsed` seconds already spent, from now or from the
        earlier `monotonic()` reading `since`."""
        self._offset = float(elapsed)
        self._started_at = monotonic() if since is None else since
        self.synced_elapsed = self._offset  # what every rank knows until the first sync()

    def pause(self) -> None:
        if self._started_at is not None:
            self._offset += monotonic() - self._started_at
            self._started_at = None

    def resume(self) -> None:
        if self._started_at is None:
            self._started_at = monotonic()

    def read(self) -> float:
        """Local elapsed seconds (this process's view; use `sync()` for decisions)."""
        if self._started_at is None:
            return self._offset
        return self._offset + monotonic() - self._started_at

    @property
    def progress(self) -> float:
        """Synced progress p = elapsed / budget, clipped to [0, 1]."""
        return min(max(self.synced_elapsed / self.budget_s, 0.0), 1.0)

    @property
    def spent(self) -> bool:
        return self.synced_elapsed >= self.budget_s

    @property
    def deadline_reached(self) -> bool:
        """Elapsed time plus the agreed reserve reaches the budget: stop now to end within it."""
        return self.synced_elapsed + self.synced_reserve > self.budget_s

    def sync(
        self,
        device: torch.device | str | None = None,
        flag: bool = False,
        reserve: float = 0.0,
        costs: Sequence[float] = (),
    ) -> bool:
        """Agree on elapsed time (the main process's), on `flag` (true if any rank's is), on `reserve` and on
        each of `costs` (the largest rank's; `synced_costs`).

        Single-process runs pay one clock read. Distributed runs add one small all-reduce. On CUDA the
        main process synchronizes the device first, so queued kernels are charged to the budget.
        """
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not distributed or torch.distributed.get_world_size() == 1:
            if device is not None and torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
            self.synced_elapsed, self.synced_reserve = self.read(), float(reserve)
            self.synced_costs = tuple(float(c) for c in costs)
            return flag
        device = torch.device(device) if device is not None else torch.device("cpu")
        is_main = torch.distributed.get_rank() == 0
        if is_main and device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = self.read() if is_main else 0.0
        values = [elapsed, float(flag), float(reserve), *(float(c) for c in costs)]
        agreed = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(agreed, op=torch.distributed.ReduceOp.MAX)
        self.synced_elapsed, any_flag, self.synced_reserve, *synced_costs = agreed.tolist()
        self.synced_costs = tuple(synced_costs)
        return bool(any_flag)
