"""Work off the UI thread whose answer only counts while it is the latest asked for."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot


class LatestOnly(QObject):
    """Runs a job (reading a dataset) in a worker thread, one at a time; ``done`` brings the latest job's answer
    to the UI thread, and an earlier job finishing after a newer one was started (another folder chosen
    meanwhile) is dropped.

    ``done(result, error)``: what the job returned and "", or None and the message of what it raised."""

    done = Signal(object, str)
    _finished = Signal(int, object, str)  # job number, result, error

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._number = 0
        self.busy = False  # a job is running whose answer will count
        self._finished.connect(self._on_finished)

    def start(self, job: Callable[[], object]) -> None:
        """Run ``job`` after the ones already started; only its answer will be reported."""
        self._number += 1
        number = self._number
        self.busy = True

        def run() -> None:
            try:
                result = job()
            except Exception as exc:  # every failure becomes a message for the caller to show
                self._finished.emit(number, None, str(exc) or type(exc).__name__)
            else:
                self._finished.emit(number, result, "")

        self._pool.start(run)

    def forget(self) -> None:
        """Drop the answer of whatever is running (nothing is to be shown any more)."""
        self._number += 1
        self.busy = False

    @Slot(int, object, str)
    def _on_finished(self, number: int, result: object, error: str) -> None:
        if number != self._number:
            return
        self.busy = False
        self.done.emit(result, error)

    def shutdown(self, wait_ms: int = 5000) -> None:
        """Start nothing more and wait for the job in hand (they are short)."""
        self._pool.clear()
        self._pool.waitForDone(wait_ms)
