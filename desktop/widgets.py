"""Small widgets more than one tab uses."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget


class FolderField(QWidget):
    """"Label: [folder path] Browse…": ``chosen`` fires with the path once the user settles on one.

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
