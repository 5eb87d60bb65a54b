"""The Detect tab's source list: the cameras found, the video file or picture folder in use, and
"Video file…" / "Picture folder…" to choose another.

:class:`SourcePicker` says which source the user picked (``chosen``: a camera index as text, a video file
or a picture folder); the tab opens it and shows it again with :meth:`show_source`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QToolButton, QWidget

from desktop.sources import VIDEO_SUFFIXES, camera_index


class SourcePicker(QWidget):
    """"Source: [Camera 0 ▾] [⟳]": ``chosen`` fires with the source the user picked; ``scan_button`` (⟳) is for
    the tab to look for cameras, whose answer :meth:`set_cameras` lists."""

    chosen = Signal(str)

    def __init__(self, spec: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self._cameras: list[int] = []
        self.combo = QComboBox()
        self.combo.setMinimumContentsLength(16)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.activated.connect(self._on_source_chosen)
        self.scan_button = QToolButton()
        self.scan_button.setText("⟳")
        self.scan_button.setToolTip("Look for cameras again")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Source:"))
        layout.addWidget(self.combo)
        layout.addWidget(self.scan_button)
        self.show_source(spec)

    def cameras(self) -> list[int]:
        """The camera indexes found by the last scan (0 always listed: the usual webcam)."""
        return sorted(set(self._cameras) | {0})

    def set_cameras(self, cameras: list[int]) -> None:
        """A scan found these cameras: list them (⟳ can be pressed again)."""
        self.scan_button.setEnabled(True)
        self._cameras = sorted(set(cameras))
        self.show_source(self.spec)

    def show_source(self, spec: str) -> None:
        """List the cameras and ``spec`` (the source in use), and select it."""
        self.spec = spec
        combo = self.combo
        combo.blockSignals(True)
        combo.clear()
        cameras = self.cameras()
        camera = camera_index(spec)
        if camera is not None and camera not in cameras:
            cameras = sorted([*cameras, camera])
        for index in cameras:
            combo.addItem(f"Camera {index}", str(index))
        if camera is None:
            path = Path(spec)
            combo.addItem(path.name + ("/" if path.is_dir() else ""), spec)
            combo.setItemData(combo.count() - 1, spec, Qt.ItemDataRole.ToolTipRole)
        combo.insertSeparator(combo.count())
        combo.addItem("Video file…", ":video")
        combo.addItem("Picture folder…", ":folder")
        combo.setCurrentIndex(max(combo.findData(spec), 0))
        combo.blockSignals(False)

    @Slot(int)
    def _on_source_chosen(self, index: int) -> None:
        choice = self.combo.itemData(index)
        if choice == ":video":
            self.choose_video()
        elif choice == ":folder":
            self.choose_picture_folder()
        elif choice:
            self.chosen.emit(choice)
        else:
            self.show_source(self.spec)

    def _dialog_start(self) -> str:
        return str(Path(self.spec).parent) if camera_index(self.spec) is None else str(Path.home())

    @Slot()
    def choose_video(self) -> bool:
        """Ask for a video file and pick it; False if cancelled."""
        patterns = " ".join(f"*{suffix}" for suffix in VIDEO_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", self._dialog_start(),
                                              f"Videos ({patterns});;All files (*)")
        return self._pick(path)

    @Slot()
    def choose_picture_folder(self) -> bool:
        """Ask for a folder of pictures and pick it; False if cancelled."""
        return self._pick(QFileDialog.getExistingDirectory(self, "Open a folder of pictures", self._dialog_start()))

    def _pick(self, path: str) -> bool:
        if path:
            self.chosen.emit(path)
        else:
            self.show_source(self.spec)  # dialog cancelled: show the current source again
        return bool(path)
