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

import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
from desktop.imaging import bgr_to_qimage
from desktop.settings import read_str
from desktop.widgets import FolderField
from training.autolabel import (
    DEFAULT_MIN_SCORE,
    AutolabelReport,
    SuggestionMark,
    autolabel_dataset,
    mtcnn_available,
    read_suggestion_mark,
)

FACE_THRESHOLD = 0.5
MIN_BOX_PX = 2.0  # a drag shorter than this is a click, not a box

Box = tuple[float, float, float, float]

UNLABELLED, FACE, NO_FACE, BROKEN = "unlabelled", "face", "no face", "broken"
_STATUS_MARK = {UNLABELLED: "○", FACE: "●", NO_FACE: "∅", BROKEN: "⚠"}
_SUGGESTED_MARK = {FACE: "◐", NO_FACE: "◌"}  # labelled by "Suggest all", not reviewed yet

# Suggestion engines: the key, and how the UI names it ("suggested by ...").
MTCNN, MODEL, CLASSIC = "mtcnn", "model", "classic"
ENGINE_NAMES = {MTCNN: "MTCNN", MODEL: "your model", CLASSIC: "the classic finder"}
_SCORED_ENGINES = (MTCNN, MODEL)  # the classic finder's score is always 1.0: not shown
_ENGINE_TIP = ("Who suggests the face box: MTCNN, a pretrained face detector (best); your trained model "
               "(to see how it does); or the classic LBP finder")


def clamp_box(box: Box, width: int, height: int) -> Box | None:
    """Order the corners and keep the box inside the picture; None when what is left is too small."""
    x1, x2 = sorted((float(box[0]), float(box[2])))
    y1, y2 = sorted((float(box[1]), float(box[3])))
    x1, x2 = max(0.0, x1), min(float(width), x2)
    y1, y2 = max(0.0, y1), min(float(height), y2)
    if x2 - x1 < MIN_BOX_PX or y2 - y1 < MIN_BOX_PX:
        return None
    return (x1, y1, x2, y2)


def label_path_for(image_path: Path) -> Path:
    """Where a picture's label goes: ``training.data.label_path_for``, the rule "Suggest all" follows too."""
    from training.data import label_path_for as rule

    return rule(image_path)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class LabelEntry:
    """One picture in the Label tab's list and what is known about its label."""

    image_path: Path
    label_path: Path
    status: str
    box: Box | None = None      # in the picture's pixels, when status is FACE
    width: int = 0
    height: int = 0
    note: str = ""              # why a picture is broken, or why its old label was ignored
    suggested_by: SuggestionMark | None = None  # labelled by "Suggest all" and not reviewed yet

    @property
    def labelled(self) -> bool:
        return self.status in (FACE, NO_FACE)

    @property
    def unreviewed(self) -> bool:
        return self.labelled and self.suggested_by is not None


@dataclass(frozen=True)
class Suggestion:
    """What MTCNN, the user's model or the classic finder proposes for a picture."""

    box: Box | None        # None: it found no face
    score: float | None    # None where the engine has no meaningful score (the classic finder)
    source: str            # who suggested it: "MTCNN", "your model", "the classic finder"
    error: str = ""


def scan_dataset(root: Path) -> tuple[list[LabelEntry], list[str]]:
    """Every picture of a dataset with its label status, and the dataset's problems (file: message).

    Reads with ``training.data.load_dataset`` (one home for the format). Pictures it skipped are kept
    in the list: a picture whose label is unreadable becomes unlabelled (labelling it again replaces
    the bad JSON); a picture that cannot be read at all is listed as broken (Delete moves it away).
    """
    from training.data import IMAGE_EXTENSIONS, load_dataset
    from training.preprocess import box_to_pixels

    dataset = load_dataset(root)
    entries: dict[Path, LabelEntry] = {}
    for samples in dataset.splits.values():
        for sample in samples:
            if sample.label_path is None:
                status, box = UNLABELLED, None
            elif sample.has_face:
                status, box = FACE, box_to_pixels(sample.box, sample.width, sample.height)
            else:
                status, box = NO_FACE, None
            entries[sample.image_path] = LabelEntry(
                sample.image_path, sample.label_path or label_path_for(sample.image_path), status, box,
                sample.width, sample.height,
                suggested_by=read_suggestion_mark(sample.label_path) if sample.label_path else None,
            )
    for problem in dataset.problems:
        path = problem.path
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and path not in entries:
            entries[path] = LabelEntry(path, label_path_for(path), BROKEN, note=problem.message)
        elif path.suffix.lower() == ".json":
            folder = path.parent.parent / "images" if path.parent.name == "labels" else path.parent
            for suffix in IMAGE_EXTENSIONS:
                image = folder / f"{path.stem}{suffix}"
                if image.is_file() and image not in entries:
                    entries[image] = LabelEntry(image, path, UNLABELLED, note=f"its label was ignored: {problem.message}")
                    break
    ordered = sorted(entries.values(), key=lambda e: (str(e.image_path.parent), e.image_path.name))
    return ordered, [str(p) for p in dataset.problems]


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
        self._drag: tuple | None = None  # (mode, start point in pixels, box when the drag began)

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

    def _hit(self, pos: QPointF) -> str:
        """"new", "move", or the edges under the pointer ("l", "t", "r", "b" and corner pairs)."""
        rect = self._box_rect()
        if rect is None:
            return "new"
        h = self.HANDLE_PX
        x, y = pos.x(), pos.y()
        within_y = rect.top() - h <= y <= rect.bottom() + h
        within_x = rect.left() - h <= x <= rect.right() + h
        edges = ""
        if within_y and abs(x - rect.left()) <= h:
            edges += "l"
        elif within_y and abs(x - rect.right()) <= h:
            edges += "r"
        if within_x and abs(y - rect.top()) <= h:
            edges += "t"
        elif within_x and abs(y - rect.bottom()) <= h:
            edges += "b"
        if edges:
            return edges
        return "move" if rect.contains(pos) else "new"

    _CURSORS = {
        "l": Qt.CursorShape.SizeHorCursor, "r": Qt.CursorShape.SizeHorCursor,
        "t": Qt.CursorShape.SizeVerCursor, "b": Qt.CursorShape.SizeVerCursor,
        "lt": Qt.CursorShape.SizeFDiagCursor, "rb": Qt.CursorShape.SizeFDiagCursor,
        "rt": Qt.CursorShape.SizeBDiagCursor, "lb": Qt.CursorShape.SizeBDiagCursor,
        "move": Qt.CursorShape.SizeAllCursor, "new": Qt.CursorShape.CrossCursor,
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
        mode, (sx, sy), start_box = self._drag
        x, y = self.to_image(pos)
        width, height = self._size
        if mode == "new" or start_box is None:
            self._box = (min(sx, x), min(sy, y), max(sx, x), max(sy, y))
        elif mode == "move":
            x1, y1, x2, y2 = start_box
            dx = min(max(x - sx, -x1), width - x2)
            dy = min(max(y - sy, -y1), height - y2)
            self._box = (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
        else:
            x1, y1, x2, y2 = start_box
            if "l" in mode:
                x1 = x
            if "r" in mode:
                x2 = x
            if "t" in mode:
                y1 = y
            if "b" in mode:
                y2 = y
            self._box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
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
    """Picture list, the canvas, Previous / No face / Delete / Next, and labelled / total."""

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
        self.entries: list[LabelEntry] = []
        self.problems: list[str] = []
        self.index = -1
        self.root: Path | None = None
        self._scan_pool = QThreadPool(self)
        self._scan_pool.setMaxThreadCount(1)
        # Suggestion engines run TensorFlow (MTCNN, your model) on Python threads, not QThreadPool's: TensorFlow's
        # pybind11 code re-takes the GIL by the thread's registered state, and a Qt-made thread froze the
        # whole app once that way (under Xvfb; both threads waiting for the GIL). One thread owns the finder,
        # so suggestions come in order.
        self._suggest_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facetracker-suggest")
        self._scan_number = 0
        self._scanning = False
        self._detector = None
        self._generation = 0
        self._finders: dict[str, object] = {}  # MTCNN / classic finder, made off the UI thread on first use
        self._finders_lock = threading.Lock()   # the suggestion thread and "Suggest all" share them
        self._mtcnn_error = "" if mtcnn_available() else "MTCNN is not installed: pip install mtcnn"
        self._engine = self._default_engine()
        self._engine_chosen = False             # True once the user picks an engine by hand
        self._suggest_all_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facetracker-suggest-all")
        self._suggest_all_stop: threading.Event | None = None  # set while "Suggest all" runs; set() cancels
        self._suggest_engine = self._engine
        self._after_suggest_all = False  # the next scan shows the first label to review, keeps the summary
        self._suggestions: dict[Path, Suggestion] = {}
        self._asked: set[Path] = set()
        self._current_image: np.ndarray | None = None
        self._scan_done.connect(self._on_scan_done)
        self._suggestion_done.connect(self._on_suggestion_done)
        self._engine_failed.connect(self._on_engine_failed)
        self._suggest_all_progress.connect(self._on_suggest_progress)
        self._suggest_all_done.connect(self._on_suggest_all_done)
        self._build_ui()
        self._build_actions()
        folder = read_str(self.settings, keys.DATASET)
        if folder:
            self.set_dataset(folder)

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
        self.engine_combo.setToolTip(_ENGINE_TIP)
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
        self._set_engine(self._engine)

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
        if not text:
            return
        if self.root is not None and Path(text) == self.root and self.entries:
            return
        self.dataset_edit.setText(text)
        self.settings.setValue(keys.DATASET, text)
        self.root = Path(text)
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
        current = self.current_entry().image_path if self.current_entry() else None
        if entries is None:
            self.entries, self.problems = [], []
            self._fill_list()
            self._show(-1)
            self._set_status(f"Nothing to label: {error}. Take pictures in the Collect tab first.", error=True)
            return
        self.entries, self.problems = entries, problems
        self._fill_list()
        self.problems_view.setVisible(bool(problems))
        self.problems_view.setPlainText("Problems in this dataset:\n" + "\n".join(problems) if problems else "")
        review, self._after_suggest_all = self._after_suggest_all, False
        if not review:
            self._set_status("")
        paths = [e.image_path for e in self.entries]
        first_unreviewed = next((i for i, e in enumerate(self.entries) if e.unreviewed), None)
        if review and first_unreviewed is not None:
            self._show(first_unreviewed)
        elif current in paths:
            self._show(paths.index(current))
        else:
            first_unlabelled = next((i for i, e in enumerate(self.entries) if e.status == UNLABELLED), 0)
            self._show(first_unlabelled if self.entries else -1)

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
        mark = _SUGGESTED_MARK[entry.status] if entry.unreviewed else _STATUS_MARK[entry.status]
        item.setText(f"{mark}  {entry.image_path.name}")
        status = f"{entry.status}, suggested by {entry.suggested_by}, not reviewed" if entry.unreviewed else entry.status
        item.setToolTip(f"{entry.image_path}\n{status}" + (f"\n{entry.note}" if entry.note else ""))

    def _refresh_item(self, index: int) -> None:
        item = self.picture_list.item(index)
        if item is not None:
            self._decorate(item, self.entries[index])
        self._update_progress()

    def labelled_count(self) -> int:
        return sum(1 for e in self.entries if e.labelled)

    def _update_progress(self) -> None:
        total = len(self.entries)
        done = self.labelled_count()
        faces = sum(1 for e in self.entries if e.status == FACE)
        unreviewed = sum(1 for e in self.entries if e.unreviewed)
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{done} / {total} labelled")
        text = f"Labelled {done} / {total} ({faces} faces, {done - faces} no face)"
        self.progress_label.setText(text + (f", {unreviewed} to review" if unreviewed else ""))

    # ------------------------------------------------------------------------------------ showing
    def current_entry(self) -> LabelEntry | None:
        return self.entries[self.index] if 0 <= self.index < len(self.entries) else None

    @Slot(int)
    def _on_row_changed(self, row: int) -> None:
        if row != self.index:
            self._show(row)

    def _show(self, index: int) -> None:
        self.index = index if 0 <= index < len(self.entries) else -1
        self.picture_list.blockSignals(True)
        self.picture_list.setCurrentRow(self.index)
        self.picture_list.blockSignals(False)
        entry = self.current_entry()
        self._current_image = None
        if entry is None:
            self.canvas.set_image(None)
            self.canvas.set_box(None)
            self.canvas.set_banner("No pictures" if self.root else "Choose a dataset folder")
            return
        from training.data import DataError, load_image

        try:
            image = load_image(entry.image_path)
        except DataError as exc:
            entry.status, entry.note = BROKEN, exc.message
            self._refresh_item(self.index)
            self.canvas.set_image(None)
            self.canvas.set_box(None)
            self.canvas.set_banner(f"Cannot show this picture: {exc.message}")
            return
        self._current_image = image
        entry.width, entry.height = image.shape[1], image.shape[0]
        self.canvas.set_image(image)
        self._show_label(entry)
        self._prefetch()

    def _show_label(self, entry: LabelEntry) -> None:
        if entry.unreviewed:
            self._show_unreviewed(entry)
        elif entry.status == FACE:
            self.canvas.set_box(entry.box)
            self.canvas.set_banner("Face", QColor(40, 150, 60, 210))
        elif entry.status == NO_FACE:
            self.canvas.set_box(None)
            self.canvas.set_banner("No face", QColor(180, 40, 40, 210))
        else:
            suggestion = self._suggestions.get(entry.image_path)
            if suggestion is None:
                self.canvas.set_box(None)
                self.canvas.set_banner("Looking for a face …")
                self._request_suggestion(entry)
            else:
                self._show_suggestion(entry, suggestion)
        if entry.note:
            self._set_status(f"{entry.image_path.name}: {entry.note}", error=True)

    def _show_unreviewed(self, entry: LabelEntry) -> None:
        """A label "Suggest all" wrote: shown as a suggestion until the user accepts or corrects it."""
        mark = entry.suggested_by
        score = f" ({mark.score:.2f})" if mark.score is not None else ""
        if entry.status == FACE:
            self.canvas.set_box(entry.box, suggested=True)
            self.canvas.set_banner(f"Suggested by {mark.engine}{score}, not reviewed: → accepts, or correct it",
                                   QColor(160, 100, 0, 210))
        else:
            self.canvas.set_box(None)
            self.canvas.set_banner(f"{_capitalised(mark.engine)} found no face, not reviewed: → accepts, "
                                   "or draw the box", QColor(120, 80, 0, 210))

    def _show_suggestion(self, entry: LabelEntry, suggestion: Suggestion) -> None:
        box = clamp_box(suggestion.box, entry.width, entry.height) if suggestion.box and entry.width else None
        score = f" ({suggestion.score:.2f})" if suggestion.score is not None else ""
        if suggestion.error:
            self.canvas.set_box(None)
            self.canvas.set_banner(f"No suggestion ({suggestion.error}): draw the box, or N for no face")
        elif box is None:
            self.canvas.set_box(None)
            self.canvas.set_banner(f"{_capitalised(suggestion.source)} found no face{score}: draw the box, "
                                   "or N for no face", QColor(120, 80, 0, 210))
        else:
            self.canvas.set_box(box, suggested=True)
            self.canvas.set_banner(f"Suggested by {suggestion.source}{score}: → accepts, or correct it",
                                   QColor(160, 100, 0, 210))

    # ------------------------------------------------------------------------------------ suggestions
    def set_detector(self, detector) -> None:
        """The user's trained Detector (None: none yet): an engine to choose, and the fallback without MTCNN."""
        self._detector = detector
        self.engine_combo.model().item(self.engine_combo.findData(MODEL)).setEnabled(detector is not None)
        path = getattr(detector, "path", None)
        self.engine_combo.setItemText(self.engine_combo.findData(MODEL),
                                      f"your model ({Path(path).name})" if path else "your model")
        if not self._engine_chosen or (self._engine == MODEL and detector is None):
            engine = self._default_engine()
        else:
            engine = self._engine
        self._set_engine(engine, force=True)

    def engine(self) -> str:
        """Who suggests boxes now: MTCNN, MODEL or CLASSIC."""
        return self._engine

    def _default_engine(self) -> str:
        """MTCNN when it can be loaded; else, as before it, the user's model, else the classic finder."""
        if not self._mtcnn_error:
            return MTCNN
        return MODEL if self._detector is not None else CLASSIC

    @Slot(int)
    def _on_engine_chosen(self, index: int) -> None:
        self._engine_chosen = True
        self._set_engine(self.engine_combo.itemData(index))

    def set_engine(self, engine: str) -> None:
        """Suggest with ``engine`` (MTCNN, MODEL or CLASSIC) from now on, as if chosen in the list."""
        if engine not in ENGINE_NAMES:
            raise ValueError(f"unknown suggestion engine {engine!r}; expected one of {', '.join(ENGINE_NAMES)}")
        self._engine_chosen = True
        self._set_engine(engine)

    def _set_engine(self, engine: str, force: bool = False) -> None:
        if (engine == MODEL and self._detector is None) or (engine == MTCNN and self._mtcnn_error):
            engine = self._default_engine()
        changed = engine != self._engine
        self._engine = engine
        self.engine_combo.setCurrentIndex(self.engine_combo.findData(engine))
        self.engine_combo.model().item(self.engine_combo.findData(MTCNN)).setEnabled(not self._mtcnn_error)
        self._show_source()
        if changed or force:  # suggestions of the old engine (or the old model) are dropped and asked again
            self._generation += 1
            self._suggestions.clear()
            self._asked.clear()
            entry = self.current_entry()
            if entry is not None and entry.status == UNLABELLED and self._current_image is not None:
                self._show_label(entry)

    def _show_source(self) -> None:
        path = getattr(self._detector, "path", None)
        model = f"your model {Path(path).name}" if path else "your model"
        if self._engine == MTCNN:
            text = "Suggestions: MTCNN, a pretrained face detector"
            if self._detector is not None:
                text += f" (choose {model} in the list to see how it does)"
        elif self._engine == MODEL:
            text = f"Suggestions: {model}"
        else:
            text = "Suggestions: the classic face finder"
            if self._detector is None:
                text += " (until you have trained a model)"
        if self._mtcnn_error and self._engine != MTCNN:
            text += f". MTCNN is unavailable ({self._mtcnn_error})"
        self.source_label.setText(text)
        self.engine_combo.setToolTip(_ENGINE_TIP + (f"\nMTCNN is unavailable: {self._mtcnn_error}"
                                                    if self._mtcnn_error else ""))

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
        path = entry.image_path
        if path in self._asked:
            return
        self._asked.add(path)
        generation, engine, detector = self._generation, self._engine, self._detector
        source = ENGINE_NAMES[engine]

        def suggest() -> None:
            try:
                finder = self._finder_for(engine, detector)
            except Exception as exc:  # MTCNN not installed or broken: the tab falls back and says so
                self._engine_failed.emit(generation, engine, str(exc) or type(exc).__name__)
                return
            try:
                from training.data import load_image

                image = load_image(path)
                detection = finder.detect(image)
                if engine == MODEL:
                    threshold = getattr(detector, "threshold", FACE_THRESHOLD)
                    face = detection.is_face(threshold)
                else:
                    face = detection is not None and (engine != MTCNN or detection.score >= DEFAULT_MIN_SCORE)
                score = float(detection.score) if detection is not None and engine in _SCORED_ENGINES else None
                result = Suggestion(tuple(detection.box) if face else None, score, source)
            except Exception as exc:  # a suggestion is a help, never a crash
                result = Suggestion(None, None, source, error=str(exc) or type(exc).__name__)
            self._suggestion_done.emit(generation, str(path), result)

        try:
            self._suggest_pool.submit(suggest)
        except RuntimeError:  # the tab is closing (shutdown): nothing more starts
            return

    @Slot(int, str, str)
    def _on_engine_failed(self, generation: int, engine: str, message: str) -> None:
        if engine == MTCNN and not self._mtcnn_error:
            self._mtcnn_error = f"it cannot be loaded: {message}"
            if self._engine == MTCNN:
                self._set_engine(self._default_engine(), force=True)
            else:
                self._show_source()
        if generation == self._generation:
            self._set_status(f"{ENGINE_NAMES[engine]} cannot suggest: {message}", error=True)

    def _prefetch(self) -> None:
        """Ask for the next unlabelled picture's suggestion now, so it is ready when the user gets there."""
        for entry in self.entries[self.index + 1:]:
            if entry.status == UNLABELLED:
                if entry.image_path not in self._suggestions:
                    self._request_suggestion(entry)
                return

    @Slot(int, str, object)
    def _on_suggestion_done(self, generation: int, path: str, suggestion: object) -> None:
        if generation != self._generation:
            return
        image_path = Path(path)
        self._suggestions[image_path] = suggestion
        entry = self.current_entry()
        if entry is not None and entry.image_path == image_path and entry.status == UNLABELLED:
            self._show_suggestion(entry, suggestion)

    def suggestion_for(self, image_path: Path) -> Suggestion | None:
        return self._suggestions.get(Path(image_path))

    # ------------------------------------------------------------------------------------ labelling
    def _write(self, entry: LabelEntry, box: Box | None) -> bool:
        from training.data import write_labelme

        try:
            write_labelme(entry.label_path, entry.image_path, box, entry.width, entry.height)
        except OSError as exc:
            self._set_status(f"{entry.label_path}: cannot write the label: {exc.strerror or exc}", error=True)
            return False
        entry.status, entry.box, entry.note = (FACE, box, "") if box is not None else (NO_FACE, None, "")
        entry.suggested_by = None  # written by the user: reviewed
        self._refresh_item(self.index)
        self.labels_changed.emit()
        return True

    @Slot(tuple)
    def _on_box_edited(self, box: tuple) -> None:
        entry = self.current_entry()
        if entry is None or self._current_image is None:
            return
        if self._write(entry, tuple(float(v) for v in box)):
            self.canvas.set_banner("Face", QColor(40, 150, 60, 210))
            self._set_status(f"Saved {entry.label_path.name}")

    @Slot()
    def accept_suggestion(self) -> bool:
        """Save the suggested box as the label (only a box: "no face" is always the user's call), or
        accept a label "Suggest all" wrote, face or no face: the user has seen it, it is now theirs."""
        entry = self.current_entry()
        if entry is not None and entry.unreviewed and self._current_image is not None:
            if self._write(entry, entry.box if entry.status == FACE else None):
                self._show_label(entry)
                self._set_status(f"Saved {entry.label_path.name} (reviewed)")
                return True
            return False
        if entry is None or entry.status != UNLABELLED or not self.canvas.is_suggestion():
            return False
        if self._write(entry, self.canvas.box()):
            self.canvas.set_box(entry.box)
            self.canvas.set_banner("Face", QColor(40, 150, 60, 210))
            return True
        return False

    @Slot()
    def next(self) -> None:
        """Accept a suggested box, then go to the next picture."""
        self.accept_suggestion()
        if self.index + 1 < len(self.entries):
            self._show(self.index + 1)

    @Slot()
    def previous(self) -> None:
        if self.index > 0:
            self._show(self.index - 1)

    @Slot()
    def next_unlabelled(self) -> None:
        """Go to the next picture without a label, or with a suggested label not yet reviewed."""
        for i in range(self.index + 1, len(self.entries)):
            if self.entries[i].status == UNLABELLED or self.entries[i].unreviewed:
                self._show(i)
                return
        self._set_status("No unlabelled or unreviewed pictures after this one.")

    # ------------------------------------------------------------------------------------ suggest all
    @Slot()
    def suggest_all(self) -> bool:
        """Pre-label every unlabelled picture in the background with the current engine (False: not started)."""
        if self.root is None or self.is_suggesting_all():
            return False
        engine, detector = self._engine, self._detector
        if engine == MODEL:
            min_score = float(getattr(detector, "threshold", FACE_THRESHOLD))
        else:
            min_score = DEFAULT_MIN_SCORE
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
                self._mtcnn_error = f"it cannot be loaded: {error}"
                if self._engine == MTCNN:
                    self._set_engine(self._default_engine(), force=True)
            self.suggest_all_finished.emit(None)
            return
        text = report.summary_text()
        if report.written:
            text += "\nReview them one by one: → accepts a suggestion, or correct the box (U: next to review)."
        if report.root == self.root:  # not when the user opened another dataset meanwhile
            self._after_suggest_all = True
            self.refresh()
        self._set_status(f"{_capitalised(report.engine)}: {text}", error=bool(report.skipped))
        if report.written:
            self.labels_changed.emit()
        self.suggest_all_finished.emit(report)

    @Slot()
    def mark_no_face(self) -> None:
        """Label the picture "no face" (a JSON without shapes) and go on."""
        entry = self.current_entry()
        if entry is None or self._current_image is None:
            return
        if self._write(entry, None):
            self._set_status(f"Saved {entry.label_path.name} (no face)")
            if self.index + 1 < len(self.entries):
                self._show(self.index + 1)
            else:
                self._show_label(entry)

    @Slot()
    def delete_current(self) -> None:
        """Move the picture and its label to ``DATASET/trash/`` (nothing is lost; move it back to restore)."""
        entry = self.current_entry()
        if entry is None:
            return
        trash = (self.root or entry.image_path.parent) / "trash"
        try:
            trash.mkdir(parents=True, exist_ok=True)
            moved = [self._move_to(trash, entry.image_path)]
            if entry.label_path.is_file():
                moved.append(self._move_to(trash, entry.label_path))
        except OSError as exc:
            self._set_status(f"{entry.image_path}: cannot move it to {trash}: {exc.strerror or exc}", error=True)
            return
        index = self.index
        del self.entries[index]
        self._suggestions.pop(entry.image_path, None)
        self.picture_list.blockSignals(True)
        self.picture_list.takeItem(index)
        self.picture_list.blockSignals(False)
        self._update_progress()
        self.labels_changed.emit()
        self._show(min(index, len(self.entries) - 1))
        self._set_status(f"Moved {', '.join(p.name for p in moved)} to {trash}")

    @staticmethod
    def _move_to(folder: Path, path: Path) -> Path:
        target = folder / path.name
        n = 2
        while target.exists():
            target = folder / f"{path.stem}-{n}{path.suffix}"
            n += 1
        shutil.move(str(path), str(target))
        return target

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
        self._generation += 1
        if self._suggest_all_stop is not None:
            self._suggest_all_stop.set()
        self._scan_pool.clear()
        self._suggest_pool.shutdown(wait=False, cancel_futures=True)  # what has not started never will
        self._suggest_all_pool.shutdown(wait=True)  # stops between two pictures; loading MTCNN takes seconds
        self._suggest_pool.shutdown(wait=True)
        self._scan_pool.waitForDone(5000)
