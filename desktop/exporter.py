"""Export a model from the app: ask for the file (its type picks ONNX or TFLite), then export in a child.

The export is the command line's own (``facetracker-train export MODEL --out FILE --progress json``,
:mod:`training.inference.export`), run as a child process like training (:mod:`desktop.child_process`): the
conversion holds the GIL for seconds and loads converters the app otherwise never needs, so it
stays out of the GUI process, and its result or its one-line error comes back as a JSON event.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from desktop.child_process import TrainingProcess

#: The save dialog's file types, each with the format it exports to (training.inference.export.FORMATS).
EXPORT_FILTERS = {
    "ONNX, for ONNX Runtime (*.onnx)": ("onnx", ".onnx"),
    "TFLite, for LiteRT (*.tflite)": ("tflite", ".tflite"),
}


def export_target(path: str, chosen_filter: str) -> Path:
    """The file to write from the save dialog's answer: its name, with the chosen type's suffix added
    when the name has neither export suffix (``best`` + the TFLite filter -> ``best.tflite``)."""
    target = Path(path)
    suffixes = {suffix for _fmt, suffix in EXPORT_FILTERS.values()}
    if target.suffix.lower() in suffixes:
        return target
    _fmt, suffix = EXPORT_FILTERS.get(chosen_filter, next(iter(EXPORT_FILTERS.values())))
    return target.with_name(target.name + suffix)


class ModelExporter(QObject):
    """Runs one export at a time in a child process and says how it went.

    Signals:
        status(str, bool): a line for the user, and whether it reports an error.
        finished(): the export ended, written or not (buttons can be enabled again).
    """

    status = Signal(str, bool)
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process = TrainingProcess(self)
        self.process.succeeded.connect(self._on_succeeded)
        self.process.failed.connect(self._on_failed)
        self.process.stopped.connect(lambda _info: self._on_failed("the export was stopped"))
        self.target: Path | None = None

    def is_running(self) -> bool:
        return self.process.is_running()

    def ask_and_export(self, model: Path, parent: QWidget | None = None) -> None:
        """Ask where to write ``model``'s export (ONNX or TFLite, by the file type), then export it."""
        filters = list(EXPORT_FILTERS)
        path, chosen = QFileDialog.getSaveFileName(parent, "Export the model for other runtimes",
                                                   str(model.with_suffix(".onnx")), ";;".join(filters), filters[0])
        if path:
            self.export(model, export_target(path, chosen))

    def export(self, model: Path, target: Path) -> None:
        """Start exporting ``model`` to ``target`` (``.onnx`` or ``.tflite``) in the background."""
        if self.is_running():
            self.status.emit("An export is already running.", True)
            return
        self.target = Path(target)
        self.status.emit(f"Exporting {Path(model).name} to {self.target} (converting, then checking it "
                         "gives the same boxes) …", False)
        self.process.start(["export", str(model), "--out", str(self.target), "--progress", "json"])

    def _on_succeeded(self, end: dict) -> None:
        threshold = (end.get("metadata") or {}).get("score_threshold")
        sidecar = Path(str(end.get("sidecar") or "")).name
        kept = f"score threshold {threshold:.2f} in {sidecar}" if isinstance(threshold, (int, float)) else sidecar
        self.status.emit(f"Exported to {end.get('path', self.target)} ({kept}); {end.get('runtime')} gives the "
                         "same score and box as the .keras model.", False)
        self.finished.emit()

    def _on_failed(self, message: str) -> None:
        self.status.emit(f"Export failed: {message}", True)
        self.finished.emit()

    def shutdown(self) -> None:
        """Stop a running export (the app is closing); nothing half-written is left (atomic writes)."""
        self.process.shutdown()
