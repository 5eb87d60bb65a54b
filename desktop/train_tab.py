"""The Train tab: pick a dataset, see what it holds, train a detector in a child process and watch it learn.

Training runs ``facetracker-train DATA --progress json`` as a child process (see
:mod:`desktop.child_process`), the very engine the command line uses, so the window stays
responsive and a TensorFlow crash cannot take the app down. Each JSON event the child prints
updates the live plots, the learning rate, the ETA and the validation IoU.

Where runs go: ``DATASET/../runs/<dataset name>-<date>-<time>``, beside the dataset they were
trained on, so one project folder holds its pictures and its models together, nothing lands in
the app's install folder or the current directory, and two runs never share a folder.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shlex
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QFont, QFontDatabase, QIcon, QPixmap
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop import settings as keys
from desktop.background import LatestOnly
from desktop.child_process import TrainingProcess
from desktop.exporter import ModelExporter
from desktop.finetune_panel import FineTunePanel, FineTuneSettings
from desktop.plots import LossPlots
from desktop.settings import read_str
from desktop.settings_form import SettingsForm
from desktop.train_progress import EtaEstimator, RunButtons, RunProgress, epoch_quality_text
from desktop.widgets import FolderField
from training.core import (
    BATCH,
    END,
    EPOCH,
    ERROR,
    START,
    WARNING,
    InputError,
    format_duration,
    read_json_object,
    read_text,
)
from training.engine import (
    BEST_MODEL,
    CONFIG_JSON,
    HISTORY_CSV,
    PR_CURVE_PNG,
    TEST_PREDICTIONS_JPG,
    TrainConfig,
    can_resume,
    config_to_args,
    run_folder_for,
    setting,
)
from training.model import BACKBONES, start_text

# Names the tab has always offered (tests and callers import them from here).
__all__ = [
    "BACKBONE_CHOICES", "FORM_SETTINGS", "EtaEstimator", "ResultPictures", "TrainTab",
    "epoch_quality_text", "format_duration", "read_history_csv", "run_dataset", "run_folder_for",
]

#: The engine's backbones and defaults (training.engine.settings is plain Python: no Keras import here).
BACKBONE_CHOICES = setting("backbone").choices
#: The settings the tab shows, in this order (their widgets are made from the table: desktop.settings_form).
FORM_SETTINGS = ("epochs", "batch_size", "backbone", "input_size", "learning_rate", "weights", "augment",
                 "tutorial_exact")

# Keys of this tab's settings (the dataset folder is shared: desktop.settings.DATASET); the form's are train/<name>.
SETTINGS_LAST_RUN = "train/last_run"


def read_history_csv(run_dir: Path) -> list[dict]:
    """The finished epochs of a run (its ``history.csv``), as epoch events for the plots; [] if none."""
    try:  # guarded: a named pipe or a huge file in a run folder must not hang the window
        text = read_text(Path(run_dir) / HISTORY_CSV, max_bytes=64 * 2**20)
    except InputError:
        return []
    rows = []
    with contextlib.suppress(csv.Error):
        for row in csv.DictReader(io.StringIO(text, newline="")):
            try:
                rows.append({key: float(value) for key, value in row.items() if value not in (None, "")})
            except (TypeError, ValueError):  # a row with more fields than the header, or not numbers
                continue
    return rows


def _load_dataset(path: Path):
    from training.data import load_dataset  # in the worker thread: the window opens without it

    return load_dataset(path)


def run_dataset(run_dir: Path) -> Path | None:
    """The dataset a run was trained on, from its ``config.json`` (None when unknown)."""
    record = read_json_object(Path(run_dir) / CONFIG_JSON)  # guarded: never blocks, never raises
    try:
        data = record["config"]["data"]
    except (KeyError, TypeError):
        return None
    return Path(data) if isinstance(data, str) and data else None


class ResultPictures(QGroupBox):
    """A run's result pictures as thumbnails (``test_predictions.jpg``, ``pr_curve.png``, written by
    :mod:`training.evaluation.report`); a click opens the file full size in the system's viewer. Hidden without them."""

    THUMB_HEIGHT = 120
    PICTURES = ((TEST_PREDICTIONS_JPG, "Test pictures, worst first"),
                (PR_CURVE_PNG, "Precision-recall over the threshold"))

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Result on the test pictures (click one to open it)", parent)
        self.run_dir: Path | None = None
        self.buttons: dict[str, QToolButton] = {}
        row = QHBoxLayout(self)
        for name, text in self.PICTURES:
            button = QToolButton()
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setAutoRaise(True)
            button.setText(text)
            button.clicked.connect(lambda _checked=False, name=name: self.open(name))
            row.addWidget(button)
            self.buttons[name] = button
        row.addStretch(1)
        self.setVisible(False)

    def show_run(self, run_dir: Path | None) -> bool:
        """Show the pictures of ``run_dir`` that exist (None: hide); True when any is shown."""
        self.run_dir = run_dir
        shown = False
        for name, button in self.buttons.items():
            path = run_dir / name if run_dir is not None else None
            pixmap = QPixmap(str(path)) if path is not None and path.is_file() else QPixmap()
            button.setVisible(not pixmap.isNull())
            if not pixmap.isNull():
                thumb = pixmap.scaledToHeight(self.THUMB_HEIGHT, Qt.TransformationMode.SmoothTransformation)
                button.setIcon(QIcon(thumb))
                button.setIconSize(thumb.size())
                button.setToolTip(f"{path}\nClick to open it full size")
                shown = True
        self.setVisible(shown)
        return shown

    def open(self, name: str) -> None:
        if self.run_dir is not None and (self.run_dir / name).is_file():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run_dir / name)))


class DatasetPane(QWidget):
    """The Train tab's left column: "Dataset: [folder] Browse… Rescan", the dataset's summary and problems, and
    where the run will be saved; the tab connects it."""

    def __init__(self, mono: QFont) -> None:
        super().__init__()
        self.field = FolderField("Dataset:", "dataset folder (images/ + labels/, or train/val/test)",
                                 "Choose a dataset folder")
        self.rescan_button = QPushButton("Rescan")
        row = QHBoxLayout()
        row.addWidget(self.field, 1)
        row.addWidget(self.rescan_button)
        self.summary_view = QPlainTextEdit()
        self.summary_view.setReadOnly(True)
        self.summary_view.setFont(mono)
        self.summary_view.setPlaceholderText("Choose a dataset folder to see its pictures and problems.")
        self.summary_view.setMaximumHeight(150)
        self.run_label = QLabel("Runs are saved beside the dataset, in DATASET/../runs/")
        self.run_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.run_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.summary_view)
        layout.addWidget(self.run_label)


class TrainTab(QWidget):
    """Dataset summary, training settings, Start/Stop/Resume, live plots, and "Use this model"."""

    model_ready = Signal(str)
    dataset_chosen = Signal(str)

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._summary_reader = LatestOnly(self)  # reads the dataset's summary in a worker thread
        self.dataset_summary = None  # the last training.data.dataset.Dataset read, or None
        self.run_dir: Path | None = None
        self.best_model: Path | None = None

        self.process = TrainingProcess(self)
        self.process.event.connect(self._on_event)
        self.process.log.connect(self._append_log)
        self.process.succeeded.connect(self._on_succeeded)
        self.process.stopped.connect(self._on_stopped)
        self.process.failed.connect(self._on_failed)
        self._summary_reader.done.connect(self._on_summary)

        self._build_ui()
        self._restore_settings()
        # Only now: restoring one field must not save the others before they are restored.
        self.backbone_combo.currentTextChanged.connect(self._on_backbone_changed)
        self.form.changed.connect(self._save_settings)
        for widget in (self.backbone_combo, self.weights_combo):
            widget.currentTextChanged.connect(self._update_start_label)
        self._update_start_label()
        last_run = read_str(self.settings, SETTINGS_LAST_RUN)
        if last_run and Path(last_run).is_dir():
            self.run_dir = Path(last_run)
            self.run_label.setText(f"Last run: {last_run}")
            if (self.run_dir / BEST_MODEL).is_file():
                self.best_model = self.run_dir / BEST_MODEL
            self.result_pictures.show_run(self.run_dir)
        self._update_buttons()
        if self.dataset_edit.text():
            self.refresh_summary()

    # ------------------------------------------------------------------------------------ layout
    def _build_ui(self) -> None:
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        self.dataset_pane = pane = DatasetPane(mono)  # the dataset folder, its summary, where runs go
        self.dataset_field, self.dataset_edit, self.rescan_button = pane.field, pane.field.edit, pane.rescan_button
        self.summary_view, self.run_label = pane.summary_view, pane.run_label
        self.dataset_field.chosen.connect(lambda _path: self._on_dataset_edited())
        self.rescan_button.clicked.connect(self.refresh_summary)

        # Every settings widget is made from training.engine.settings, the table the CLI's parser is built from.
        self.form = SettingsForm(FORM_SETTINGS)
        widgets = self.form.widgets
        self.epochs_spin, self.batch_spin, self.backbone_combo = widgets["epochs"], widgets["batch_size"], widgets["backbone"]
        self.input_spin, self.lr_edit, self.weights_combo = widgets["input_size"], widgets["learning_rate"], widgets["weights"]
        self.augment_check, self.tutorial_check = widgets["augment"], widgets["tutorial_exact"]
        self.start_label = QLabel()  # what a new run starts from (the backbone and weights above), before Start
        self.start_label.setWordWrap(True)
        self.start_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.form.insert_row("weights", "Starts from:", self.start_label)
        self.finetune_panel = FineTunePanel()  # --from the Detect tab's model (desktop.finetune_panel)
        self.finetune_panel.changed.connect(self._on_finetune_changed)
        self.finetune_settings = FineTuneSettings(self.epochs_spin, self.lr_edit)
        self.form.form.addRow(self.finetune_panel)
        settings_box = QGroupBox("Training settings")
        QVBoxLayout(settings_box).addWidget(self.form)

        top = QHBoxLayout()
        top.addWidget(pane, 3)
        top.addWidget(settings_box, 2)

        self.run_buttons = buttons = RunButtons()  # Start, Stop, Resume, Use this model, Export…, the status line
        self.start_button, self.stop_button, self.resume_button = buttons.start, buttons.stop, buttons.resume
        self.use_button, self.export_button, self.status_label = buttons.use, buttons.export, buttons.status_label
        self.start_button.clicked.connect(self.start_training)
        self.stop_button.clicked.connect(self.stop_training)
        self.resume_button.clicked.connect(self.resume_training)
        self.use_button.clicked.connect(self._use_model)
        self.export_button.clicked.connect(self._export_model)
        self.exporter = ModelExporter(self)
        self.exporter.status.connect(self._set_status)
        self.exporter.status.connect(lambda text, error: self._append_log(text) if error else None)
        self.exporter.finished.connect(self._update_buttons)

        self.progress = RunProgress()  # epoch, lr, ETA, validation quality, device, and the progress bar
        self.epoch_label, self.lr_label, self.eta_label = self.progress.epoch_label, self.progress.lr_label, self.progress.eta_label
        self.iou_label, self.device_label = self.progress.iou_label, self.progress.device_label
        self.progress_bar = self.progress.bar

        self.plots = LossPlots()
        self.plots.setMinimumHeight(220)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setFont(mono)
        self.log_view.setMaximumHeight(110)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setPlaceholderText("Warnings and errors from training appear here.")

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.run_buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.log_view)
        self.result_pictures = ResultPictures()  # shown when a run ends with its test pictures drawn
        layout.addWidget(self.result_pictures)

    # ------------------------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        self.dataset_edit.setText(read_str(self.settings, keys.DATASET))
        # Epochs default to the restored backbone's own (its spec in training.model.backbones.BACKBONES).
        self.form.restore(self.settings, {"epochs": lambda: BACKBONES[self.backbone_combo.currentText()].epochs})
        self._backbone = self.backbone_combo.currentText()

    @Slot(str)
    def _on_backbone_changed(self, backbone: str) -> None:
        """Epochs follow the backbone's default (training.model.backbones.BACKBONES' epochs) unless the user set them;
        the tutorial-exact loss exists only for the single-box backbones."""
        if self.epochs_spin.value() == BACKBONES[self._backbone].epochs:
            self.epochs_spin.setValue(BACKBONES[backbone].epochs)
        self._backbone = backbone
        self._update_tutorial_check()

    @Slot(object)
    def set_model_in_use(self, detector: object) -> None:
        """The Detect tab's model (a Detector, or None): what "Fine-tune the model in use" starts from."""
        self.finetune_panel.set_model(detector)

    @Slot()
    def _on_finetune_changed(self) -> None:
        """Fine-tuning takes the model's backbone, size and weights, and its own epochs and rate; unticked,
        the settings come back as they were."""
        self.finetune_settings.switch(self.finetune_panel.start_model())
        self._update_start_label()
        self._update_buttons()

    @Slot()
    def _update_start_label(self) -> None:
        """Say what a new run with the chosen backbone and weights starts from (training.model.backbones.start_text,
        the words config.json's ``started_from`` uses), so it is known before Start."""
        start = self.finetune_panel.start_model()
        if start is not None:
            self.start_label.setText(start.describe())
            self.start_label.setStyleSheet("")
            return
        text, possible = start_text(self.backbone_combo.currentText(), self.weights_combo.currentText())
        self.start_label.setText(text)
        self.start_label.setStyleSheet("" if possible else "color: #b00020;")
        self.start_label.setToolTip("What a new run starts from. Resume carries on from the run's last epoch.")

    def _update_tutorial_check(self) -> None:
        spec = BACKBONES.get(self.backbone_combo.currentText())
        single_box = spec is None or not spec.grid  # blazeface, multiface, grid: a box a cell
        self.tutorial_check.setEnabled(single_box and not self.is_training())
        if not single_box:
            self.tutorial_check.setChecked(False)

    @Slot()
    def _save_settings(self) -> None:
        self.form.save(self.settings)
        if self.finetune_settings.epochs_before is not None:  # the fine-tune's epochs shown: remember the user's
            self.settings.setValue(self.form.key("epochs"), self.finetune_settings.epochs_before)

    def input_size(self) -> int | None:
        """The chosen input size, or None for the backbone's default."""
        return self.form.value("input_size")

    def learning_rate(self) -> float | None:
        """The typed learning rate, or None for the backbone's default; ValueError when it is not one."""
        return self.form.value("learning_rate")

    # ------------------------------------------------------------------------------------ dataset
    def dataset_path(self) -> Path | None:
        text = self.dataset_edit.text().strip()
        return Path(text) if text else None

    def set_dataset(self, path: str | Path) -> None:
        """Show and remember a dataset folder, and read its summary in the background."""
        path = str(path)
        if path == self.dataset_edit.text() and self.dataset_summary is not None:
            return
        self.dataset_edit.setText(path)
        self._on_dataset_edited()

    @Slot()
    def _on_dataset_edited(self) -> None:
        text = self.dataset_edit.text().strip()
        self.settings.setValue(keys.DATASET, text)
        if text:
            self.dataset_chosen.emit(text)
        self.refresh_summary()

    @Slot()
    def refresh_summary(self) -> None:
        """Read the dataset in a worker thread (training.data.dataset, no TensorFlow) and show what it holds."""
        path = self.dataset_path()
        self.dataset_summary = None
        if path is None:
            self._summary_reader.forget()
            self.summary_view.setPlainText("")
        else:
            self.summary_view.setPlainText(f"Reading {path} …")
            self._summary_reader.start(lambda: _load_dataset(path))
        self._update_buttons()

    @Slot(object, str)
    def _on_summary(self, dataset: object, error: str) -> None:
        if dataset is None:
            self.summary_view.setPlainText(f"Cannot train on this folder:\n{error}")
            self._update_buttons()
            return
        self.dataset_summary = dataset
        text = dataset.summary_text()
        missing = [name for name in ("train", "val") if not dataset.splits.get(name)]
        for name in missing:
            try:
                dataset.require_split(name)
            except ValueError as exc:
                text += f"\nCannot train yet: {exc}"
        self.summary_view.setPlainText(text)
        self._update_buttons()

    def showEvent(self, event) -> None:
        """Coming back to the tab reads the dataset again: pictures or labels may have changed meanwhile."""
        super().showEvent(event)
        if self.dataset_path() is not None and not self._summary_reader.busy and not self.is_training():
            self.refresh_summary()

    def dataset_trainable(self) -> bool:
        d = self.dataset_summary
        return (d is not None and bool(d.splits.get("train")) and bool(d.splits.get("val"))
                and d.training_refusal() is None)

    # ------------------------------------------------------------------------------------ running
    def is_training(self) -> bool:
        return self.process.is_running()

    def training_config(self, dataset: Path, run_dir: Path) -> TrainConfig:
        """The settings shown, as the trainer's config (ValueError when the learning rate is not a number)."""
        config = self.form.config(data=str(dataset), out=str(run_dir),
                                  tutorial_exact=self.tutorial_check.isChecked() and self.tutorial_check.isEnabled())
        start = self.finetune_panel.start_model()
        if start is not None:  # a fine-tune: the model's own backbone, size and weights
            config = replace(config, from_model=str(start.path), backbone=start.backbone, input_size=None,
                             weights=setting("weights").default, tutorial_exact=False)
        return config

    @Slot()
    def start_training(self) -> None:
        """Start a new run with the settings shown."""
        if self.is_training():
            return
        dataset = self.dataset_path()
        if dataset is None or not self.dataset_trainable():
            self._set_status("Choose a dataset with training and validation pictures first.", error=True)
            return
        dataset = dataset.resolve()
        run_dir = run_folder_for(dataset)
        try:
            config = self.training_config(dataset, run_dir)
        except ValueError as exc:
            self._set_status(str(exc), error=True)
            return
        self._save_settings()
        self.plots.clear()
        self._launch([*config_to_args(config), "--progress", "json"], run_dir, f"Starting training in {run_dir} …")

    @Slot()
    def resume_training(self) -> None:
        """Continue the last stopped run (its own settings; only the epoch count is taken from here)."""
        if self.is_training() or self.run_dir is None:
            return
        run_dir = self.run_dir
        dataset = run_dataset(run_dir) or self.dataset_path()
        if dataset is None:
            self._set_status("Choose the dataset the run was trained on first.", error=True)
            return
        history = read_history_csv(run_dir)
        if self.epochs_spin.value() <= len(history):
            self._set_status(f"This run has already trained {len(history)} epochs: set Epochs above "
                             f"{len(history)} to continue it.", error=True)
            return
        self.plots.clear()
        for row in history:
            self.plots.add_epoch(row)
        config = TrainConfig(data=str(dataset), resume=str(run_dir), epochs=self.epochs_spin.value())
        self._launch([*config_to_args(config), "--progress", "json"], run_dir, f"Resuming {run_dir} …")

    def _launch(self, args: list[str], run_dir: Path, status: str) -> None:
        self.run_dir = run_dir
        self.best_model = None
        self.result_pictures.show_run(None)
        self.run_label.setText(f"Run folder: {run_dir}")
        self.settings.setValue(SETTINGS_LAST_RUN, str(run_dir))
        self.progress.reset(self.epochs_spin.value())
        self._append_log(f"$ facetracker-train {shlex.join(args)}")
        self._set_status(status)
        self.process.start(args)
        self._update_buttons()

    @Slot()
    def stop_training(self) -> None:
        """Stop the child; the trainer keeps the last finished epoch for Resume."""
        if not self.is_training():
            return
        self._set_status("Stopping: the last finished epoch is kept …")
        self.process.stop()
        self._update_buttons()

    # ------------------------------------------------------------------------------------ events
    @Slot(dict)
    def _on_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == START:
            self._on_start(event)
        elif kind == BATCH:
            self._on_batch(event)
        elif kind == EPOCH:
            self._on_epoch(event)
        elif kind == END:
            # The model is on disk now; the child may take a few more seconds to exit.
            best = Path(event["best_model"]) if event.get("best_model") else None
            self.best_model = best if best is not None and best.is_file() else None
            self.use_button.setEnabled(self.best_model is not None)
            self._set_status("Training ended; the training process is closing …")
        elif kind == WARNING:
            self._append_log(f"warning: {event.get('message')}")
        elif kind == ERROR:
            prefix = "stopped" if event.get("interrupted") else "error"
            self._append_log(f"{prefix}: {event.get('message')}")

    def _on_start(self, event: dict) -> None:
        if event.get("run_dir"):
            self.run_dir = Path(event["run_dir"])
            self.run_label.setText(f"Run folder: {self.run_dir}")
        self.progress.start(event)
        resumed = event.get("resumed_from_epoch")
        if event.get("started_from"):  # what the run really started from (pretrained weights may be missing)
            self.start_label.setText(f"{event['started_from']} (this run)")
            self.start_label.setStyleSheet("")
        self._set_status(
            f"Training on {event.get('train_images')} pictures ({event.get('val_images')} for validation), "
            f"starting from {event.get('started_from') or event.get('weights')}"
            + (f", resumed after epoch {resumed}" if resumed else "") + "."
        )

    def _on_batch(self, event: dict) -> None:
        self.plots.add_batch(event)
        self.progress.batch(event)

    def _on_epoch(self, event: dict) -> None:
        self.plots.add_epoch(event)
        self._append_log(self.progress.epoch(event))

    @Slot(dict)
    def _on_succeeded(self, end: dict) -> None:
        self.run_dir = Path(end.get("run_dir") or self.run_dir)
        best = Path(end["best_model"]) if end.get("best_model") else self.run_dir / BEST_MODEL
        self.best_model = best if best.is_file() else None
        self.progress.end()
        metrics = end.get("metrics") or {}
        done = metrics.get("epochs_completed")
        if end.get("stopped"):
            self._set_status(f"Stopped after {done} finished epoch(s); kept in {self.run_dir}. "
                             "Resume continues it." if done else "Stopped before the first epoch finished.")
        else:
            reason = metrics.get("stop_reason") or f"finished {done} epochs"
            verdict = metrics.get("verdict") or ""
            test, classic = metrics.get("test") or {}, metrics.get("test_classic") or {}
            measure = "ap50" if "ap50" in test else "f1"  # a multi-face model: AP50 over every face
            behind = measure in test and measure in classic and test[measure] < classic[measure]
            self._append_log(f"training ended: {reason}")
            if verdict:
                self._append_log(verdict)
            self._set_status(f"Done ({reason}). {verdict} Best model: {self.best_model}".replace("  ", " "),
                             error=behind)
            self.result_pictures.show_run(self.run_dir)
        self._update_buttons()

    @Slot(dict)
    def _on_stopped(self, info: dict) -> None:
        if info.get("run_dir"):
            self.run_dir = Path(info["run_dir"])
        best = self.run_dir / BEST_MODEL if self.run_dir else None
        self.best_model = best if best is not None and best.is_file() else None
        self.progress.end()
        self._set_status(str(info.get("message") or "Training was stopped."))
        self._update_buttons()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.progress.end()
        self._append_log(f"training failed: {message}")
        self._set_status(f"Training failed: {message}", error=True)
        if self.run_dir is not None and (self.run_dir / BEST_MODEL).is_file():
            self.best_model = self.run_dir / BEST_MODEL
        self._update_buttons()

    @Slot()
    def _use_model(self) -> None:
        if self.best_model is not None and self.best_model.is_file():
            self.model_ready.emit(str(self.best_model))
            self._set_status(f"Sent to the Detect tab: {self.best_model}")

    @Slot()
    def _export_model(self) -> None:
        if self.best_model is not None and self.best_model.is_file():
            self.exporter.ask_and_export(self.best_model, self)
            self._update_buttons()

    # ------------------------------------------------------------------------------------ helpers
    def can_resume(self) -> bool:
        """Whether the last run holds a checkpoint to go on from (the trainer's own rule)."""
        return can_resume(self.run_dir)

    def _update_buttons(self) -> None:
        running = self.is_training()
        self.start_button.setEnabled(not running and self.dataset_trainable())
        self.stop_button.setEnabled(running and not self.process.stop_requested)
        self.resume_button.setEnabled(not running and self.can_resume() and self.dataset_path() is not None)
        self.use_button.setEnabled(self.best_model is not None)
        self.export_button.setEnabled(self.best_model is not None and not self.exporter.is_running())
        self.form.set_enabled(not running)
        for widget in (self.dataset_edit, self.rescan_button):
            widget.setEnabled(not running)
        finetune = self.finetune_panel.active()
        for widget in (self.backbone_combo, self.input_spin, self.weights_combo):  # the model's own
            widget.setEnabled(not running and not finetune)
        self.finetune_panel.setEnabled(not running)
        self._update_tutorial_check()

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #b00020;" if error else "")

    @Slot(str)
    def _append_log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def shutdown(self) -> None:
        """Stop training (gently, then for good) and wait for the summary reader; the app is closing."""
        self.process.shutdown()
        self.exporter.shutdown()
        self._summary_reader.shutdown()
