"""The Label tab: go through a dataset's pictures and give each one face box, or mark it "no face".

What the tutorial did in labelme, without leaving the app, and faster: every new picture comes
with a suggested box (from MTCNN, a pretrained face detector; without it from the user's model or
the classic LBP face finder), so labelling is mostly pressing → and correcting now and then.
"Suggest all" pre-labels every unlabelled picture in a background thread
(``training.autolabel.autolabel_dataset``); those labels are marked as suggested, shown as such, and
become the user's own once accepted (→) or corrected. Labels are written with
``training.data.write_labelme``, so they are the labelme JSON the trainer reads and labelme opens:
``DATASET/images/x.jpg`` gets ``DATASET/labels/x.json``. A picture counts as labelled when its JSON
exists; a "no face" picture gets a JSON with no shapes, so it is told apart from one not yet seen.

Keys: → or D next (accepts a suggested box or label), ← or A previous, N no face, Delete moves the
picture (and its label) to ``DATASET/trash/``, Enter accepts the suggestion, U jumps to the next
unlabelled or not yet reviewed picture.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSettings, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop import settings as keys
from desktop.box_handles import Handle, dragged_box, hit_test
from desktop.imaging import bgr_to_qimage
from desktop.label_session import (
    BROKEN,
    CLASSIC,
    ENGINE_NAMES,
    ENGINE_TIP,
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
    capitalised,
    clamp_box,
    list_text,
    list_tooltip,
    make_suggestion,
    scan_dataset,
)
from desktop.settings import read_str
from desktop.widgets import FolderField
from training.autolabel import AutolabelReport, autolabel_dataset, mtcnn_available
from training.data import label_path_for

# The names the tab has always offered (tests and callers import them from here).
__all__ = [
    "BROKEN", "CLASSIC", "ENGINE_NAMES", "FACE", "FACE_THRESHOLD", "MIN_BOX_PX", "MODEL", "MTCNN", "NO_FACE",
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
    """The picture, scaled to fit, with one face rectangle that the mouse draws, moves and resizes.

    Coordinates are kept in the picture's own pixels; only painting and hit-testing use the
    widget's. ``box_edited`` fires once per finished drag with the new box.
    """

    box_edited = Signal(tuple)
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
        self._box: Box | None = None
        self._suggested = False
        self._banner = ""
        self._banner_colour = QColor(40, 40, 40, 200)
        self._drag: tuple[Handle, tuple[float, float], Box | None] | None = None  # handle, start point, box then

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

    def set_box(self, box: Box | None, suggested: bool = False) -> None:
        self._box = box
        self._suggested = suggested and box is not None
        self.update()

    def box(self) -> Box | None:
        return self._box

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

    def _box_rect(self) -> QRectF | None:
        if self._box is None or self._image is None:
            return None
        x1, y1, x2, y2 = self._box
        return QRectF(self.to_widget(x1, y1), self.to_widget(x2, y2))

    def _hit(self, pos: QPointF) -> Handle:
        """The handle under the pointer (``desktop.box_handles``: new box, move, an edge or a corner)."""
        rect = self._box_rect()
        box = None if rect is None else (rect.left(), rect.top(), rect.right(), rect.bottom())
        return hit_test(box, (pos.x(), pos.y()), self.HANDLE_PX)

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
        self._drag = (self._hit(pos), self.to_image(pos), self._box)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag is None:
            if self._image is not None:
                self.setCursor(self._CURSORS[self._hit(pos)])
            return
        handle, start, start_box = self._drag
        self._box = dragged_box(handle, start, start_box, self.to_image(pos), self._size)
        self.update()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._drag is None:
            return super().mouseReleaseEvent(event)
        self.mouseMoveEvent(event)  # the release point is the drag's last point
        _mode, _start, start_box = self._drag
        self._drag = None
        box = clamp_box(self._box, *self._size) if self._box is not None else None
        if box is None or box == start_box:
            self._box = start_box  # a click, or a drag that changed nothing
            self.update()
            return
        self._box = box
        self._suggested = False
        self.update()
        self.box_edited.emit(box)
        event.accept()

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
        rect = self._box_rect()
        if rect is not None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            colour = QColor(255, 170, 0) if self._suggested else QColor(60, 220, 80)
            pen = QPen(colour, 2)
            if self._suggested:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            fill = QColor(colour)
            fill.setAlpha(35)
            painter.setBrush(fill)
            painter.drawRect(rect)
            painter.setBrush(colour)
            h = self.HANDLE_PX / 2
            for corner in (rect.topLeft(), rect.topRight(), rect.bottomLeft(), rect.bottomRight()):
                painter.drawRect(QRectF(corner.x() - h, corner.y() - h, 2 * h, 2 * h))
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


# ------------------------------------------------------------------------------------------------ suggest all


class _ModelFinder:
    """A trained Detector behind the finders' interface, so "Suggest all" can use the user's model."""

    label = "face (your model)"
    name = ENGINE_NAMES[MODEL]

    def __init__(self, detector) -> None:
        self._detector = detector

    def detect(self, frame_bgr: np.ndarray):
        return self._detector.detect(frame_bgr)


def run_suggest_all(
    root: Path,
    make_finder: Callable[[], object],
    min_score: float,
    stop: threading.Event,
    on_progress: Callable[[int, int, Path], None],
) -> AutolabelReport:
    """What "Suggest all" runs off the UI thread: build the finder (MTCNN loads TensorFlow: seconds),
    then pre-label every unlabelled picture, stopping between two pictures once ``stop`` is set."""
    return autolabel_dataset(root, finder=make_finder(), min_score=min_score, on_progress=on_progress,
                             should_stop=stop.is_set)


# ------------------------------------------------------------------------------------------------ tab


class LabelTab(QWidget):
    """Picture list, the canvas, Previous / No face / Delete / Next, and labelled / total.

    The state is a :class:`desktop.label_session.LabelSession` (Qt-free): the tab shows it, forwards
    the user's input to it, and runs what takes time (reading the dataset, suggestions, "Suggest all")
    in worker threads.
    """

    labels_changed = Signal()           # a label was written or a picture moved away
    dataset_chosen = Signal(str)
    suggest_all_finished = Signal(object)                # AutolabelReport, or None when it failed
    _scan_done = Signal(int, object, object, str)        # scan number, entries, problems, error
    _suggestion_done = Signal(int, str, object)          # engine generation, image path, Suggestion
    _engine_failed = Signal(int, str, str)               # engine generation, engine, why it cannot load
    _suggest_all_progress = Signal(int, int, str)        # pictures done, pictures to label, the last picture
    _suggest_all_done = Signal(object, str)              # AutolabelReport (None when it failed), error

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.session = LabelSession("" if mtcnn_available() else "MTCNN is not installed: pip install mtcnn")
        self._scan_pool = QThreadPool(self)
        self._scan_pool.setMaxThreadCount(1)
        # Suggestion engines run TensorFlow (MTCNN, your model) on Python threads, not QThreadPool's: TensorFlow's
        # pybind11 code re-takes the GIL by the thread's registered state, and a Qt-made thread froze the
        # whole app once that way (under Xvfb; both threads waiting for the GIL). One thread owns the finder,
        # so suggestions come in order.
        self._suggest_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facetracker-suggest")
        self._scan_number = 0
        self._scanning = False
        self._finders: dict[str, object] = {}  # MTCNN / classic finder, made off the UI thread on first use
        self._finders_lock = threading.Lock()   # the suggestion thread and "Suggest all" share them
        self._suggest_all_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facetracker-suggest-all")
        self._suggest_all_stop: threading.Event | None = None  # set while "Suggest all" runs; set() cancels
        self._suggest_engine = self.session.engine
        self._scan_done.connect(self._on_scan_done)
        self._suggestion_done.connect(self._on_suggestion_done)
        self._engine_failed.connect(self._on_engine_failed)
        self._suggest_all_progress.connect(self._on_suggest_progress)
        self._suggest_all_done.connect(self._on_suggest_all_done)
        self._build_ui()
        self._build_actions()
        events = self.session.events
        events.entries.connect(self._fill_list)
        events.entry.connect(self._refresh_item)
        events.removed.connect(self._remove_item)
        events.current.connect(self._show_current)
        events.engine.connect(self._show_engine)
        folder = read_str(self.settings, keys.DATASET)
        if folder:
            self.set_dataset(folder)

    # The session's state, as the tab has always offered it.
    @property
    def entries(self) -> list[LabelEntry]:
        return self.session.entries

    @property
    def problems(self) -> list[str]:
        return self.session.problems

    @property
    def index(self) -> int:
        return self.session.index

    @property
    def root(self) -> Path | None:
        return self.session.root

    # ------------------------------------------------------------------------------------ layout
    def _build_ui(self) -> None:
        self.dataset_field = FolderField("Dataset:", "dataset folder (its images/ folder is labelled into labels/)",
                                         "Choose a dataset folder")
        self.dataset_field.chosen.connect(self.set_dataset)
        self.dataset_edit = self.dataset_field.edit
        rescan = QPushButton("Rescan")
        rescan.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(self.dataset_field, 1)
        top.addWidget(rescan)

        self.picture_list = QListWidget()
        self.picture_list.setMinimumWidth(180)
        self.picture_list.currentRowChanged.connect(self._on_row_changed)
        self.canvas = BoxCanvas()
        self.canvas.box_edited.connect(self._on_box_edited)
        self.hint_label = QLabel(
            "Drag to draw the face box; drag its corners or edges to adjust, its inside to move it.  "
            "→/D next (accepts a suggestion)  ←/A previous  N no face  Delete to trash/  "
            "U next unlabelled or unreviewed"
        )
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet("color: #606060;")
        canvas_col = QWidget()
        canvas_layout = QVBoxLayout(canvas_col)
        canvas_layout.setContentsMargins(0, 0, 0, 0)
        canvas_layout.addWidget(self.canvas, 1)
        canvas_layout.addWidget(self.hint_label)
        splitter = QSplitter()
        splitter.addWidget(self.picture_list)
        splitter.addWidget(canvas_col)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 700])

        self.previous_button = QToolButton()
        self.no_face_button = QToolButton()
        self.delete_button = QToolButton()
        self.next_button = QToolButton()
        self.progress_bar = QProgressBar()
        self.progress_label = QLabel("No dataset.")
        self.source_label = QLabel()
        self.source_label.setStyleSheet("color: #606060;")
        self.source_label.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.previous_button, self.no_face_button, self.delete_button, self.next_button):
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            buttons.addWidget(button)
        buttons.addWidget(self.progress_bar, 1)
        buttons.addWidget(self.progress_label)

        self.engine_combo = QComboBox()
        self.engine_combo.addItem("MTCNN (pretrained)", MTCNN)
        self.engine_combo.addItem("your model", MODEL)
        self.engine_combo.addItem("classic finder", CLASSIC)
        self.engine_combo.setToolTip(ENGINE_TIP)
        self.engine_combo.model().item(self.engine_combo.findData(MODEL)).setEnabled(False)  # until a model
        self.engine_combo.activated.connect(self._on_engine_chosen)
        self.suggest_all_button = QPushButton("Suggest all")
        self.suggest_all_button.setToolTip("Pre-label every unlabelled picture in the background; "
                                           "then review them one by one (→ accepts, or correct the box)")
        self.suggest_all_button.clicked.connect(self.suggest_all)
        self.suggest_progress = QProgressBar()
        self.suggest_progress.setMaximumWidth(220)
        self.suggest_progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the picture in hand; the labels written so far stay")
        self.cancel_button.clicked.connect(self.cancel_suggest_all)
        self.cancel_button.hide()
        engine_row = QHBoxLayout()
        engine_row.addWidget(self.source_label, 1)
        engine_row.addWidget(QLabel("Suggest with:"))
        engine_row.addWidget(self.engine_combo)
        engine_row.addWidget(self.suggest_all_button)
        engine_row.addWidget(self.suggest_progress)
        engine_row.addWidget(self.cancel_button)

        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.problems_view = QPlainTextEdit()
        self.problems_view.setReadOnly(True)
        self.problems_view.setMaximumHeight(90)
        self.problems_view.hide()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        layout.addLayout(engine_row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.problems_view)
        self._show_engine()

    def _build_actions(self) -> None:
        def action(text: str, keys: list[QKeySequence | Qt.Key], slot, button: QToolButton | None) -> QAction:
            act = QAction(text, self)
            act.setShortcuts([QKeySequence(k) for k in keys])
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(slot)
            self.addAction(act)
            if button is not None:
                button.setDefaultAction(act)
            return act

        self.previous_action = action("◀ Previous (←)", [Qt.Key.Key_Left, Qt.Key.Key_A], self.previous, self.previous_button)
        self.no_face_action = action("No face (N)", [Qt.Key.Key_N], self.mark_no_face, self.no_face_button)
        self.delete_action = action("Delete (Del)", [Qt.Key.Key_Delete, Qt.Key.Key_Backspace], self.delete_current, self.delete_button)
        self.next_action = action("Next ▶ (→)", [Qt.Key.Key_Right, Qt.Key.Key_D], self.next, self.next_button)
        self.accept_action = action("Accept suggestion", [Qt.Key.Key_Return, Qt.Key.Key_Enter],
                                    self.accept_suggestion, None)
        self.next_unlabelled_action = action("Next unlabelled", [Qt.Key.Key_U], self.next_unlabelled, None)

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
        self._scan_number += 1
        scan, root = self._scan_number, self.root
        self._scanning = True
        self._set_status(f"Reading {root} …")

        def read() -> None:
            try:
                entries, problems = scan_dataset(root)
            except Exception as exc:  # a missing folder, no pictures yet: said in the status line
                self._scan_done.emit(scan, None, None, str(exc) or type(exc).__name__)
            else:
                self._scan_done.emit(scan, entries, problems, "")

        self._scan_pool.start(read)

    @Slot(int, object, object, str)
    def _on_scan_done(self, scan: int, entries: object, problems: object, error: str) -> None:
        if scan != self._scan_number:
            return
        self._scanning = False
        if entries is None:
            self.session.scan_failed()
            self.session.go_to(-1)
            self._set_status(f"Nothing to label: {error}. Take pictures in the Collect tab first.", error=True)
            return
        index, review = self.session.apply_scan(entries, problems)
        self.problems_view.setVisible(bool(problems))
        self.problems_view.setPlainText("Problems in this dataset:\n" + "\n".join(problems) if problems else "")
        if not review:
            self._set_status("")
        self.session.go_to(index)

    def _fill_list(self) -> None:
        self.picture_list.blockSignals(True)
        self.picture_list.clear()
        for entry in self.entries:
            item = QListWidgetItem()
            self._decorate(item, entry)
            self.picture_list.addItem(item)
        self.picture_list.blockSignals(False)
        self._update_progress()

    @staticmethod
    def _decorate(item: QListWidgetItem, entry: LabelEntry) -> None:
        item.setText(list_text(entry))
        item.setToolTip(list_tooltip(entry))

    def _refresh_item(self, index: int) -> None:
        item = self.picture_list.item(index)
        if item is not None:
            self._decorate(item, self.entries[index])
        self._update_progress()

    def _remove_item(self, index: int) -> None:
        self.picture_list.blockSignals(True)
        self.picture_list.takeItem(index)
        self.picture_list.blockSignals(False)
        self._update_progress()
        self.labels_changed.emit()

    def labelled_count(self) -> int:
        return self.session.counts().labelled

    def _update_progress(self) -> None:
        counts = self.session.counts()
        self.progress_bar.setRange(0, max(1, counts.total))
        self.progress_bar.setValue(counts.labelled)
        self.progress_bar.setFormat(f"{counts.labelled} / {counts.total} labelled")
        self.progress_label.setText(self.session.progress_text())

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
        self.picture_list.blockSignals(True)
        self.picture_list.setCurrentRow(index)
        self.picture_list.blockSignals(False)
        entry = self.current_entry()
        image = self.session.open_current() if entry is not None else None
        self.canvas.set_image(image)
        if image is None:
            self._render_canvas()
            return
        self._show_label(entry)
        prefetch = self.session.to_prefetch()
        if prefetch is not None:
            self._request_suggestion(prefetch)

    def _render_canvas(self) -> None:
        view = self.session.canvas_view()
        self.canvas.set_box(view.box, suggested=view.suggested)
        self.canvas.set_banner(view.banner, _TONE_COLOURS[view.tone])

    def _show_label(self, entry: LabelEntry) -> None:
        """Show the current picture's label (or suggestion; asked for when there is none yet) and its note."""
        self._render_canvas()
        if not entry.labelled and entry.image_path not in self.session.suggestions:
            self._request_suggestion(entry)
        if entry.note:
            self._set_status(f"{entry.image_path.name}: {entry.note}", error=True)

    # ------------------------------------------------------------------------------------ suggestions
    def set_detector(self, detector) -> None:
        """The user's trained Detector (None: none yet): an engine to choose, and the fallback without MTCNN."""
        if self.session.set_detector(detector):
            self._ask_again()

    def engine(self) -> str:
        """Who suggests boxes now: MTCNN, MODEL or CLASSIC."""
        return self.session.engine

    @Slot(int)
    def _on_engine_chosen(self, index: int) -> None:
        if self.session.choose_engine(self.engine_combo.itemData(index)):
            self._ask_again()

    def set_engine(self, engine: str) -> None:
        """Suggest with ``engine`` (MTCNN, MODEL or CLASSIC) from now on, as if chosen in the list."""
        if self.session.choose_engine(engine):
            self._ask_again()

    def _ask_again(self) -> None:
        """The suggestions were dropped (another engine or model): the unlabelled picture shown asks anew."""
        entry = self.current_entry()
        if entry is not None and entry.status == UNLABELLED and self.session.picture_open:
            self._show_label(entry)

    def _show_engine(self) -> None:
        """Show the engine: the list's choice and which items can be chosen, the line under the picture."""
        session, combo = self.session, self.engine_combo
        combo.setCurrentIndex(combo.findData(session.engine))
        combo.model().item(combo.findData(MTCNN)).setEnabled(not session.mtcnn_error)
        combo.model().item(combo.findData(MODEL)).setEnabled(session.detector is not None)
        combo.setItemText(combo.findData(MODEL), session.model_name())
        self.source_label.setText(session.source_text())
        combo.setToolTip(session.engine_tip())

    def _finder_for(self, engine: str, detector=None):
        """The finder of an engine, made once (MTCNN loads TensorFlow: call this off the UI thread)."""
        if engine == MODEL:
            return _ModelFinder(detector)
        with self._finders_lock:
            finder = self._finders.get(engine)
            if finder is None:
                if engine == MTCNN:
                    from training.autolabel import PretrainedFaceFinder

                    finder = PretrainedFaceFinder()
                else:
                    from training.classic import ClassicFaceFinder

                    finder = ClassicFaceFinder()
                self._finders[engine] = finder
            return finder

    def _request_suggestion(self, entry: LabelEntry) -> None:
        if not self.session.ask(entry):
            return
        path = entry.image_path
        generation, engine, detector = self.session.generation, self.session.engine, self.session.detector

        def suggest() -> None:
            try:
                finder = self._finder_for(engine, detector)
            except Exception as exc:  # MTCNN not installed or broken: the tab falls back and says so
                self._engine_failed.emit(generation, engine, str(exc) or type(exc).__name__)
                return
            try:
                from training.data import load_image

                result = make_suggestion(engine, finder.detect(load_image(path)), detector)
            except Exception as exc:  # a suggestion is a help, never a crash
                result = Suggestion(None, None, ENGINE_NAMES[engine], error=str(exc) or type(exc).__name__)
            self._suggestion_done.emit(generation, str(path), result)

        try:
            self._suggest_pool.submit(suggest)
        except RuntimeError:  # the tab is closing (shutdown): nothing more starts
            return

    @Slot(int, str, str)
    def _on_engine_failed(self, generation: int, engine: str, message: str) -> None:
        if engine == MTCNN and not self.session.mtcnn_error and self.session.mtcnn_failed(message):
            self._ask_again()
        if generation == self.session.generation:
            self._set_status(f"{ENGINE_NAMES[engine]} cannot suggest: {message}", error=True)

    @Slot(int, str, object)
    def _on_suggestion_done(self, generation: int, path: str, suggestion: object) -> None:
        if self.session.suggestion_arrived(generation, Path(path), suggestion):
            self._render_canvas()

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

    @Slot(tuple)
    def _on_box_edited(self, box: tuple) -> None:
        if self.current_entry() is None or not self.session.picture_open:
            return
        entry = self._save(box)
        if entry is not None:
            self._render_canvas()
            self._set_status(f"Saved {entry.label_path.name}")

    @Slot()
    def accept_suggestion(self) -> bool:
        """Save the suggested box as the label (only a box: "no face" is always the user's call), or
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
        """Accept a suggested box, then go to the next picture."""
        self.accept_suggestion()
        self.session.step(1)

    @Slot()
    def previous(self) -> None:
        self.session.step(-1)

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
        engine, detector = self.session.engine, self.session.detector
        min_score = self.session.suggest_all_min_score()
        root, stop = self.root, threading.Event()
        self._suggest_all_stop = stop
        self._suggest_engine = engine
        self.suggest_all_button.setEnabled(False)
        self.engine_combo.setEnabled(False)
        self.suggest_progress.setRange(0, 0)  # busy until the first picture: loading the engine
        self.suggest_progress.setFormat("")
        self.suggest_progress.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self._set_status(f"Suggest all: {ENGINE_NAMES[engine]} is looking at every unlabelled picture "
                         "(you can go on labelling meanwhile) …")

        def job() -> None:
            try:
                report = run_suggest_all(
                    root, lambda: self._finder_for(engine, detector), min_score, stop,
                    lambda done, total, path: self._suggest_all_progress.emit(done, total, str(path)),
                )
            except Exception as exc:  # the engine cannot load, the folder went away: said, never a crash
                self._suggest_all_done.emit(None, str(exc) or type(exc).__name__)
            else:
                self._suggest_all_done.emit(report, "")

        try:
            self._suggest_all_pool.submit(job)
        except RuntimeError:  # the tab is closing (shutdown): nothing more starts
            return False
        return True

    def is_suggesting_all(self) -> bool:
        return self._suggest_all_stop is not None

    @Slot()
    def cancel_suggest_all(self) -> None:
        """Stop "Suggest all" after the picture in hand; the labels written so far stay."""
        if self._suggest_all_stop is not None:
            self._suggest_all_stop.set()
            self.cancel_button.setEnabled(False)
            self._set_status("Suggest all: stopping after this picture …")

    @Slot(int, int, str)
    def _on_suggest_progress(self, done: int, total: int, path: str) -> None:
        if not self.is_suggesting_all():
            return
        self.suggest_progress.setRange(0, max(1, total))
        self.suggest_progress.setValue(done)
        self.suggest_progress.setFormat(f"{done} / {total}")
        if self.cancel_button.isEnabled():
            self._set_status(f"Suggest all: {ENGINE_NAMES[self._suggest_engine]} looked at {done} of {total} "
                             f"unlabelled pictures ({Path(path).name})")

    @Slot(object, str)
    def _on_suggest_all_done(self, report: AutolabelReport | None, error: str) -> None:
        """Put the buttons back, say what was done, and read the dataset again to show the new labels."""
        self._suggest_all_stop = None
        self.suggest_progress.hide()
        self.cancel_button.hide()
        self.suggest_all_button.setEnabled(True)
        self.engine_combo.setEnabled(True)
        engine = self._suggest_engine
        if report is None:
            self._set_status(f"Suggest all: {ENGINE_NAMES[engine]} could not run: {error}", error=True)
            if engine == MTCNN and MTCNN not in self._finders:  # it never loaded: suggest with another engine
                if self.session.mtcnn_failed(error):
                    self._ask_again()
            self.suggest_all_finished.emit(None)
            return
        text = report.summary_text()
        if report.written:
            text += "\nReview them one by one: → accepts a suggestion, or correct the box (U: next to review)."
        if report.root == self.root:  # not when the user opened another dataset meanwhile
            self.session.review_next_scan = True
            self.refresh()
        self._set_status(f"{capitalised(report.engine)}: {text}", error=bool(report.skipped))
        if report.written:
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
        if self.root is not None and not self._scanning:
            self.refresh()

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #b00020;" if error else "")

    def shutdown(self) -> None:
        """Stop "Suggest all" and let running scans and suggestions end (they are short), so no thread
        outlives the window."""
        self.session.generation += 1
        if self._suggest_all_stop is not None:
            self._suggest_all_stop.set()
        self._scan_pool.clear()
        self._suggest_pool.shutdown(wait=False, cancel_futures=True)  # what has not started never will
        self._suggest_all_pool.shutdown(wait=True)  # stops between two pictures; loading MTCNN takes seconds
        self._suggest_pool.shutdown(wait=True)
        self._scan_pool.waitForDone(5000)
