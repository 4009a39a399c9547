"""Preemption: SIGTERM or SIGINT asks training to checkpoint at the next step boundary and stop."""

from __future__ import annotations

import logging
import signal
import threading

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Catches SIGTERM / SIGINT while installed and remembers that one came; a second SIGINT interrupts at once.

    The budget callback reads `received` at each optimizer step and agrees on it across ranks (one rank
    signalled is enough), so every rank saves and stops on the same step.

    Example:
        ```python
        signals = StopSignals()
        signals.install()
        ...  # at a step boundary: if signals.received: save and stop
        signals.restore()
        ```
    """

    def __init__(self):
        self._received = threading.Event()
        self._previous_handlers: dict[int, object] = {}

    @property
    def received(self) -> bool:
        return self._received.is_set()

    def clear(self) -> None:
        self._received.clear()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            logger.warning("Not in the main thread: SIGTERM/SIGINT will not checkpoint before stopping.")
            return
        for sig in STOP_SIGNALS:
            self._previous_handlers[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        """Put back the handlers there were before `install`."""
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGINT and self._received.is_set():
            self.restore()
            raise KeyboardInterrupt
        self._received.set()
