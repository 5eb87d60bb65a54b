"""How far a training run is: epoch and batch, learning rate, ETA, validation quality, device, progress bar;
and the Train tab's row of run buttons.

The Train tab's live figures, fed the child's JSON events (``start``, ``batch``, ``epoch``); the time left
comes from :class:`EtaEstimator`, from how long batches and epochs really take.
"""

from __future__ import annotations

import math
import time

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from training.core import format_duration


class EtaEstimator:
    """Time left in a run, from how long batches and epochs really take.

    The first batch of each epoch is left out of the per-batch pace: it also pays for graph
    building (first epoch) or for the previous epoch's validation and checkpoint. Once an epoch
    has finished, whole remaining epochs are costed at the measured epoch time (validation included).
    """

    def __init__(self) -> None:
        self.reset(epochs=0, batches=0)

    def reset(self, epochs: int, batches: int) -> None:
        self.epochs = epochs
        self.batches = batches
        self.seconds_per_batch: float | None = None
        self.epoch_seconds: list[float] = []
        self._last_batch: tuple[int, float] | None = None
        self._position: tuple[int, int] = (0, 0)

    def batch(self, epoch: int, batch: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._last_batch is not None and self._last_batch[0] == epoch and batch > 1:
            step = (now - self._last_batch[1]) / max(1, batch - self._position[1])
            self.seconds_per_batch = step if self.seconds_per_batch is None else 0.8 * self.seconds_per_batch + 0.2 * step
        self._last_batch = (epoch, now)
        self._position = (epoch, batch)

    def epoch(self, epoch: int, seconds: float | None) -> None:
        if seconds is not None and math.isfinite(seconds) and seconds > 0:
            self.epoch_seconds.append(float(seconds))
        self._position = (epoch, self.batches)

    def remaining(self) -> float | None:
        """Seconds left, or None before there is anything to go on."""
        epoch, batch = self._position
        if epoch == 0 or self.batches == 0:
            return None
        batches_left_now = max(0, self.batches - batch)
        epochs_after = max(0, self.epochs - epoch)
        if self.epoch_seconds:
            per_epoch = sum(self.epoch_seconds[-3:]) / len(self.epoch_seconds[-3:])
            per_batch = self.seconds_per_batch if self.seconds_per_batch is not None else per_epoch / self.batches
            return batches_left_now * per_batch + epochs_after * per_epoch
        if self.seconds_per_batch is None:
            return None
        return (batches_left_now + epochs_after * self.batches) * self.seconds_per_batch


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def epoch_quality_text(event: dict) -> str:
    """The label under the plots after an epoch: validation IoU, and AP50 over every face for a multi-face
    run (its ``val_ap50``) where a single-face run shows F1."""
    val_iou = event.get("val_iou")
    text = f"val IoU {val_iou:.3f}" if _is_number(val_iou) else "val IoU –"
    if _is_number(event.get("val_ap50")):
        return text + f" · AP50 {event['val_ap50']:.2f}"
    if _is_number(event.get("val_f1")):
        text += f" · F1 {event['val_f1']:.2f}"
    return text


class RunProgress(QWidget):
    """A row of figures (epoch, lr, ETA, val IoU and AP50 or F1, device) over a progress bar (0 to 1000)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._epochs_total = 0
        self._eta = EtaEstimator()
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.epoch_label = QLabel("Epoch –")
        self.lr_label = QLabel("lr –")
        self.eta_label = QLabel("ETA –")
        self.iou_label = QLabel("val IoU –")
        self.device_label = QLabel("device –")
        figures = QGridLayout()
        for column, label in enumerate(
            (self.epoch_label, self.lr_label, self.eta_label, self.iou_label, self.device_label)
        ):
            label.setFont(mono)
            figures.addWidget(label, 0, column)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(figures)
        layout.addWidget(self.bar)

    def reset(self, epochs: int) -> None:
        """A run is starting, of ``epochs`` epochs as far as is known yet."""
        self._epochs_total = epochs
        self._eta.reset(self._epochs_total, 0)
        self.bar.setValue(0)
        for label, text in ((self.epoch_label, "Epoch –"), (self.lr_label, "lr –"), (self.eta_label, "ETA –"),
                            (self.iou_label, "val IoU –")):
            label.setText(text)

    def start(self, event: dict) -> None:
        """The run's start event: its real epoch count, batches per epoch and device."""
        self._epochs_total = int(event.get("epochs") or self._epochs_total)
        batches = int(event.get("batches_per_epoch") or 0)
        self._eta.reset(self._epochs_total, batches)
        self.device_label.setText(f"device {event.get('device', '?')}")

    def batch(self, event: dict) -> None:
        epoch, batch = int(event.get("epoch") or 1), int(event.get("batch") or 0)
        batches = max(1, int(event.get("batches") or 1))
        epochs = max(1, int(event.get("epochs") or self._epochs_total or 1))
        self._eta.batches = batches
        self._eta.batch(epoch, batch)
        self.epoch_label.setText(f"Epoch {epoch}/{epochs} · batch {batch}/{batches}")
        self._show_lr(event.get("lr"))
        self.bar.setValue(round(1000 * ((epoch - 1) * batches + batch) / (epochs * batches)))
        self._show_eta()

    def epoch(self, event: dict) -> str:
        """Show a finished epoch; the line the log says about it."""
        epoch = int(event.get("epoch") or 0)
        epochs = max(1, int(event.get("epochs") or self._epochs_total or 1))
        self._eta.epoch(epoch, event.get("seconds"))
        self.epoch_label.setText(f"Epoch {epoch}/{epochs} done")
        self._show_lr(event.get("lr"))
        self.iou_label.setText(epoch_quality_text(event))
        self.bar.setValue(round(1000 * epoch / epochs))
        self._show_eta()
        # A multi-face run is judged by AP50 over every validation face, a single-face one by F1.
        quality = (f"val AP50 {event['val_ap50']:.3f}" if _is_number(event.get("val_ap50"))
                   else f"val F1 {event.get('val_f1', math.nan):.2f}")
        return (
            f"epoch {epoch}/{epochs}: loss {event.get('total_loss', math.nan):.4f}, "
            f"val loss {event.get('val_total_loss', math.nan):.4f}, val IoU {event.get('val_iou', math.nan):.3f}, "
            f"{quality}"
        )

    def end(self) -> None:
        """The run is over (finished, stopped or failed): no time left to show."""
        self.eta_label.setText("ETA –")

    def _show_lr(self, lr: object) -> None:
        if isinstance(lr, (int, float)):
            self.lr_label.setText(f"lr {lr:.2e}")

    def _show_eta(self) -> None:
        remaining = self._eta.remaining()
        self.eta_label.setText("ETA –" if remaining is None else f"ETA {format_duration(remaining)}")


class RunButtons(QWidget):
    """The Train tab's row of run buttons (Start, Stop, Resume, Use this model, Export…) and its status line;
    the tab connects them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.start = QPushButton("Start training")
        self.stop = QPushButton("Stop")
        self.stop.setToolTip("Stop now; the last finished epoch is kept (last.keras) and can be resumed")
        self.resume = QPushButton("Resume")
        self.resume.setToolTip("Continue the last stopped run up to the number of epochs set")
        self.use = QPushButton("Use this model")
        self.use.setToolTip("Detect with this run's best model (best.keras)")
        self.export = QPushButton("Export…")
        self.export.setToolTip("Write this run's best model as ONNX or TFLite (LiteRT), for other runtimes and "
                               "devices; the score threshold goes with it")
        self.status_label = QLabel("Ready.")
        self.status_label.setWordWrap(True)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for button in (self.start, self.stop, self.resume, self.use, self.export):
            layout.addWidget(button)
        layout.addWidget(self.status_label, 1)
