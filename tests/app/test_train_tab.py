"""The Train tab: a real training child process on generated data, driven through the tab's buttons."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from desktop import settings as keys
from desktop.child_process import TrainingProcess, parse_event_line, training_command
from desktop.train_tab import (
    BACKBONE_CHOICES,
    EtaEstimator,
    TrainTab,
    format_duration,
    run_dataset,
    run_folder_for,
)
from training.data.demo import make_demo_data
from training.model.backbones import BACKBONES

DEFAULT_EPOCHS = {name: spec.epochs for name, spec in BACKBONES.items()}

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory) -> Path:
    root = make_demo_data(tmp_path_factory.mktemp("train") / "demo", count=30, width=160, height=120, seed=1)
    shutil.rmtree(root / "test")  # the trainer's own test-split evaluation is tested elsewhere: save its time
    return root


def make_tab(qtbot, settings) -> TrainTab:
    tab = TrainTab(settings)
    qtbot.addWidget(tab)
    tab.resize(1200, 820)
    tab.show()
    qtbot.waitExposed(tab)
    return tab


def choose_dataset(qtbot, tab: TrainTab, path: Path) -> None:
    tab.dataset_edit.clear()
    qtbot.keyClicks(tab.dataset_edit, str(path))
    qtbot.keyClick(tab.dataset_edit, Qt.Key.Key_Return)


@pytest.mark.slow
def test_train_stop_resume_then_use_the_model(qtbot, settings, demo_dataset):
    """Start, Stop after the first epoch (a checkpoint is kept), Resume to the end, then "Use this model"."""
    tab = make_tab(qtbot, settings)
    assert (tab.epochs_spin.value(), tab.batch_spin.value(), tab.backbone_combo.currentText()) == (
        DEFAULT_EPOCHS["blazeface"], 8, "blazeface")
    assert tab.input_size() is None and tab.learning_rate() is None  # auto: the CLI's own defaults
    assert tab.start_label.text() == "MediaPipe BlazeFace full-range (pretrained on real faces)"
    tab.backbone_combo.setCurrentText("multiface")  # small and quick at 48 px: this test is about the plumbing
    assert tab.start_label.text() == "MTCNN's face-trained first layers (RNet), the rest from scratch"
    choose_dataset(qtbot, tab, demo_dataset)
    qtbot.waitUntil(tab.start_button.isEnabled, timeout=15_000)
    summary = tab.summary_view.toPlainText()
    assert "train" in summary and "Problems: none" in summary and "Empty splits: test" in summary

    tab.epochs_spin.setValue(40)  # far more than will run before Stop
    tab.input_spin.setValue(48)
    events: list[dict] = []
    tab.process.event.connect(events.append)
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert tab.is_training() and tab.stop_button.isEnabled() and not tab.start_button.isEnabled()
    run_dir = tab.run_dir
    assert run_dir.parent == demo_dataset.parent / "runs" and run_dir.name.startswith("demo-")
    assert str(run_dir) in tab.run_label.text()

    qtbot.waitUntil(lambda: any(e["event"] == "epoch" for e in events), timeout=150_000)
    started = next(e for e in events if e["event"] == "start")["started_from"]
    assert started == "MTCNN's face-trained first layers (RNet), the rest from scratch"
    assert tab.start_label.text() == f"{started} (this run)"
    counts = tab.plots.point_counts()
    assert counts["total_loss"]["batch"] >= 1 and counts["class_loss"]["train"] >= 1
    assert counts["regress_loss"]["val"] >= 1
    assert tab.lr_label.text().startswith("lr ") and tab.iou_label.text().startswith("val IoU 0.")
    assert tab.epoch_label.text().startswith("Epoch ") and "/40" in tab.epoch_label.text()
    assert tab.eta_label.text().startswith("ETA ") and tab.eta_label.text() != "ETA –"
    assert tab.device_label.text().startswith("device CPU")

    qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=60_000)
    assert "Stopped" in tab.status_label.text(), tab.status_label.text()
    assert (run_dir / "last.keras").is_file()
    finished = len((run_dir / "history.csv").read_text().strip().splitlines()) - 1
    assert 1 <= finished < 40
    assert tab.resume_button.isEnabled() and tab.start_button.isEnabled()

    # Resume needs more epochs than the run has; with one more, the plots are refilled from history.csv, then grow.
    assert run_dataset(run_dir) == demo_dataset.resolve()
    tab.epochs_spin.setValue(finished)
    qtbot.mouseClick(tab.resume_button, Qt.MouseButton.LeftButton)
    assert not tab.is_training() and f"already trained {finished} epochs" in tab.status_label.text()
    tab.epochs_spin.setValue(finished + 1)
    events.clear()
    qtbot.mouseClick(tab.resume_button, Qt.MouseButton.LeftButton)
    assert tab.is_training()
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=150_000)
    end = next(e for e in events if e["event"] == "end")
    assert not end["stopped"] and end["run_dir"] == str(run_dir)
    start = next(e for e in events if e["event"] == "start")
    assert start["resumed_from_epoch"] == finished
    assert tab.status_label.text().startswith(f"Done (finished all {finished + 1} epochs)"), tab.status_label.text()
    counts = tab.plots.point_counts()
    assert counts["total_loss"]["train"] == finished + 1 and counts["total_loss"]["val"] == finished + 1
    assert counts["total_loss"]["batch"] >= 1
    assert tab.progress_bar.value() == tab.progress_bar.maximum()

    assert tab.use_button.isEnabled()
    with qtbot.waitSignal(tab.model_ready, timeout=1000) as ready:
        qtbot.mouseClick(tab.use_button, Qt.MouseButton.LeftButton)
    best = Path(ready.args[0])
    assert best == run_dir / "best.keras" and best.is_file()

    from training.data.pictures import load_image
    from training.inference.detector import Detector

    detector = Detector.from_file(best)
    assert detector.input_size == 48
    picture = load_image(next(demo_dataset.glob("val/images/*.jpg")))
    detection = detector.detect(picture)
    assert 0.0 <= detection.score <= 1.0 and len(detection.box) == 4

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert tab.grab().save(str(SCREENSHOTS / "train_tab.png"))
    tab.shutdown()

    # A restarted app remembers the settings and the last run, and can use its model straight away.
    again = TrainTab(settings)
    qtbot.addWidget(again)
    assert (again.epochs_spin.value(), again.input_size(), again.dataset_edit.text()) == (
        finished + 1, 48, str(demo_dataset))
    assert again.run_dir == run_dir and again.best_model == best
    qtbot.waitUntil(again.start_button.isEnabled, timeout=15_000)
    assert again.use_button.isEnabled()
    again.shutdown()


def test_summary_lists_problems_and_blocks_an_empty_folder(qtbot, settings, tmp_path, demo_dataset):
    tab = make_tab(qtbot, settings)
    empty = tmp_path / "empty"
    empty.mkdir()
    choose_dataset(qtbot, tab, empty)
    qtbot.waitUntil(lambda: "Cannot train" in tab.summary_view.toPlainText(), timeout=10_000)
    assert "no pictures found" in tab.summary_view.toPlainText()
    assert not tab.start_button.isEnabled()

    broken = tmp_path / "broken"
    (broken / "images").mkdir(parents=True)
    (broken / "labels").mkdir()
    copied = sorted(demo_dataset.glob("*/images/*.jpg"))[:12]
    for picture in copied:  # a flat dataset this time
        (broken / "images" / picture.name).write_bytes(picture.read_bytes())
    bad_label = broken / "labels" / f"{copied[3].stem}.json"
    bad_label.write_text("{ broken", encoding="utf-8")
    choose_dataset(qtbot, tab, broken)
    qtbot.waitUntil(lambda: "Problems (1 skipped)" in tab.summary_view.toPlainText(), timeout=10_000)
    assert f"{bad_label}: not valid JSON" in tab.summary_view.toPlainText()
    assert settings.value(keys.DATASET) == str(broken)


def run_child(qtbot, command: list[str]) -> tuple[TrainingProcess, list[dict], list[str], list[str]]:
    process = TrainingProcess()
    events, logs, failures = [], [], []
    process.event.connect(events.append)
    process.log.connect(logs.append)
    process.failed.connect(failures.append)
    with qtbot.waitSignal(process.failed, timeout=30_000):
        process.start_command(command)
    return process, events, logs, failures


def test_child_error_event_and_stray_output(qtbot):
    script = textwrap.dedent("""
        import json, sys
        print("a stray line that is not JSON")
        print(json.dumps({"event": "start", "run_dir": "r", "epochs": 2, "batches_per_epoch": 1}))
        print('{"event": "batch", "broken json')
        print(json.dumps({"event": "error", "message": "data/labels/x.json: not valid JSON"}))
        print("Traceback: noise", file=sys.stderr)
        sys.exit(1)
    """)
    _, events, logs, failures = run_child(qtbot, [sys.executable, "-c", script])
    assert [e["event"] for e in events] == ["start", "error"]
    assert logs == ["a stray line that is not JSON", '{"event": "batch", "broken json']
    assert failures == ["data/labels/x.json: not valid JSON"]


def test_child_that_fails_without_an_event_shows_its_stderr(qtbot):
    # A real facetracker-train child with a bad option: argparse explains on stderr, no JSON at all.
    _, events, _, failures = run_child(qtbot, training_command(["train", "data", "--epochs", "0", "--progress", "json"]))
    assert events == []
    assert "exited with code 2" in failures[0] and "--epochs: must be at least 1" in failures[0]


def test_training_command():
    assert training_command(["x", "--epochs", "2"]) == [sys.executable, "-m", "training", "x", "--epochs", "2"]
    help_text = subprocess.run(training_command(["--help"]), capture_output=True, text=True, timeout=60)
    assert help_text.returncode == 0 and "facetracker-train" in help_text.stdout


def test_training_command_when_frozen(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert training_command(["d"]) == [sys.executable, "--train-child", "d"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"event": "epoch", "epoch": 1}', {"event": "epoch", "epoch": 1}),
        ('  {"event": "end"}  \r', {"event": "end"}),
        ("Epoch 1/10", None),
        ('{"no_event": 1}', None),
        ("[1, 2]", None),
        ('{"event": "batch", ', None),
        ("", None),
    ],
)
def test_parse_event_line(line, expected):
    assert parse_event_line(line) == expected


def test_eta_from_batch_and_epoch_timing():
    eta = EtaEstimator()
    eta.reset(epochs=3, batches=4)
    assert eta.remaining() is None
    eta.batch(1, 1, now=100.0)  # the first batch also builds the graph: not timed
    assert eta.remaining() is None
    eta.batch(1, 2, now=101.0)
    assert eta.remaining() == pytest.approx((2 + 2 * 4) * 1.0)
    eta.batch(1, 4, now=103.0)  # two batches in 2 s: still 1 s each
    assert eta.remaining() == pytest.approx(2 * 4 * 1.0)
    eta.epoch(1, seconds=6.0)  # validation included: whole epochs are costed at 6 s
    assert eta.remaining() == pytest.approx(2 * 6.0)
    eta.batch(2, 1, now=110.0)
    eta.batch(2, 2, now=111.0)
    assert eta.remaining() == pytest.approx(2 * 1.0 + 1 * 6.0)
    assert format_duration(75) == "1:15" and format_duration(3725) == "1:02:05"


def test_run_folders_sit_beside_the_dataset(tmp_path):
    from datetime import datetime

    data = tmp_path / "faces"
    data.mkdir()
    when = datetime(2024, 5, 6, 7, 8, 9)
    first = run_folder_for(data, when)
    assert first == tmp_path / "runs" / "faces-20240506-070809"
    first.mkdir(parents=True)
    assert run_folder_for(data, when) == tmp_path / "runs" / "faces-20240506-070809-2"


def test_backbone_choices_are_the_engines():
    DEFAULT_LEARNING_RATES = {name: spec.learning_rate for name, spec in BACKBONES.items()}

    assert BACKBONE_CHOICES == tuple(BACKBONES)
    assert set(DEFAULT_EPOCHS) == set(DEFAULT_LEARNING_RATES) == set(BACKBONES)


def test_epochs_follow_the_backbone_unless_the_user_set_them(qtbot, settings):
    tab = make_tab(qtbot, settings)
    assert tab.epochs_spin.value() == DEFAULT_EPOCHS["blazeface"]  # blazeface: its own
    assert not tab.tutorial_check.isEnabled()  # the tutorial-exact loss is the single-box heads'
    tab.backbone_combo.setCurrentText("multiface")
    assert tab.epochs_spin.value() == DEFAULT_EPOCHS["multiface"] != DEFAULT_EPOCHS["blazeface"]  # follows the backbone
    tab.backbone_combo.setCurrentText("vgg16")
    assert tab.epochs_spin.value() == 10  # the tutorial's
    assert tab.tutorial_check.isEnabled()
    tab.epochs_spin.setValue(25)
    tab.backbone_combo.setCurrentText("tiny")
    assert tab.epochs_spin.value() == 25  # the user's choice stays
    again = make_tab(qtbot, settings)
    assert (again.backbone_combo.currentText(), again.epochs_spin.value()) == ("tiny", 25)


def test_the_tab_says_what_a_new_run_starts_from_before_start(qtbot, settings):
    """The backbone and weights chosen say, in config.json's words, what a new run starts from; a run's own
    start event (what it really started from) replaces it."""
    from training.model.build import describe_start

    tab = make_tab(qtbot, settings)
    assert (tab.backbone_combo.currentText(), tab.weights_combo.currentText()) == ("blazeface", "auto")
    assert tab.start_label.text() == "MediaPipe BlazeFace full-range (pretrained on real faces)"
    assert tab.start_label.text() == describe_start("blazeface", "face")  # the trainer's own words
    tab.backbone_combo.setCurrentText("multiface")
    assert tab.start_label.text() == "MTCNN's face-trained first layers (RNet), the rest from scratch"
    tab.weights_combo.setCurrentText("none")
    assert tab.start_label.text() == "random weights (from scratch)"
    tab.backbone_combo.setCurrentText("tiny")
    tab.weights_combo.setCurrentText("face")  # the trainer refuses it: said before Start, in red
    assert tab.start_label.text() == "tiny has no face-trained weights: choose auto or none"
    assert "b00020" in tab.start_label.styleSheet()
    tab.backbone_combo.setCurrentText("mobilenetv2")
    tab.weights_combo.setCurrentText("auto")
    assert tab.start_label.text() == ("mobilenetv2 with ImageNet weights, the heads from scratch "
                                      "(downloaded once; from scratch when offline)")
    assert tab.start_label.styleSheet() == ""
    tab.backbone_combo.setCurrentText("blazeface")
    tab.process.event.emit({"event": "start", "epochs": 20, "started_from": "random weights (from scratch)",
                            "weights": "none", "train_images": 10, "val_images": 2})
    assert tab.start_label.text() == "random weights (from scratch) (this run)"  # its weights were missing, say
    assert "starting from random weights (from scratch)" in tab.status_label.text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.backbone_combo.setCurrentText("multiface")
    tab.backbone_combo.setCurrentText("blazeface")
    assert tab.grab().save(str(SCREENSHOTS / "train_tab_starts_from.png"))
    tab.shutdown()


def test_the_keras_free_start_table_matches_the_backbones():
    from training.model import build
    from training.model.backbones import BLAZEFACE_START

    assert build.BACKBONES is BACKBONES  # the builders read the Keras-free table itself
    from training.model.blazeface import PRETRAINED_NAME

    assert PRETRAINED_NAME == BLAZEFACE_START


def test_history_refill_reads_what_the_trainer_writes(tmp_path):
    from desktop.train_tab import read_history_csv
    from training.engine.trainer import HISTORY_COLUMNS, _history_csv  # the trainer's own writer

    written = [{name: float(i + 1) / (j + 1) for j, name in enumerate(HISTORY_COLUMNS)} for i in range(3)]
    for row in written:
        row["epoch"] = int(row["epoch"])
    (tmp_path / "history.csv").write_bytes(_history_csv(written))
    rows = read_history_csv(tmp_path)
    assert [row["epoch"] for row in rows] == [1.0, 2.0, 3.0]
    for row, original in zip(rows, written, strict=True):
        assert set(row) == set(HISTORY_COLUMNS)
        assert row == pytest.approx({name: float(value) for name, value in original.items()})
    assert read_history_csv(tmp_path / "nowhere") == []


@pytest.mark.parametrize("stubborn", [False, True])
def test_shutdown_ends_the_child(qtbot, stubborn):
    """Closing the app ends training: SIGTERM first (the CLI stops cleanly on it), a kill for a child that ignores it."""
    script = textwrap.dedent(f"""
        import json, signal, sys, time
        if {stubborn}:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(json.dumps({{"event": "start", "run_dir": "r"}}), flush=True)
        time.sleep(60)
    """)
    process = TrainingProcess()
    with qtbot.waitSignal(process.event, timeout=15_000):
        process.start_command([sys.executable, "-c", script])
    assert process.is_running()
    process.shutdown(wait_ms=1000)
    assert not process.is_running()


@pytest.mark.parametrize("behind", [False, True])
def test_the_end_of_a_run_says_how_the_model_compares_with_the_classic_finder(qtbot, settings, tmp_path, behind):
    """The trainer's verdict (test F1 and mean IoU beside the classic finder's) reaches the status line and log."""
    from training.evaluation.evaluate import verdict

    tab = make_tab(qtbot, settings)
    model = {"f1": 0.52 if behind else 0.94, "mean_iou": 0.61, "images": 200, "faces": 110, "no_faces": 90,
             "false_alarms": 3}
    classic = {"f1": 0.88, "mean_iou": 0.67}
    metrics = {"epochs_completed": 41, "stop_reason": "early stopping: validation F1 did not improve for 30 epochs "
               "(best epoch 11)", "test": model, "test_classic": classic, "verdict": verdict(model, classic)}
    tab.process.succeeded.emit({"event": "end", "run_dir": str(tmp_path), "best_model": str(tmp_path / "best.keras"),
                                "metrics": metrics, "stopped": False})
    status = tab.status_label.text()
    assert status.startswith("Done (early stopping: validation F1 did not improve for 30 epochs (best epoch 11))")
    assert f"Your model: F1 {model['f1']:.2f}" in status and "classic finder: F1 0.88" in status
    assert ("worse than the classic finder" in status) is behind
    assert ("b00020" in tab.status_label.styleSheet()) is behind  # shown as a warning when behind
    assert metrics["verdict"] in tab.log_view.toPlainText()


def test_a_multi_face_run_shows_ap50_where_a_single_face_run_shows_f1(qtbot, settings, tmp_path):
    """Epoch events of a multi-face run carry val_ap50: the tab and its log show AP50 (a single-face run: F1);
    at the end, a model behind the classic finder on AP50 is shown as a warning."""
    from training.evaluation.evaluate import verdict

    tab = make_tab(qtbot, settings)
    assert "multiface" in BACKBONE_CHOICES
    tab.backbone_combo.setCurrentText("multiface")
    assert not tab.tutorial_check.isEnabled()  # one box a cell, as grid: no tutorial-exact loss
    epoch = {"event": "epoch", "epoch": 1, "epochs": 3, "total_loss": 1.0, "val_total_loss": 1.1, "val_iou": 0.61,
             "val_f1": 0.7, "lr": 1e-3, "seconds": 1.0}
    tab.process.event.emit({**epoch, "val_ap50": 0.834})
    assert tab.iou_label.text() == "val IoU 0.610 · AP50 0.83"
    assert "val AP50 0.834" in tab.log_view.toPlainText()
    tab.process.event.emit({**epoch, "epoch": 2})
    assert tab.iou_label.text() == "val IoU 0.610 · F1 0.70"

    model = {"multi_face": True, "ap50": 0.41, "f1": 0.9, "images": 200, "faces": 330, "no_faces": 60,
             "false_alarms": 0}
    classic = {"multi_face": True, "ap50": 0.66, "f1": 0.7}
    metrics = {"epochs_completed": 3, "stop_reason": "finished all 3 epochs", "test": model, "test_classic": classic,
               "verdict": verdict(model, classic)}
    tab.process.succeeded.emit({"event": "end", "run_dir": str(tmp_path), "best_model": str(tmp_path / "best.keras"),
                                "metrics": metrics, "stopped": False})
    status = tab.status_label.text()
    assert "Your model: AP50 0.41, F1 0.90 over 330 faces" in status and "classic finder: AP50 0.66" in status
    assert "worse than the classic finder" in status and "b00020" in tab.status_label.styleSheet()
