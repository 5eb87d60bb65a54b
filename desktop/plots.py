"""The Train tab's live loss plots: total, class and regression loss, train against validation.

The tutorial drew these three plots with matplotlib after training had ended; here they grow while
the child process trains: a thin line per batch and a point per epoch for training, a dashed line
per epoch for validation. The x axis is in epochs (batch k of n in epoch e sits at e - 1 + k/n).

pyqtgraph (about half of the window's start-up imports) is imported when the plots are first shown or fed,
not when the window is built: most starts never open the Train tab.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QWidget

#: (title, key in a batch/epoch event, key of the validation value in an epoch event)
LOSS_PANELS: tuple[tuple[str, str, str], ...] = (
    ("Total loss", "total_loss", "val_total_loss"),
    ("Class loss", "class_loss", "val_class_loss"),
    ("Regression loss", "regress_loss", "val_regress_loss"),
)

_TRAIN_COLOUR = (31, 119, 180)
_VAL_COLOUR = (214, 39, 40)


def _number(value: object) -> float:
    """A plottable float: None (JSON's NaN) and non-numbers become NaN, which the curves skip."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


class _LossPanel:
    """One PlotWidget with its three curves and their data."""

    def __init__(self, title: str) -> None:
        import pyqtgraph as pg

        self.widget = pg.PlotWidget(background="w")
        self.widget.setTitle(title, color="k", size="10pt")
        self.widget.setLabel("bottom", "epoch")
        self.widget.showGrid(x=True, y=True, alpha=0.3)
        self.widget.addLegend(offset=(-10, 10), labelTextColor="k", brush=pg.mkBrush(255, 255, 255, 200))
        self.widget.setMouseEnabled(x=False, y=False)
        self.batch_x: list[float] = []
        self.batch_y: list[float] = []
        self.epoch_x: list[float] = []
        self.train_y: list[float] = []
        self.val_y: list[float] = []
        self.batch_curve = self.widget.plot(
            [], [], pen=pg.mkPen((*_TRAIN_COLOUR, 110), width=1), name="train (batch)", connect="finite"
        )
        self.train_curve = self.widget.plot(
            [], [], pen=pg.mkPen(_TRAIN_COLOUR, width=2), symbol="o", symbolSize=6,
            symbolBrush=_TRAIN_COLOUR, symbolPen=None, name="train (epoch)", connect="finite",
        )
        self.val_curve = self.widget.plot(
            [], [], pen=pg.mkPen(_VAL_COLOUR, width=2, style=Qt.PenStyle.DashLine), symbol="s", symbolSize=6,
            symbolBrush=_VAL_COLOUR, symbolPen=None, name="validation (epoch)", connect="finite",
        )

    def clear(self) -> None:
        for values in (self.batch_x, self.batch_y, self.epoch_x, self.train_y, self.val_y):
            values.clear()
        self.batch_curve.setData([], [])
        self.train_curve.setData([], [])
        self.val_curve.setData([], [])


class LossPlots(QWidget):
    """Three live plots fed with the trainer's ``batch`` and ``epoch`` events."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._panels: dict[str, _LossPanel] = {}

    @property
    def panels(self) -> dict[str, _LossPanel]:
        """The three plots, made on first use (see the module's docstring)."""
        if not self._panels:
            for title, key, _val_key in LOSS_PANELS:
                panel = _LossPanel(title)
                self._panels[key] = panel
                self.layout().addWidget(panel.widget)
        return self._panels

    def showEvent(self, event) -> None:
        self.panels  # noqa: B018 - made now, before they are painted
        super().showEvent(event)

    def clear(self) -> None:
        for panel in self.panels.values():
            panel.clear()

    def add_batch(self, event: dict) -> None:
        """Plot one ``batch`` event (a point of the thin per-batch line)."""
        batches = max(1, int(event.get("batches") or 1))
        x = int(event.get("epoch") or 1) - 1 + int(event.get("batch") or 0) / batches
        for _title, key, _val_key in LOSS_PANELS:
            panel = self.panels[key]
            panel.batch_x.append(x)
            panel.batch_y.append(_number(event.get(key)))
            panel.batch_curve.setData(panel.batch_x, panel.batch_y)

    def add_epoch(self, event: dict) -> None:
        """Plot one ``epoch`` event: the epoch's training loss and its validation loss."""
        x = float(event.get("epoch") or 0)
        for _title, key, val_key in LOSS_PANELS:
            panel = self.panels[key]
            panel.epoch_x.append(x)
            panel.train_y.append(_number(event.get(key)))
            panel.val_y.append(_number(event.get(val_key)))
            panel.train_curve.setData(panel.epoch_x, panel.train_y)
            panel.val_curve.setData(panel.epoch_x, panel.val_y)

    def point_counts(self) -> dict[str, dict[str, int]]:
        """How many points each curve holds (what the curves really hold, read back from pyqtgraph)."""
        counts = {}
        for key, panel in self.panels.items():
            counts[key] = {
                name: 0 if curve.getData()[0] is None else len(curve.getData()[0])
                for name, curve in (("batch", panel.batch_curve), ("train", panel.train_curve), ("val", panel.val_curve))
            }
        return counts
