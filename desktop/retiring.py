"""Worker threads asked to stop, kept until they have (a camera read or a model load can take a while)."""

from __future__ import annotations

from collections.abc import Iterator

from PySide6.QtCore import QObject, QThread, Slot

from desktop.workers import abandon


class Retiring(QObject):
    """The threads asked to stop and not finished yet: each is referenced here (so Qt does not delete a running
    thread) until it finishes, then deleted. Empty (false) once they all have."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workers: list[QThread] = []

    def __len__(self) -> int:
        return len(self._workers)

    def __iter__(self) -> Iterator[QThread]:
        return iter(list(self._workers))

    def add(self, worker: QThread) -> None:
        """Ask ``worker`` to stop, without waiting for it."""
        worker.requestInterruption()
        self._workers.append(worker)
        worker.finished.connect(self.forget_finished)
        if worker.isFinished():
            self.forget_finished()

    @Slot()
    def forget_finished(self) -> None:
        for worker in [w for w in self._workers if w.isFinished()]:
            self._workers.remove(worker)
            worker.deleteLater()

    def wait_all(self, wait_ms: int) -> None:
        """Wait for each thread up to ``wait_ms``; one stuck in a read that never returns (a stalled network
        disk) is abandoned (desktop.workers.abandon) rather than blocking the window's close."""
        for worker in list(self._workers):
            worker.requestInterruption()
            if not worker.wait(wait_ms):
                self._workers.remove(worker)
                abandon(worker)
        self.forget_finished()
