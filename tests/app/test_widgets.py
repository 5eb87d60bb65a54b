"""Widgets the tabs share."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from desktop.widgets import FolderField


def test_folder_field_reports_the_typed_folder_when_editing_finishes(qtbot, tmp_path):
    field = FolderField("Dataset:", "a folder", "Choose a folder")
    qtbot.addWidget(field)
    field.show()
    qtbot.waitExposed(field)
    assert field.findChild(QLabel).text() == "Dataset:" and field.browse_button.text() == "Browse…"
    chosen: list[str] = []
    field.chosen.connect(chosen.append)

    qtbot.keyClicks(field.edit, f"  {tmp_path}  ")
    assert chosen == []  # not on every keystroke: a half-typed path is not a dataset
    qtbot.keyClick(field.edit, Qt.Key.Key_Return)
    assert chosen == [str(tmp_path)] and field.text() == str(tmp_path)
