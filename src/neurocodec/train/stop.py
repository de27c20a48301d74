"""Stopping a training session cleanly on a signal.

Ctrl-C (SIGINT) or ``kill`` (SIGTERM) while :meth:`Trainer.fit` runs: the current step finishes,
a checkpoint is written and the session ends as a ``train.max_seconds`` budget would end it
(``TrainResult.stopped_by == "signal"``), so ``--resume`` continues exactly from there instead of
from the last periodic checkpoint.  A second Ctrl-C interrupts at once (``KeyboardInterrupt``).
"""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """Context manager that records SIGINT / SIGTERM in :attr:`signal` (its name) instead of
    ending the process; the previous handlers come back on exit.  Disabled, or outside the main
    thread (where Python cannot install handlers), it records nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.signal: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequest":
        if self.enabled and threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
