"""The Train tab's "Fine-tune the model in use": a short run from the Detect tab's model (``--from``).

The Detect tab says which model it runs (``set_model``); ticked, the next Start fine-tunes that model on
the whole dataset, kept frames included, for fewer epochs at a lower rate (``training.engine.finetune``), and the
verdict compares the new model with it. The box says what it will start from before Start, or why it
cannot (no model of one's own yet, an exported model, a file that is gone); reading the model's backbone
costs no Keras import (``training.engine.finetune.inspect_start_model`` reads the archive's config.json).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QLabel, QVBoxLayout, QWidget

from training.core import TrainingError
from training.engine import StartModel, inspect_start_model
from training.model import FINETUNE_EPOCHS, FINETUNE_RATE_FACTOR, finetune_learning_rate


class FineTunePanel(QWidget):
    """A checkbox and a line: what a fine-tune starts from, and its defaults (or why there is none)."""

    changed = Signal()  # ticked, unticked, or another model in use

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.check = QCheckBox("Fine-tune the model in use")
        self.check.setToolTip(
            f"A short run from the model the Detect tab uses, on the whole dataset (your older pictures too, so it "
            f"keeps what it knew, and the frames you kept): {FINETUNE_EPOCHS} epochs at {FINETUNE_RATE_FACTOR:g} of "
            "the backbone's rate unless you change them. The verdict compares the new model with the one in use; "
            "\"Use this model\" switches to it only when you press it")
        self.check.toggled.connect(lambda _checked: self.changed.emit())
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setStyleSheet("color: palette(dark);")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check)
        layout.addWidget(self.label)
        self._start: StartModel | None = None
        self.set_model(None)

    @Slot(object)
    def set_model(self, model: Any) -> None:
        """The Detect tab's model: a Detector (its ``path``), a path, or None (no model of one's own)."""
        path = getattr(model, "path", model)
        self._start = None
        if not path:
            problem = "No model of your own in use yet: a new run starts from the pretrained face detector."
        else:
            try:
                self._start = inspect_start_model(Path(path))
                problem = ""
            except TrainingError as exc:
                problem = f"Cannot fine-tune the model in use: {exc}"
        self.check.setEnabled(self._start is not None)
        if self._start is None:
            self.check.setChecked(False)
        self.label.setText(html.escape(problem) if problem else self._describe())
        self.changed.emit()

    def _describe(self) -> str:
        start = self._start
        rate = finetune_learning_rate(start.backbone)
        return (f"{html.escape(start.path.name)} ({start.backbone}, {start.input_size} px): {FINETUNE_EPOCHS} epochs "
                f"at {rate:.0e} unless set above, on the whole dataset; the verdict compares it with the new model")

    def start_model(self) -> StartModel | None:
        """The model to fine-tune: the one in use when the box is ticked, else None (a new run)."""
        return self._start if self.check.isChecked() and self._start is not None else None

    def active(self) -> bool:
        return self.start_model() is not None
