"""The Label tab: go through a dataset's pictures and box every face in each, or mark it "no face".

What the tutorial did in labelme, without leaving the app, and faster: every new picture comes
with suggested boxes, one per face (from MTCNN, a pretrained face detector; or BlazeFace, the fast pretrained
detector a new run starts from; or the user's model, or the classic LBP face finder), so labelling is mostly
pressing → and correcting now and then.
"Suggest all" pre-labels every unlabelled picture in a background thread
(``training.inference.autolabel.autolabel_dataset``); those labels are marked as suggested, shown as such, and
become the user's own once accepted (→) or corrected. Labels are written with
``training.data.dataset.write_labelme``, so they are the labelme JSON the trainer reads and labelme opens:
``DATASET/images/x.jpg`` gets ``DATASET/labels/x.json``. A picture counts as labelled when its JSON
exists; a "no face" picture gets a JSON with no shapes, so it is told apart from one not yet seen.

Keys: → or D next (accepts the suggested boxes or label), ← or A previous, N no face, Delete or
Backspace removes the selected box, Ctrl+Z undoes the picture's last edit, Ctrl+Shift+Z or Ctrl+Y
redoes it, Ctrl+Delete moves the picture (and its label) to ``DATASET/trash/``, Enter accepts the
suggestion, U jumps to the next unlabelled or not yet reviewed picture.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSettings, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop import settings as keys
from desktop.background import LatestOnly
from desktop.box_handles import Handle, dragged_box, hit_test
from desktop.imaging import bgr_to_qimage
from desktop.kept_frames import KeptReview
from desktop.label_session import (
    BLAZEFACE,
    BROKEN,
    CLASSIC,
    ENGINE_NAMES,
    FACE,
    FACE_THRESHOLD,
    MIN_BOX_PX,
    MODEL,
    MTCNN,
    NO_FACE,
    UNLABELLED,
    Box,
    LabelEntry,
    LabelError,
    LabelSession,
    Suggestion,
    Tone,
    clamp_box,
    history_text,
    saved_text,
    scan_dataset,
)
from desktop.settings import read_str
from desktop.suggestions import SuggestBar, Suggester, run_suggest_all, suggest_all_text
from desktop.widgets import FolderField, PictureList, action_button, add_action
from training.data import label_path_for
from training.inference import AutolabelReport, mtcnn_available

# The names the tab has always offered (tests and callers import them from here).
__all__ = [
    "BLAZEFACE", "BROKEN", "CLASSIC", "ENGINE_NAMES", "FACE", "FACE_THRESHOLD", "MIN_BOX_PX", "MODEL", "MTCNN", "NO_FACE",
    "UNLABELLED", "Box", "BoxCanvas", "LabelEntry", "LabelTab", "Suggestion", "clamp_box", "label_path_for",
    "run_suggest_all", "scan_dataset",
]

_TONE_COLOURS = {
    Tone.PLAIN: None,
    Tone.FACE: QColor(40, 150, 60, 210),
    Tone.NO_FACE: QColor(180, 40, 40, 210),
    Tone.SUGGESTED: QColor(160, 100, 0, 210),
    Tone.NOT_FOUND: QColor(120, 80, 0, 210),
}


# ------------------------------------------------------------------------------------------------ canvas


class BoxCanvas(QWidget):
    """The picture, scaled to fit, with every face rectangle: a click selects one (its handles show), a
    drag on the picture draws a new one, a drag of the selected one (or of any box's edge) moves or
    resizes it.

    Coordinates are kept in the picture's own pixels; only painting and hit-testing use the widget's.
    Each finished gesture fires one signal: ``box_added(box)``, ``box_changed(index, box)``, or
    ``selection_changed(index)`` (-1: none) for a click. The view's state (boxes, selection) is set
    from the session after each of them.
    """

    box_added = Signal(tuple)
    box_changed = Signal(int, tuple)
    selection_changed = Signal(int)
    HANDLE_PX = 8.0
    MARGIN_PX = 6.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self._image: QImage | None = None
        self._size = (0, 0)
        self._boxes: list[Box] = []
        self._selected: int | None = None
        self._scores: tuple[float, ...] = ()
        self._suggested = False
        self._banner = ""
        self._banner_colour = QColor(40, 40, 40, 200)
        # While the mouse is down: the handle, the box's index (None: a new box), the start point, the box then.
        self._drag: tuple[Handle, int | None, tuple[float, float], Box | None] | None = None
        self._drag_pos: QPointF | None = None  # where the pointer is while dragging
        self._moved = False

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    # -- content ---------------------------------------------------------------------------------
    def set_image(self, frame_bgr: np.ndarray | None) -> None:
        self._drag = None
        if frame_bgr is None:
            self._image, self._size = None, (0, 0)
        else:
            self._image = bgr_to_qimage(frame_bgr)
            self._size = (frame_bgr.shape[1], frame_bgr.shape[0])
        self.update()

    def set_boxes(self, boxes, selected: int | None = None, suggested: bool = False,
                  scores: tuple[float, ...] = ()) -> None:
        """Show these boxes (picture pixels), box ``selected`` with its handles, dashed when ``suggested``."""
        self._boxes = [tuple(float(v) for v in box) for box in boxes]
        self._selected = selected if selected is not None and 0 <= selected < len(self._boxes) else None
        self._suggested = suggested and bool(self._boxes)
        self._scores = tuple(scores) if len(scores) == len(self._boxes) else ()
        self.update()

    def set_box(self, box: Box | None, suggested: bool = False) -> None:
        """One box or none (the single-face way of saying it)."""
        self.set_boxes([] if box is None else [box], None, suggested)

    def boxes(self) -> list[Box]:
        return list(self._boxes)

    def box(self) -> Box | None:
        """The selected box, else the first one; None without boxes."""
        if self._selected is not None:
            return self._boxes[self._selected]
        return self._boxes[0] if self._boxes else None

    def selected(self) -> int | None:
        return self._selected

    def is_suggestion(self) -> bool:
        return self._suggested

    def set_banner(self, text: str, colour: QColor | None = None) -> None:
        self._banner = text
        self._banner_colour = colour or QColor(40, 40, 40, 200)
        self.update()

    def banner(self) -> str:
        return self._banner

    # -- geometry --------------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the picture is drawn: as large as fits, centred, aspect kept."""
        width, height = self._size
        if not width or not height:
            return QRectF()
        area = QRectF(self.rect()).adjusted(self.MARGIN_PX, self.MARGIN_PX, -self.MARGIN_PX, -self.MARGIN_PX)
        scale = min(area.width() / width, area.height() / height)
        w, h = width * scale, height * scale
        return QRectF(area.x() + (area.width() - w) / 2, area.y() + (area.height() - h) / 2, w, h)

    def to_image(self, point: QPointF) -> tuple[float, float]:
        """A widget point in picture pixels, clamped to the picture."""
        rect = self.image_rect()
        scale = rect.width() / self._size[0]
        x = (point.x() - rect.x()) / scale
        y = (point.y() - rect.y()) / scale
        return (min(max(x, 0.0), float(self._size[0])), min(max(y, 0.0), float(self._size[1])))

    def to_widget(self, x: float, y: float) -> QPointF:
        rect = self.image_rect()
        scale = rect.width() / self._size[0]
        return QPointF(rect.x() + x * scale, rect.y() + y * scale)

    def _box_rect(self, box: Box) -> QRectF:
        x1, y1, x2, y2 = box
        return QRectF(self.to_widget(x1, y1), self.to_widget(x2, y2))

    def _hit(self, pos: QPointF) -> tuple[Handle, int | None]:
        """What a press at ``pos`` grabs (``desktop.box_handles``): the selected box first (its handles or
        inside), then the other boxes, the one drawn last first; NEW (a new box) on bare picture."""
        order = list(range(len(self._boxes) - 1, -1, -1))
        if self._selected is not None:
            order.remove(self._selected)
            order.insert(0, self._selected)
        for index in order:
            rect = self._box_rect(self._boxes[index])
            handle = hit_test((rect.left(), rect.top(), rect.right(), rect.bottom()), (pos.x(), pos.y()),
                              self.HANDLE_PX)
            if handle is not Handle.NEW:
                return handle, index
        return Handle.NEW, None

    _CURSORS = {
        Handle.LEFT: Qt.CursorShape.SizeHorCursor, Handle.RIGHT: Qt.CursorShape.SizeHorCursor,
        Handle.TOP: Qt.CursorShape.SizeVerCursor, Handle.BOTTOM: Qt.CursorShape.SizeVerCursor,
        Handle.LEFT_TOP: Qt.CursorShape.SizeFDiagCursor, Handle.RIGHT_BOTTOM: Qt.CursorShape.SizeFDiagCursor,
        Handle.RIGHT_TOP: Qt.CursorShape.SizeBDiagCursor, Handle.LEFT_BOTTOM: Qt.CursorShape.SizeBDiagCursor,
        Handle.MOVE: Qt.CursorShape.SizeAllCursor, Handle.NEW: Qt.CursorShape.CrossCursor,
    }

    # -- mouse -----------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._image is None:
            return super().mousePressEvent(event)
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = event.position()
        handle, index = self._hit(pos)
        self._drag = (handle, index, self.to_image(pos), None if index is None else self._boxes[index])
        self._moved = False
        if index is not None:
            self._selected = index
            self.update()
        event.accept()

    def _dragged(self, pos: QPointF) -> Box:
        handle, _index, start, start_box = self._drag
        return dragged_box(handle, start, start_box, self.to_image(pos), self._size)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag is None:
            if self._image is not None:
                self.setCursor(self._CURSORS[self._hit(pos)[0]])
            return
        self._moved = True
        self._drag_pos = pos
        self.update()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._drag is None:
            return super().mouseReleaseEvent(event)
        _handle, index, _start, start_box = self._drag
        box = clamp_box(self._dragged(event.position()), *self._size)
        self._drag = None
        self._drag_pos = None
        self.update()
        event.accept()
        if index is None:
            if box is not None:
                self.box_added.emit(box)
            else:  # a click on bare picture: nothing selected
                self._selected = None
                self.selection_changed.emit(-1)
        elif box is not None and box != start_box:
            self.box_changed.emit(index, box)
        else:  # a click on a box (or a drag that changed nothing): it is selected
            self.selection_changed.emit(index)

    def _shown_boxes(self) -> tuple[list[Box], int | None]:
        """The boxes as they look now: the one being dragged where the pointer has it."""
        boxes, selected = list(self._boxes), self._selected
        if self._drag is not None and self._moved and self._drag_pos is not None:
            index = self._drag[1]
            box = self._dragged(self._drag_pos)
            if index is None:
                boxes.append(box)
                selected = len(boxes) - 1
            else:
                boxes[index] = box
        return boxes, selected

    # -- painting --------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(32, 32, 32))
        if self._image is None:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._banner or "No picture")
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(self.image_rect(), self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        boxes, selected = self._shown_boxes()
        for index, box in enumerate(boxes):
            if index != selected:
                self._paint_box(painter, index, box, False)
        if selected is not None:
            self._paint_box(painter, selected, boxes[selected], True)  # on top of the others
        if self._banner:
            font = QFont(self.font())
            font.setPointSize(max(10, font.pointSize() + 1))
            font.setBold(True)
            painter.setFont(font)
            metrics = painter.fontMetrics()
            text_rect = metrics.boundingRect(self._banner).adjusted(-8, -4, 8, 4)
            text_rect.moveTopLeft(self.image_rect().topLeft().toPoint() + QPointF(8, 8).toPoint())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self._banner_colour)
            painter.drawRoundedRect(QRectF(text_rect), 4, 4)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, self._banner)

    def _paint_box(self, painter: QPainter, index: int, box: Box, selected: bool) -> None:
        rect = self._box_rect(box)
        suggested = self._suggested and not (self._drag is not None and self._moved and self._drag[1] == index)
        colour = QColor(255, 170, 0) if suggested else QColor(60, 220, 80)
        if selected:
            colour = colour.lighter(125)
        pen = QPen(colour, 3 if selected else 2)
        if suggested:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        fill = QColor(colour)
        fill.setAlpha(60 if selected else 30)
        painter.setBrush(fill)
        painter.drawRect(rect)
        label = f"{index + 1}" + (f"  {self._scores[index]:.2f}" if index < len(self._scores) else "")
        tag = QRectF(painter.fontMetrics().boundingRect(label)).adjusted(-3, -1, 3, 1)
        tag.moveBottomLeft(QPointF(rect.left(), rect.top() if rect.top() - tag.height() > 0 else rect.top() + tag.height()))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRect(tag)  # the box's number (and score) on a tag of its colour: readable on any picture
        painter.setPen(QColor(20, 20, 20))
        painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, label)
        if selected:
            painter.setPen(QPen(QColor(20, 20, 20), 1))
            painter.setBrush(QColor(255, 255, 255))
            h = self.HANDLE_PX / 2
            for point in (rect.topLeft(), rect.topRight(), rect.bottomLeft(), rect.bottomRight(),
                          QPointF(rect.center().x(), rect.top()), QPointF(rect.center().x(), rect.bottom()),
                          QPointF(rect.left(), rect.center().y()), QPointF(rect.right(), rect.center().y())):
                painter.drawRect(QRectF(point.x() - h, point.y() - h, 2 * h, 2 * h))


class PicturePane(QSplitter):
    """The dataset's pictures (a :class:`PictureList`) beside the :class:`BoxCanvas` and a line of hints."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = PictureList()
        self.canvas = BoxCanvas()
        self.hint = QLabel(
            "Drag on the picture to draw a face box (one per face); click a box to select it, drag it or its "
            "handles to adjust.  Del removes the selected box  Ctrl+Z undo  Ctrl+Shift+Z redo  "
            "→/D next (accepts the suggestions)  ←/A previous  N no face  Ctrl+Del picture to trash/  "
            "U next unlabelled or unreviewed"
        )
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #606060;")
        canvas_col = QWidget()
        canvas_layout = QVBoxLayout(canvas_col)
        canvas_layout.setContentsMargins(0, 0, 0, 0)
        canvas_layout.addWidget(self.canvas, 1)
        canvas_layout.addWidget(self.hint)
        self.addWidget(self.list)
        self.addWidget(canvas_col)
        self.setStretchFactor(1, 1)
        self.setSizes([220, 700])


# ------------------------------------------------------------------------------------------------ tab


class EditBar(QWidget):
    """The Label tab's two rows under the picture (editing, then the picture as a whole and the progress), so the
    window can still be made as narrow as a laptop's half screen (720 px); its buttons are made from the tab's
    shortcut actions."""

    def __init__(self, previous: QAction, no_face: QAction, delete_box: QAction, undo: QAction, redo: QAction,
                 delete: QAction) -> None:
        super().__init__()
        self.buttons = tuple(action_button(a) for a in (previous, no_face, delete_box, undo, redo, delete))
        self.progress_bar = QProgressBar()
        # wide enough for its "1234 / 5678 labelled" text
        self.progress_bar.setMinimumWidth(self.progress_bar.fontMetrics().horizontalAdvance("0000 / 0000 labelled") + 32)
        self.progress_label = QLabel("No dataset.")
        self.progress_label.setWordWrap(True)
        editing = QHBoxLayout()
        for button in self.buttons[:5]:
            editing.addWidget(button)
        editing.addStretch(1)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.buttons[5])
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.progress_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(editing)
        layout.addLayout(progress_row)


class LabelTab(QWidget):
    """Picture list, the canvas, Previous / No face / Delete / Next, and labelled / total.

    The state is a :class:`desktop.label_session.LabelSession` (Qt-free): the tab shows it and forwards
    the user's input to it. What takes time runs in worker threads: reading the dataset
    (:class:`desktop.background.LatestOnly`), suggestions and "Suggest all" (:class:`desktop.suggestions.Suggester`).
    """

    labels_changed = Signal()           # a label was written or a picture moved away
    dataset_chosen = Signal(str)
    suggest_all_finished = Signal(object)                # AutolabelReport, or None when it failed

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.session = LabelSession("" if mtcnn_available() else "MTCNN is not installed: pip install mtcnn")
        self._scanner = LatestOnly(self)  # reads the dataset in a worker thread
        self.suggester = Suggester(self.session, self)  # the engines and their threads (desktop.suggestions)
        self._scanner.done.connect(self._on_scan_done)
        self.suggester.arrived.connect(self._render_canvas)
        self.suggester.ask_again.connect(self._ask_again)
        self.suggester.status.connect(self._set_status)
        self._build_actions()
        self._build_ui()
        events = self.session.events
        self.picture_list.follow(self.session)  # its lines follow the session's pictures
        for signal in (events.entries, events.entry, events.removed):
            signal.connect(self._update_progress)
        events.removed.connect(lambda _index: self.labels_changed.emit())  # a picture moved away
        events.current.connect(self._show_current)
        events.engine.connect(self._show_engine)
        folder = read_str(self.settings, keys.DATASET)
        if folder:
            self.set_dataset(folder)

    # The session's state (desktop.label_session), as the tab has always offered it.
    entries = property(lambda self: self.session.entries, doc="The pictures listed (LabelEntry).")
    problems = property(lambda self: self.session.problems, doc="What was wrong in the dataset read.")
    index = property(lambda self: self.session.index, doc="The picture shown (-1: none).")
    root = property(lambda self: self.session.root, doc="The dataset folder (None: none).")

    # ------------------------------------------------------------------------------------ layout
    def _build_ui(self) -> None:
        self.dataset_field = FolderField("Dataset:", "dataset folder (its images/ folder is labelled into labels/)",
                                         "Choose a dataset folder")
        self.dataset_field.chosen.connect(self.set_dataset)
        self.dataset_edit = self.dataset_field.edit
        rescan = QPushButton("Rescan")
        rescan.clicked.connect(self.refresh)
        # Frames kept in the Detect tab (K, or "keep unsure frames"), offered first: desktop.kept_frames.
        self.kept_review = KeptReview()
        self.review_kept_button = self.kept_review.button
        self.review_kept_button.clicked.connect(self.review_kept_frames)
        top = QHBoxLayout()
        top.addWidget(self.review_kept_button)
        top.addWidget(self.dataset_field, 1)
        top.addWidget(rescan)

        self.pictures = PicturePane()  # the picture list beside the canvas and its hint
        self.picture_list, self.canvas, self.hint_label = self.pictures.list, self.pictures.canvas, self.pictures.hint
        self.picture_list.currentRowChanged.connect(self._on_row_changed)
        self.canvas.box_added.connect(self._on_box_added)
        self.canvas.box_changed.connect(self._on_box_changed)
        self.canvas.selection_changed.connect(self._on_selection_changed)

        self.edit_bar = EditBar(self.previous_action, self.no_face_action, self.delete_box_action, self.undo_action,
                                self.redo_action, self.delete_action)  # the buttons under the picture, the progress
        self.previous_button, self.no_face_button, self.delete_box_button, self.undo_button, self.redo_button, \
            self.delete_button = self.edit_bar.buttons
        self.next_button = action_button(self.next_action)
        self.progress_bar, self.progress_label = self.edit_bar.progress_bar, self.edit_bar.progress_label

        self.suggest_bar = bar = SuggestBar(self.suggester)  # who suggests, the engines, Suggest all and its run
        self.source_label, self.engine_combo, self.suggest_all_button = bar.source_label, bar.engine_combo, bar.suggest_all_button
        self.suggest_progress, self.cancel_button = bar.progress, bar.cancel_button
        self.engine_combo.activated.connect(self._on_engine_chosen)
        self.suggest_all_button.clicked.connect(self.suggest_all)
        bar.status.connect(self._set_status)
        bar.finished.connect(self._on_suggest_all_done)

        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.problems_view = QPlainTextEdit()
        self.problems_view.setReadOnly(True)
        self.problems_view.setMaximumHeight(90)
        self.problems_view.hide()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.pictures, 1)
        layout.addWidget(self.edit_bar)
        layout.addWidget(self.suggest_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.problems_view)
        self._show_engine()

    def _build_actions(self) -> None:
        action = partial(add_action, self)  # a shortcut of this tab (its buttons are made from them: _build_ui)
        self.previous_action = action("◀ Previous (←)", [Qt.Key.Key_Left, Qt.Key.Key_A], self.previous)
        self.no_face_action = action("No face (N)", [Qt.Key.Key_N], self.mark_no_face)
        self.delete_box_action = action("Delete box (Del)", [Qt.Key.Key_Delete, Qt.Key.Key_Backspace],
                                        self.delete_selected_box)
        self.undo_action = action("Undo (Ctrl+Z)", ["Ctrl+Z"], self.undo)
        self.redo_action = action("Redo (Ctrl+Shift+Z)", ["Ctrl+Shift+Z", "Ctrl+Y"], self.redo)
        self.delete_action = action("Picture to trash (Ctrl+Del)", ["Ctrl+Delete", "Ctrl+Backspace"],
                                    self.delete_current)
        self.delete_box_action.setToolTip("Remove the selected face box (click a box to select it)")
        self.undo_action.setToolTip("Undo this picture's last edit (Ctrl+Z)")
        self.redo_action.setToolTip("Redo what Undo took back (Ctrl+Shift+Z or Ctrl+Y)")
        self.delete_action.setToolTip("Move the picture and its label to the dataset's trash/ folder")
        self.next_action = action("Next ▶ (→)", [Qt.Key.Key_Right, Qt.Key.Key_D], self.next)
        self.accept_action = action("Accept suggestion", [Qt.Key.Key_Return, Qt.Key.Key_Enter],
                                    self.accept_suggestion)
        self.next_unlabelled_action = action("Next unlabelled", [Qt.Key.Key_U], self.next_unlabelled)

    # ------------------------------------------------------------------------------------ dataset
    def set_dataset(self, path: str | Path) -> None:
        """Show a dataset's pictures (read in a worker thread) and remember the folder."""
        text = str(path).strip()
        if not text or not self.session.open(text):
            return
        self.dataset_edit.setText(text)
        self.settings.setValue(keys.DATASET, text)
        self.dataset_chosen.emit(text)
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Read the dataset again (new pictures from Collect, labels written elsewhere)."""
        if self.root is None:
            return
        root = self.root
        self._set_status(f"Reading {root} …")
        self._scanner.start(lambda: scan_dataset(root))

    @Slot(object, str)
    def _on_scan_done(self, scanned: object, error: str) -> None:
        if scanned is None:  # a missing folder, no pictures yet: said in the status line
            self.session.scan_failed()
            self.session.go_to(-1)
            self._set_status(f"Nothing to label: {error}. Take pictures in the Collect tab first.", error=True)
            return
        entries, problems = scanned
        index, review = self.session.apply_scan(entries, problems)
        kept = self.kept_review.after_scan(self.entries)
        if kept is not None:  # frames kept since the last visit: shown first
            (index, text), review = kept, True
            self._set_status(text)
        self.problems_view.setVisible(bool(problems))
        self.problems_view.setPlainText("Problems in this dataset:\n" + "\n".join(problems) if problems else "")
        if not review:
            self._set_status("")
        self.session.go_to(index)

    def labelled_count(self) -> int:
        return self.session.counts().labelled

    def _update_progress(self, *_changed) -> None:
        counts = self.session.counts()
        self.progress_bar.setRange(0, max(1, counts.total))
        self.progress_bar.setValue(counts.labelled)
        self.progress_bar.setFormat(f"{counts.labelled} / {counts.total} labelled")
        self.progress_label.setText(self.session.progress_text())
        done = self.kept_review.update(self.entries, self.current_entry())
        if done:  # after the edit's own "Saved ..." line: the loop's next step is the Train tab
            QTimer.singleShot(0, lambda: self._set_status(done))

    # ------------------------------------------------------------------------------------ showing
    def current_entry(self) -> LabelEntry | None:
        return self.session.current()

    @Slot(int)
    def _on_row_changed(self, row: int) -> None:
        if row != self.index:
            self.session.go_to(row)

    def _show(self, index: int) -> None:
        """Show picture ``index`` (-1: none)."""
        self.session.go_to(index)

    def _show_current(self, index: int) -> None:
        """The session moved to picture ``index``: select it, decode it, show its label or ask for a box."""
        self.picture_list.select(index)
        entry = self.current_entry()
        image = self.session.open_current() if entry is not None else None
        self.canvas.set_image(image)
        if image is None:
            self._render_canvas()
            return
        self._show_label(entry)
        prefetch = self.session.to_prefetch()
        if prefetch is not None:
            self.suggester.request(prefetch)

    def _render_canvas(self) -> None:
        view = self.session.canvas_view()
        self.canvas.set_boxes(view.boxes, view.selected, view.suggested, view.scores)
        self.canvas.set_banner(view.banner, _TONE_COLOURS[view.tone])
        self._update_edit_actions()

    def _update_edit_actions(self) -> None:
        """Undo / Redo are enabled when there is something for them to do on this picture (Delete box stays
        enabled: without a selection it says how to select one, and that the picture is Ctrl+Del now)."""
        self.undo_action.setEnabled(self.session.can_undo)
        self.redo_action.setEnabled(self.session.can_redo)

    def _show_label(self, entry: LabelEntry) -> None:
        """Show the current picture's label (or suggestion; asked for when there is none yet) and its note."""
        self._render_canvas()
        if not entry.labelled and entry.image_path not in self.session.suggestions:
            self.suggester.request(entry)
        if entry.note:
            self._set_status(f"{entry.image_path.name}: {entry.note}", error=True)

    # ------------------------------------------------------------------------------------ suggestions
    def set_detector(self, detector) -> None:
        """The user's trained Detector (None: none yet): an engine to choose, and the fallback without MTCNN."""
        if self.session.set_detector(detector):
            self._ask_again()

    def engine(self) -> str:
        """Who suggests boxes now: MTCNN, BLAZEFACE, MODEL or CLASSIC."""
        return self.session.engine

    @Slot(int)
    def _on_engine_chosen(self, index: int) -> None:
        if self.session.choose_engine(self.engine_combo.itemData(index)):
            self._ask_again()

    def set_engine(self, engine: str) -> None:
        """Suggest with ``engine`` (MTCNN, BLAZEFACE, MODEL or CLASSIC) from now on, as if chosen in the list."""
        if self.session.choose_engine(engine):
            self._ask_again()

    def _ask_again(self) -> None:
        """The suggestions were dropped (another engine or model): the unlabelled picture shown asks anew."""
        entry = self.current_entry()
        if entry is not None and entry.status == UNLABELLED and self.session.picture_open:
            self._show_label(entry)

    def _show_engine(self) -> None:
        self.suggest_bar.show_engine(self.session)  # the list's choice, which items can be chosen, who suggests

    def suggestion_for(self, image_path: Path) -> Suggestion | None:
        return self.session.suggestions.get(Path(image_path))

    # ------------------------------------------------------------------------------------ labelling
    def _save(self, box: Box | None) -> LabelEntry | None:
        """Write the current picture's label; None (and the reason in the status line) when it cannot be."""
        try:
            entry = self.session.save(box)
        except LabelError as exc:
            self._set_status(str(exc), error=True)
            return None
        self.labels_changed.emit()
        return entry

    def _edited(self, edit: Callable[[], object]) -> bool:
        """Run one edit of the session (it writes the label); show the result and say what was saved."""
        if self.current_entry() is None or not self.session.picture_open:
            return False
        try:
            done = edit()
        except LabelError as exc:
            self._set_status(str(exc), error=True)
            self._render_canvas()
            return False
        self._render_canvas()
        if done is None or done is False:
            return False
        self.labels_changed.emit()
        self._set_status(saved_text(self.current_entry()))
        return True

    @Slot(tuple)
    def _on_box_added(self, box: tuple) -> None:
        self._edited(lambda: self.session.add_box(box))

    @Slot(int, tuple)
    def _on_box_changed(self, index: int, box: tuple) -> None:
        self._edited(lambda: self.session.move_box(index, box))

    @Slot(int)
    def _on_selection_changed(self, index: int) -> None:
        self.session.select(None if index < 0 else index)
        self._render_canvas()

    @Slot()
    def delete_selected_box(self) -> bool:
        """Remove the selected face box (the label is written at once; Ctrl+Z brings it back)."""
        if self.session.selected is None:
            if self.current_entry() is not None:
                self._set_status("Click a box to select it first (Ctrl+Del moves the whole picture to the trash).")
            return False
        return self._edited(self.session.delete_box)

    @Slot()
    def undo(self) -> bool:
        """Take back the shown picture's last edit (its label file is put back as it was)."""
        if not self._edited(self.session.undo):
            return False
        self._after_history_step("Undone")
        return True

    @Slot()
    def redo(self) -> bool:
        """Do again the edit Undo took back."""
        if not self._edited(self.session.redo):
            return False
        self._after_history_step("Redone")
        return True

    def _after_history_step(self, what: str) -> None:
        entry = self.current_entry()
        if entry.status == UNLABELLED:
            self._show_label(entry)  # its suggestion again (asked for if there is none)
        self._set_status(history_text(what, entry))

    @Slot()
    def accept_suggestion(self) -> bool:
        """Save the suggested boxes as the label (only boxes: "no face" is always the user's call), or
        accept a label "Suggest all" wrote, face or no face: the user has seen it, it is now theirs."""
        try:
            accepted = self.session.accept()
        except LabelError as exc:
            self._set_status(str(exc), error=True)
            return False
        if accepted is None:
            return False
        self.labels_changed.emit()
        entry = self.current_entry()
        if accepted == "reviewed":
            self._show_label(entry)
            self._set_status(f"Saved {entry.label_path.name} (reviewed)")
        else:
            self._render_canvas()
        return True

    @Slot()
    def next(self) -> None:
        """Accept the suggested boxes, then go to the next picture."""
        self.accept_suggestion()
        self.session.step(1)

    @Slot()
    def previous(self) -> None:
        self.session.step(-1)

    @Slot()
    def review_kept_frames(self) -> bool:
        """Show the next frame kept in the Detect tab that is not reviewed yet (False: none waits)."""
        index = KeptReview.next_index(self.entries, self.index)
        if index is None:
            self._set_status("No kept frame waits for review.")
            return False
        self.session.go_to(index)
        self._set_status(self.kept_review.step_text(self.entries, index))
        return True

    def kept_frames_added(self) -> None:
        """The Detect tab kept frames: the next reading of the dataset shows the first one to review."""
        self.kept_review.first_on_next_scan = True
        if self.isVisible() and self.root is not None and not self._scanner.busy:
            self.refresh()

    @Slot()
    def next_unlabelled(self) -> None:
        """Go to the next picture without a label, or with a suggested label not yet reviewed."""
        index = self.session.next_to_review()
        if index is None:
            self._set_status("No unlabelled or unreviewed pictures after this one.")
        else:
            self.session.go_to(index)

    # ------------------------------------------------------------------------------------ suggest all
    @Slot()
    def suggest_all(self) -> bool:
        """Pre-label every unlabelled picture in the background with the current engine (False: not started)."""
        if self.root is None or self.is_suggesting_all():
            return False
        return self.suggest_bar.start(self.root, self.session.engine, self.session.detector,
                                      self.session.suggest_all_min_score())

    def is_suggesting_all(self) -> bool:
        return self.suggester.is_suggesting_all()

    @Slot()
    def cancel_suggest_all(self) -> None:
        """Stop "Suggest all" after the picture in hand; the labels written so far stay."""
        self.suggest_bar.cancel()

    @Slot(object, str)
    def _on_suggest_all_done(self, report: AutolabelReport | None, error: str) -> None:
        """Say what was done, and read the dataset again to show the new labels."""
        engine = self.suggester.suggest_all_engine
        if report is not None and report.root == self.root:  # not when the user opened another dataset meanwhile
            self.session.review_next_scan = True
            self.refresh()
        self._set_status(*suggest_all_text(engine, report, error))
        if report is None and engine in (MTCNN, BLAZEFACE) and not self.suggester.has_loaded(engine):
            if self.session.engine_failed(engine, error):  # it never loaded: use another engine
                self._ask_again()
        elif report is not None and report.written:
            self.labels_changed.emit()
        self.suggest_all_finished.emit(report)

    @Slot()
    def mark_no_face(self) -> None:
        """Label the picture "no face" (a JSON without shapes) and go on."""
        entry = self.current_entry()
        if entry is None or not self.session.picture_open:
            return
        if self._save(None) is not None:
            self._set_status(f"Saved {entry.label_path.name} (no face)")
            if not self.session.step(1):
                self._show_label(entry)

    @Slot()
    def delete_current(self) -> None:
        """Move the picture and its label to ``DATASET/trash/`` (nothing is lost; move it back to restore)."""
        if self.current_entry() is None:
            return
        try:
            moved, trash = self.session.trash_current()
        except LabelError as exc:
            self._set_status(str(exc), error=True)
            return
        self._set_status(f"Moved {', '.join(p.name for p in moved)} to {trash}")

    # ------------------------------------------------------------------------------------ misc
    def showEvent(self, event) -> None:
        """Coming back to the tab reads the dataset again: Collect may have added pictures meanwhile."""
        super().showEvent(event)
        if self.root is not None and not self._scanner.busy:
            self.refresh()

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #b00020;" if error else "")

    def shutdown(self) -> None:
        """Stop "Suggest all" and let running scans and suggestions end (they are short), so no thread
        outlives the window."""
        self.session.generation += 1
        self.suggester.shutdown()
        self._scanner.shutdown()
