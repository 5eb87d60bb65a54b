"""The Detect tab's "Threshold 0.60 [slider] [x] Smooth boxes" row: the live view's score threshold and box
smoothing, as one widget with two signals (the tab decides what they change)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QWidget


class ThresholdControl(QWidget):
    """A 0-100 slider for the threshold (a face scores *above* it: 1.00 hides every box), its label, and the
    smoothing box. ``threshold_changed`` gives the threshold in [0, 1]; ``smoothing_changed`` the box's state."""

    threshold_changed = Signal(float)
    smoothing_changed = Signal(bool)

    def __init__(self, threshold: float, smoothing: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(round(threshold * 100))
        self.slider.setToolTip("Only faces scored above this are boxed")
        self.label = QLabel()
        self.label.setMinimumWidth(110)
        self.smoothing_box = QCheckBox("Smooth boxes")
        self.smoothing_box.setToolTip("Average each face's box over frames so it does not jitter")
        self.smoothing_box.setChecked(smoothing)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.smoothing_box)
        self.slider.valueChanged.connect(self._on_value)
        self.smoothing_box.toggled.connect(self.smoothing_changed)
        self._show()

    @Slot(int)
    def _on_value(self, value: int) -> None:
        self._show()
        self.threshold_changed.emit(value / 100.0)

    def _show(self) -> None:
        self.label.setText(f"Threshold {self.slider.value() / 100:.2f}")
