"""A form of training settings, built from the settings table (``training.engine.settings``).

As magicgui builds napari's widgets from a function's signature, :class:`SettingsForm` builds one widget
per setting from what the table says about it (its kind, default, choices, range, label and help):

========================================  ==============================================================
setting                                   widget
========================================  ==============================================================
choices                                   QComboBox of the choices
bool                                      QCheckBox, its label the box's text
int                                       QSpinBox over its range; "auto" (None) just below the range
float with ``decimals``                   QDoubleSpinBox over its range; "auto" just below it
float without                             QLineEdit taking scientific notation (1e-4); empty: None
str naming a folder (``folder``)          :class:`desktop.widgets.FolderField`
other str                                 QLineEdit
========================================  ==============================================================

The form reads and writes the values as a :class:`TrainConfig`'s fields, and remembers them in
``QSettings`` under ``train/<name>``, as the Train tab always has (typed reads from
:mod:`desktop.settings`: a value that makes no sense falls back to the default).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from desktop.settings import read_bool, read_float, read_int, read_str
from desktop.widgets import FolderField
from training.engine import Setting, TrainConfig, setting

KEY_PREFIX = "train/"


def settings_key(name: str, prefix: str = KEY_PREFIX) -> str:
    """Where a setting is remembered (``train/epochs``)."""
    return prefix + name


def widget_for(s: Setting) -> QWidget:
    """The widget that shows setting ``s``, with its range, choices, default and tooltip."""
    if s.choices:
        widget: QWidget = QComboBox()
        widget.addItems(list(s.choices))
        if s.default is not None:
            widget.setCurrentText(str(s.default))
    elif s.kind is bool:
        widget = QCheckBox(s.label)
        widget.setChecked(bool(s.default))
    elif s.kind is int:
        widget = QSpinBox()
        low, high = (int(v) for v in (s.range or (0, 2**31 - 1)))
        widget.setRange(low - 1 if s.auto else low, high)
        if s.auto:
            widget.setSpecialValueText(s.auto)
        widget.setSuffix(s.suffix)
        widget.setValue(s.default if s.default is not None else widget.minimum())
    elif s.kind is float and s.decimals:
        widget = QDoubleSpinBox()
        widget.setDecimals(s.decimals)
        low, high = s.range or (0.0, 1e9)
        widget.setRange(low - 10.0 ** -s.decimals if s.auto else low, high)
        if s.auto:
            widget.setSpecialValueText(s.auto)
        widget.setSuffix(s.suffix)
        widget.setValue(s.default if s.default is not None else widget.minimum())
    elif s.kind is str and s.folder:
        widget = FolderField("", s.auto or "", f"{s.label.rstrip(':')}: choose a folder")
    else:  # a float typed as text (a learning rate: 1e-4), or a plain text
        widget = QLineEdit()
        if s.kind is float:
            low, high = s.range or (-math.inf, math.inf)
            validator = QDoubleValidator(low, high, 10, widget)
            validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
            widget.setValidator(validator)
        if s.auto:
            widget.setPlaceholderText(s.auto)
        if s.default is not None:
            widget.setText(str(s.default))
    widget.setObjectName(s.name)
    widget.setToolTip(s.tip())
    return widget


def _line_edit(widget: QWidget) -> QLineEdit | None:
    if isinstance(widget, FolderField):
        return widget.edit
    return widget if isinstance(widget, QLineEdit) else None


class SettingsForm(QWidget):
    """One row per setting named (in the order given), each widget made by :func:`widget_for`.

    ``widgets[name]`` is a setting's widget; :meth:`values` / :meth:`set_values` read and write them as
    :class:`TrainConfig` fields; :meth:`restore` / :meth:`save` remember them in ``QSettings``.
    ``changed`` fires when the user changes any of them (a text field: when editing finishes)."""

    changed = Signal()

    def __init__(self, names: Iterable[str], parent: QWidget | None = None, key_prefix: str = KEY_PREFIX) -> None:
        super().__init__(parent)
        self.key_prefix = key_prefix
        self.settings_shown: tuple[Setting, ...] = tuple(setting(name) for name in names)
        self.widgets: dict[str, QWidget] = {}
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        for s in self.settings_shown:
            widget = widget_for(s)
            self.widgets[s.name] = widget
            if isinstance(widget, QCheckBox):
                self.form.addRow(widget)
                widget.toggled.connect(self.changed)
            else:
                self.form.addRow(s.label, widget)
                if isinstance(widget, QComboBox):
                    widget.currentTextChanged.connect(self.changed)
                elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
                    widget.valueChanged.connect(self.changed)
                else:
                    _line_edit(widget).editingFinished.connect(self.changed)

    def insert_row(self, after: str, label: str, widget: QWidget) -> None:
        """Put a row of the caller's own (``label``, ``widget``) right after setting ``after``'s row."""
        row, _role = self.form.getWidgetPosition(self.widgets[after])
        self.form.insertRow(row + 1, label, widget)

    # ---------------------------------------------------------------------------------------- values
    def value(self, name: str) -> Any:
        """A setting's value as a TrainConfig field (None: "auto"); ValueError for a text that is not a number."""
        s, widget = setting(name), self.widgets[name]
        if isinstance(widget, QComboBox):
            return widget.currentText()
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            value = widget.value()
            return None if s.auto and value == widget.minimum() else value
        text = _line_edit(widget).text().strip()
        if s.kind is not float:
            return text or s.default
        if not text:
            return None
        try:
            value = float(text.replace(",", "."))
        except ValueError:
            value = math.nan
        low, high = s.range or (-math.inf, math.inf)
        if not (math.isfinite(value) and value > 0 and low <= value <= high):
            raise ValueError(f"{s.label.rstrip(':')} must be a positive number like 1e-4 (or empty for auto), "
                             f"not {text!r}.")
        return value

    def set_value(self, name: str, value: Any) -> None:
        """Show ``value`` (a TrainConfig field; None: "auto") in a setting's widget."""
        s, widget = setting(name), self.widgets[name]
        if isinstance(widget, QComboBox):
            if value in (s.choices or ()):
                widget.setCurrentText(value)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            widget.setValue(widget.minimum() if value is None else value)
        else:
            _line_edit(widget).setText("" if value is None else str(value))

    def values(self) -> dict[str, Any]:
        """Every setting shown, as TrainConfig fields (ValueError when a typed number is not one)."""
        return {s.name: self.value(s.name) for s in self.settings_shown}

    def set_values(self, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            if name in self.widgets:
                self.set_value(name, value)

    def config(self, **fields: Any) -> TrainConfig:
        """A TrainConfig of the settings shown, ``fields`` (``data=``, ...) added or overriding them."""
        return TrainConfig(**{**self.values(), **fields})

    def set_config(self, config: TrainConfig) -> None:
        self.set_values({s.name: getattr(config, s.name) for s in self.settings_shown})

    def set_enabled(self, enabled: bool) -> None:
        for widget in self.widgets.values():
            widget.setEnabled(enabled)

    # ------------------------------------------------------------------------------------- QSettings
    def key(self, name: str) -> str:
        return settings_key(name, self.key_prefix)

    def save(self, settings: QSettings) -> None:
        """Remember every value shown (a number as shown, "auto" included; a typed number as typed)."""
        for name, widget in self.widgets.items():
            if isinstance(widget, QComboBox):
                stored: Any = widget.currentText()
            elif isinstance(widget, QCheckBox):
                stored = widget.isChecked()
            elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
                stored = widget.value()
            else:
                stored = _line_edit(widget).text().strip()
            settings.setValue(self.key(name), stored)

    def restore(self, settings: QSettings, defaults: Mapping[str, Any | Callable[[], Any]] | None = None) -> None:
        """Show the remembered values, else the defaults: the table's, or ``defaults[name]``; a callable default is
        called once the other settings are restored (the epochs that follow the restored backbone). A setting
        without either (None, and no "auto" to show it) keeps what its widget shows."""
        defaults = dict(defaults or {})
        later = [s for s in self.settings_shown if callable(defaults.get(s.name))]
        for s in [s for s in self.settings_shown if s not in later] + later:
            default = defaults.get(s.name, s.default)
            self._restore_one(settings, s, default() if callable(default) else default)

    def _restore_one(self, settings: QSettings, s: Setting, default: Any) -> None:
        key, widget = self.key(s.name), self.widgets[s.name]
        if isinstance(widget, QComboBox):
            text = read_str(settings, key, "" if default is None else str(default))
            self.set_value(s.name, text if text in (s.choices or ()) else default)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(read_bool(settings, key, bool(default)))
        elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            read = read_int if isinstance(widget, QSpinBox) else read_float
            if default is None and not s.auto:  # nothing to fall back on: what the widget shows stays
                if settings.contains(key):
                    widget.setValue(read(settings, key, widget.value()))
                return
            value = read(settings, key, widget.minimum() if default is None else default)
            low = widget.minimum() + (1 if isinstance(widget, QSpinBox) else 10.0 ** -widget.decimals())
            if s.auto and not low <= value <= widget.maximum():
                value = widget.minimum()  # "auto", and what an older version saved for it (0)
            widget.setValue(value)
        else:
            _line_edit(widget).setText(read_str(settings, key, "" if default is None else str(default)))
