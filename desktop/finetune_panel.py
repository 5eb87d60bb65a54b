"""The Train tab's "Fine-tune the model in use": a short run from the Detect tab's model (``--from``).

The Detect tab says which model it runs (``set_model``); ticked, the next Start fine-tunes that model on
the whole dataset, kept frames included, for fewer epochs at a lower rate (``training.engine.finetune``), and the
verdict compares the new model with it. The box says what it will start from before Start, or why it
cannot (no model of one's own yet, an exported model, a file that is gone); reading the model's backbone
costs no Keras import (``training.engine.finetune.inspect_start_model`` reads the archive's config.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QCheckBox, QLineEdit, QSpinBox, QVBoxLayout, QWidget

from training.core import TrainingError
from training.engine import StartModel, inspect_start_model
from training.model import FINETUNE_EPOCHS, FINETUNE_RATE_FACTOR, finetune_learning_rate


class FineTunePanel(QWidget):
    """One checkbox, one line: "Fine-tune best.keras (blazeface): 3 epochs at 1e-05", or, disabled, why there
    is nothing to fine-tune (the whole reason in its tooltip). One line: a wrapped label's height is
    squeezed in the settings form when the window is short."""

    changed = Signal()  # ticked, unticked, or another model in use

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.check = QCheckBox()
        self.check.toggled.connect(lambda _checked: self.changed.emit())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check)
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
                problem = str(exc)
        self.check.setEnabled(self._start is not None)
        if self._start is None:
            self.check.setChecked(False)
            self.check.setText("Fine-tune the model in use (" + ("none of your own yet" if not path else
                                                                  f"not {_short(Path(path).name, 24)}") + ")")
            self.check.setToolTip(problem)
        else:
            start = self._start
            rate = finetune_learning_rate(start.backbone)
            self.check.setText(f"Fine-tune {_short(start.path.name, 24)} ({start.backbone}): {FINETUNE_EPOCHS} "
                               f"epochs at {rate:.0e}")
            self.check.setToolTip(
                f"A short run from the model the Detect tab uses ({start.path}) instead of from the start, on the "
                f"whole dataset (your older pictures too, so it keeps what it knew, and the frames you kept): "
                f"{FINETUNE_EPOCHS} epochs at {_share(FINETUNE_RATE_FACTOR)} of the backbone's rate unless you set "
                "Epochs and Learning rate above. The verdict compares the new model with the one in use; \"Use this "
                "model\" switches to it only when you press it")
        self.changed.emit()

    def start_model(self) -> StartModel | None:
        """The model to fine-tune: the one in use when the box is ticked, else None (a new run)."""
        return self._start if self.check.isChecked() and self._start is not None else None

    def active(self) -> bool:
        return self.start_model() is not None


def _share(fraction: float) -> str:
    return "a tenth" if fraction == 0.1 else f"{fraction:g}"


def _short(text: str, length: int) -> str:
    """The text cut to ``length`` characters with an ellipsis (the whole of it is in the tooltip)."""
    return text if len(text) <= length else text[: length - 1] + "…"


class FineTuneSettings:
    """While a fine-tune is chosen, the Train tab's epochs and rate show the fine-tune's (3 epochs, a tenth of
    the rate); unticked, the user's own come back. ``epochs_before`` is the user's epochs while hidden."""

    def __init__(self, epochs_spin: QSpinBox, lr_edit: QLineEdit) -> None:
        self.epochs_spin, self.lr_edit = epochs_spin, lr_edit
        self.epochs_before: int | None = None

    def switch(self, start: StartModel | None) -> None:
        self.epochs_spin.blockSignals(True)  # the user's epochs stay remembered as they were
        if start is not None and self.epochs_before is None:
            self.epochs_before = self.epochs_spin.value()
            self.epochs_spin.setValue(FINETUNE_EPOCHS)
        elif start is None and self.epochs_before is not None:
            self.epochs_spin.setValue(self.epochs_before)
            self.epochs_before = None
        self.epochs_spin.blockSignals(False)
        self.lr_edit.setPlaceholderText(f"auto ({finetune_learning_rate(start.backbone):.0e}: a tenth of the "
                                        "backbone's own)" if start is not None else "auto (the backbone's own)")
