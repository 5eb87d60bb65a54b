"""Training in a child process: the command that starts it and the QProcess wrapper that talks to it.

Training runs outside the GUI process so the window never freezes (TensorFlow holds the GIL for
long stretches) and a crash in TensorFlow cannot take the app down. The child is the ordinary
``facetracker-train`` CLI run with ``--progress json``: every stdout line is one JSON event
(``start``, ``batch``, ``epoch``, ``warning``, ``end``, ``error``), so the GUI and the terminal
use exactly the same engine. The event names live in :mod:`training.core.events`, the arguments come
from :func:`training.engine.settings.config_to_args`.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Sequence

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from training.core import END, ERROR, START

#: How long a stopping child may take to finish its epoch's bookkeeping before it is killed.
STOP_GRACE_MS = 20_000
#: How much of the child's stderr is kept to explain a failure.
STDERR_TAIL_LINES = 60


def training_command(args: Sequence[str]) -> list[str]:
    """The command line that runs ``facetracker-train ARGS`` as a child of this app.

    A PyInstaller bundle has no ``python -m``: its executable dispatches ``--train-child ARGS``
    to the CLI (see ``desktop.app.main``) before any window is made.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, "--train-child", *args]
    return [sys.executable, "-m", "training", *args]


def parse_event_line(line: str) -> dict | None:
    """The event a stdout line carries, or None for anything that is not a JSON event object."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("event"), str):
        return value
    return None


class TrainingProcess(QObject):
    """One training child: starts it, turns its stdout into events, stops it gently, reports how it ended.

    Signals:
        event(dict): every JSON event the child printed, in order (``end`` included).
        log(str): a stdout line that was not an event (a stray print, say).
        succeeded(dict): the child exited after printing its ``end`` event.
        stopped(dict): the child ended after :meth:`stop` (or another interrupt) without an ``end``
            event: ``{"run_dir": str | None, "message": str}``; finished epochs are kept in run_dir.
        failed(str): the child could not start, crashed, or exited without an ``end`` event; the
            message is the child's own ``error`` event, else the tail of its stderr.
    """

    event = Signal(dict)
    log = Signal(str)
    succeeded = Signal(dict)
    stopped = Signal(dict)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._process: QProcess | None = None
        self._stdout_buffer = b""
        self._stderr_buffer = b""
        self._stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._end_event: dict | None = None
        self._error_message: str | None = None
        self._interrupted: dict | None = None
        self._run_dir: str | None = None
        self._stop_requested = False
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

    # -- state -----------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def pid(self) -> int | None:
        if self._process is None:
            return None
        pid = int(self._process.processId())
        return pid or None

    # -- starting ----------------------------------------------------------------------------------
    def start(self, args: Sequence[str]) -> None:
        """Run ``facetracker-train ARGS`` (add ``--progress json`` to ARGS yourself)."""
        self.start_command(training_command(args))

    def start_command(self, command: Sequence[str]) -> None:
        """Run any command that speaks the JSON-lines protocol (the first item is the program)."""
        if self.is_running():
            raise RuntimeError("a training process is already running")
        self._stdout_buffer = b""
        self._stderr_buffer = b""
        self._stderr_tail.clear()
        self._end_event = None
        self._error_message = None
        self._interrupted = None
        self._run_dir = None
        self._stop_requested = False

        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")  # each event reaches us when it is printed
        env.insert("PYTHONIOENCODING", "utf-8")
        process.setProcessEnvironment(env)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        process.start(command[0], list(command[1:]))

    # -- stopping ----------------------------------------------------------------------------------
    def stop(self, grace_ms: int = STOP_GRACE_MS) -> None:
        """Ask the child to stop; it keeps its last finished epoch (``last.keras``) for a later --resume.

        QProcess.terminate sends SIGTERM on POSIX, which the CLI turns into the same clean exit as
        Ctrl-C (an ``error`` event with ``interrupted: true``); unlike SIGINT, it still works when
        the app was started with SIGINT ignored (a background job), since the CLI installs its own
        handler. Windows gets WM_CLOSE, which a windowless child may ignore: whatever happens, the
        child is killed if it is still running after ``grace_ms`` (checkpoints of finished epochs
        are already on disk by then).
        """
        if not self.is_running():
            return
        self._stop_requested = True
        self._process.terminate()
        self._kill_timer.start(grace_ms)

    def shutdown(self, wait_ms: int = 5000) -> None:
        """Stop the child and wait for it (the app is closing): gently first, then kill."""
        if not self.is_running():
            return
        self.stop(grace_ms=wait_ms)
        if not self._process.waitForFinished(wait_ms):
            self._process.kill()
            self._process.waitForFinished(2000)

    def _kill(self) -> None:
        if self.is_running():
            self._process.kill()

    # -- reading -----------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        self._stdout_buffer += bytes(self._process.readAllStandardOutput())
        *lines, self._stdout_buffer = self._stdout_buffer.split(b"\n")
        for raw in lines:
            self._handle_stdout_line(raw.decode("utf-8", errors="replace"))

    def _read_stderr(self) -> None:
        self._stderr_buffer += bytes(self._process.readAllStandardError())
        *lines, self._stderr_buffer = self._stderr_buffer.split(b"\n")
        for raw in lines:
            self._keep_stderr_line(raw.decode("utf-8", errors="replace"))

    def _keep_stderr_line(self, line: str) -> None:
        line = line.rstrip()
        if line:
            self._stderr_tail.append(line)

    def _handle_stdout_line(self, line: str) -> None:
        event = parse_event_line(line)
        if event is None:
            if line.strip():
                self.log.emit(line.rstrip())
            return
        kind = event["event"]
        if kind == START and event.get("run_dir"):
            self._run_dir = str(event["run_dir"])
        elif kind == END:
            self._end_event = event
        elif kind == ERROR and event.get("interrupted"):
            self._interrupted = event
        elif kind == ERROR:
            self._error_message = str(event.get("message") or "training failed")
        self.event.emit(event)

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    # -- ending ------------------------------------------------------------------------------------
    def _flush(self) -> None:
        if self._process is None:
            return
        self._read_stdout()
        self._read_stderr()
        if self._stdout_buffer:
            self._handle_stdout_line(self._stdout_buffer.decode("utf-8", errors="replace"))
            self._stdout_buffer = b""
        if self._stderr_buffer:
            self._keep_stderr_line(self._stderr_buffer.decode("utf-8", errors="replace"))
            self._stderr_buffer = b""

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        self._flush()
        if self._end_event is not None:
            self.succeeded.emit(self._end_event)
            return
        if self._error_message is None and (self._interrupted is not None or self._stop_requested):
            interrupted = self._interrupted or {}
            self.stopped.emit({
                "run_dir": interrupted.get("run_dir") or self._run_dir,
                "message": interrupted.get("message") or "Training was stopped.",
            })
            return
        if self._error_message is not None:
            self.failed.emit(self._error_message)
            return
        if exit_status == QProcess.ExitStatus.CrashExit:
            message = "the training process crashed"
        else:
            message = f"the training process exited with code {exit_code} without finishing"
        tail = self.stderr_tail()
        self.failed.emit(f"{message}:\n{tail}" if tail else message)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            program = self._process.program() if self._process is not None else "?"
            self.failed.emit(f"could not start the training process ({program}): {self._process.errorString()}")
