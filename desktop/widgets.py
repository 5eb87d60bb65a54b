"""Small widgets more than one tab uses."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QToolButton,
    QWidget,
)


class FolderField(QWidget):
    """"Label: [folder path] Browse…" (``label`` "": without it): ``chosen`` fires with the path once the user
    settles on one.

    Typing fires it when editing finishes (Enter or leaving the field); Browse fires it when the
    dialog returns a folder (Cancel changes nothing). ``edit`` is the line edit itself.
    """

    chosen = Signal(str)

    def __init__(self, label: str, placeholder: str, dialog_title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dialog_title = dialog_title
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.editingFinished.connect(self._on_edited)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self.browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if label:  # none where a form row has the words already
            layout.addWidget(QLabel(label))
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.browse_button)

    def text(self) -> str:
        return self.edit.text().strip()

    @Slot()
    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.dialog_title, self.edit.text() or str(Path.home()))
        if folder:
            self.edit.setText(folder)
            self.chosen.emit(folder)

    @Slot()
    def _on_edited(self) -> None:
        self.chosen.emit(self.text())


def add_action(widget: QWidget, text: str, keys: list[QKeySequence | Qt.Key | str], slot) -> QAction:
    """A shortcut (``keys``) of ``widget`` and its children that runs ``slot`` (:func:`action_button`: a button
    that shows and runs it)."""
    act = QAction(text, widget)
    act.setShortcuts([QKeySequence(k) for k in keys])
    act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    act.triggered.connect(slot)
    widget.addAction(act)
    return act


def action_button(action: QAction) -> QToolButton:
    """A tool button that shows and runs ``action`` (its text, tooltip and enabled state)."""
    button = QToolButton()
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    button.setDefaultAction(action)
    return button


class PictureList(QListWidget):
    """The Label tab's list of pictures, one line per ``desktop.label_session.LabelEntry`` (its text and tooltip
    from ``list_text`` / ``list_tooltip``). Changes made here do not fire ``currentRowChanged``: only the
    user's do."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(180)

    @staticmethod
    def _decorate(item: QListWidgetItem, entry) -> None:
        from desktop.label_session import list_text, list_tooltip

        item.setText(list_text(entry))
        item.setToolTip(list_tooltip(entry))

    def follow(self, session) -> None:
        """Keep the lines those of ``session``'s pictures (a ``desktop.label_session.LabelSession``)."""
        session.events.entries.connect(lambda: self.fill(session.entries))
        session.events.entry.connect(lambda index: self.refresh(index, session.entries[index]))
        session.events.removed.connect(self.remove)

    def fill(self, entries) -> None:
        self.blockSignals(True)
        self.clear()
        for entry in entries:
            item = QListWidgetItem()
            self._decorate(item, entry)
            self.addItem(item)
        self.blockSignals(False)

    def refresh(self, index: int, entry) -> None:
        item = self.item(index)
        if item is not None:
            self._decorate(item, entry)

    def remove(self, index: int) -> None:
        self.blockSignals(True)
        self.takeItem(index)
        self.blockSignals(False)

    def select(self, index: int) -> None:
        self.blockSignals(True)
        self.setCurrentRow(index)
        self.blockSignals(False)
