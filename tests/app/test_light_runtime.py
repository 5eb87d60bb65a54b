"""Live detection without TensorFlow in the window's process (desktop.runtime, desktop.runtime_child).

A ``.keras`` model runs from a LiteRT copy that a real export child makes once and keeps beside the model;
these tests run that child, the real runtimes, the real Detect tab and the real app in its own process.
The model is an untrained multi-face model at 48 px (weights=None): its answers mean nothing, but they must
be the same answers in LiteRT as in Keras, and the export of so small a model takes seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from desktop import runtime as light
from desktop import settings as keys
from desktop.detector_state import PRETRAINED
from desktop.runtime import choose_runtime, runtime_text
from desktop.settings import make_settings
from desktop.workers import DetectorLoader, load_detector

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "screenshots"
LINUX = sys.platform.startswith("linux")


@pytest.fixture
def model(tmp_path: Path, multiface_model_file: Path) -> Path:
    """The saved model (conftest.py) in a folder of its own: no copy of it is kept there yet (a cold start)."""
    path = tmp_path / "run" / "best.keras"
    path.parent.mkdir()
    shutil.copyfile(multiface_model_file, path)
    return path


def frames() -> list[np.ndarray]:
    from training.inference.export import verification_frames

    return verification_frames()


def runtime_children() -> list[int]:
    """The export children of this process now running (Linux: read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"desktop.runtime_child" in command:
            found.append(int(entry.name))
    return found


# --- the rules, without a child ---------------------------------------------------------------------------
def test_what_runs_a_keras_model() -> None:
    assert choose_runtime("auto", "tflite", None) == ("light", None)
    assert choose_runtime("auto", "tflite", "CPU (Intel Xeon)") == ("light", None)
    assert choose_runtime("auto", "tflite", "GPU: NVIDIA H200") == ("tensorflow", None)  # GPU inference stays
    assert choose_runtime("litert", "tflite", "GPU: NVIDIA H200") == ("light", None)  # unless LiteRT is asked
    assert choose_runtime("tensorflow", "tflite", None) == ("tensorflow", None)
    choice, why = choose_runtime("auto", None, None)
    assert choice == "tensorflow" and "no light runtime is installed" in why and "ai-edge-litert" in why
    assert "pip install ai-edge-litert" in choose_runtime("litert", None, None)[1]
    with pytest.raises(ValueError, match="unknown runtime 'cuda'"):
        choose_runtime("cuda", "tflite", None)


def test_the_app_finds_the_pretrained_weights_where_training_does(monkeypatch, tmp_path) -> None:
    from training.model.blazeface import weights_path

    assert light.pretrained_weights_path() == weights_path()
    monkeypatch.setenv(light.CACHE_ENV, str(tmp_path / "c"))
    assert light.user_cache_dir() == tmp_path / "c"
    monkeypatch.delenv(light.CACHE_ENV)
    if LINUX:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert light.user_cache_dir() == tmp_path / "xdg" / "facetracker"


def test_a_changed_model_is_a_new_key_and_a_file_that_is_no_model_is_refused_without_tensorflow(
        model: Path, tmp_path: Path) -> None:
    from training.core import ModelFileError

    first = light.keras_source(model)
    assert first.name == "best" and len(first.key) == light.KEY_DIGITS and first.path == model
    assert light.cache_roots(first)[0] == model.parent / light.CACHE_FOLDER
    os.utime(model, (1, 1))  # touched, not changed: the same copy serves
    assert light.keras_source(model).key == first.key
    with open(model, "ab") as handle:
        handle.write(b"\0")
    assert light.keras_source(model).key != first.key
    notes = tmp_path / "notes.keras"
    notes.write_text("not a model")
    with pytest.raises(ModelFileError, match="not a .keras model file"):
        light.keras_source(notes)


# --- the copy, made by the real export child -------------------------------------------------------------
@pytest.mark.slow
def test_a_keras_model_runs_from_its_litert_copy_made_once_and_remade_when_the_model_changes(model: Path) -> None:
    from training.inference import Detector
    from training.inference.export import TOLERANCE, compare_detectors

    said: list[str] = []
    detector = load_detector(model, on_progress=said.append)
    assert detector.runtime == "litert" and detector.path == model and detector.multi_face
    assert said and "preparing best.keras for LiteRT" in said[0]
    copy = detector.runtime_file
    assert copy.parent.parent == model.parent / light.CACHE_FOLDER and copy.name == "best.tflite"
    assert copy.with_name("best.tflite.json").is_file()
    score, box = compare_detectors(Detector.from_file(model), detector, frames())  # Keras, in this process
    assert score <= TOLERANCE and box <= TOLERANCE
    assert runtime_text(detector) == "LiteRT on CPU"

    said.clear()
    again = load_detector(model, on_progress=said.append)  # warm: the copy is there, no child
    assert said == [] and again.runtime_file == copy

    from training.model import build_model

    build_model("multiface", weights=None, input_size=32).save(model)  # retrained: another model, same file
    changed = load_detector(model, on_progress=said.append)
    assert said and changed.input_size == 32 and changed.runtime_file != copy
    assert not copy.exists(), "the old model's copy is removed"
    assert [p.name for p in (model.parent / light.CACHE_FOLDER).iterdir()] == [changed.runtime_file.parent.name]


@pytest.mark.subprocess
@pytest.mark.skipif(not LINUX, reason="finds and kills the child through /proc")
def test_a_killed_export_leaves_no_copy_and_the_model_still_detects_in_tensorflow(model: Path) -> None:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(detector=load_detector(model)))
    thread.start()
    deadline = time.monotonic() + 60
    while not runtime_children():
        assert thread.is_alive() and time.monotonic() < deadline, "no export child started"
        time.sleep(0.05)
    for pid in runtime_children():
        os.kill(pid, signal.SIGKILL)
    thread.join(180)
    detector = result["detector"]
    assert detector.runtime == "keras" and "killed (signal 9)" in detector.runtime_note
    status = runtime_text(detector)
    assert status.startswith("TensorFlow on CPU") and "no LiteRT copy: the export process was killed" in status
    assert detector.detect_all(frames()[1], threshold=0.0)  # it detects
    assert light.find_copy(light.keras_source(model), "tflite") is None
    assert light.known_failure(light.keras_source(model), "tflite") is None  # killed is not "cannot": tried again


def test_an_export_that_failed_before_is_not_tried_on_every_start(model: Path) -> None:
    source = light.keras_source(model)
    light._remember_failure(light.copy_in(light.cache_roots(source)[0], source, "tflite"),
                            "could not be converted to tflite (an op LiteRT lacks)")
    said: list[str] = []
    detector = load_detector(model, on_progress=said.append)
    assert detector.runtime == "keras" and not any("preparing" in text for text in said)
    assert "could not be converted to tflite" in detector.runtime_note and "tried again" in detector.runtime_note


@pytest.mark.slow
def test_without_litert_the_copy_is_onnx_and_litert_asked_for_falls_back_to_tensorflow(model: Path,
                                                                                      monkeypatch) -> None:
    """Where LiteRT has no wheel (macOS on Intel) the app depends on ONNX Runtime: the copy is ONNX."""
    from training.inference import Detector
    from training.inference.export import TOLERANCE, compare_detectors

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # not importable, as where it is not installed
    assert light.light_format() == "onnx"
    detector = load_detector(model)
    assert detector.runtime == "onnxruntime" and detector.runtime_file.suffix == ".onnx"
    assert runtime_text(detector) == "ONNX Runtime on CPU"
    score, box = compare_detectors(Detector.from_file(model), detector, frames())
    assert score <= TOLERANCE and box <= TOLERANCE

    asked = load_detector(model, runtime="litert")
    assert asked.runtime == "keras" and "LiteRT is not installed (pip install ai-edge-litert)" in asked.runtime_note


def test_the_pretrained_detector_runs_from_a_copy_in_the_user_cache(tmp_path: Path, monkeypatch) -> None:
    """No model yet: BlazeFace's LiteRT copy in the user's cache folder, marked pretrained (blue, its threshold)."""
    detector = load_detector(PRETRAINED)  # test-output/cache (conftest): made once for every run of the tests
    assert detector.runtime == "litert" and detector.path is None
    assert detector.runtime_file.is_relative_to(light.user_cache_dir() / "pretrained")
    assert detector.metadata.get("pretrained") is True and detector.threshold == pytest.approx(0.6)
    faces = detector.detect_all(frames()[1])  # the astronaut in a webcam-sized frame
    assert len(faces) == 1 and faces[0].score > 0.6


@pytest.mark.subprocess
@pytest.mark.skipif(not LINUX, reason="finds the child through /proc")
def test_choosing_another_model_stops_the_export_child(qtbot, model: Path) -> None:
    loader = DetectorLoader(str(model), runtime="auto")
    with qtbot.waitSignal(loader.progress, timeout=30_000):
        loader.start()
    qtbot.waitUntil(lambda: bool(runtime_children()), timeout=30_000)
    children = runtime_children()
    loader.requestInterruption()  # what the Detect tab does to a loader it no longer waits for
    assert loader.wait(10_000)
    assert not any(Path(f"/proc/{pid}").exists() and b"runtime_child" in Path(f"/proc/{pid}/cmdline").read_bytes()
                   for pid in children)
    assert light.find_copy(light.keras_source(model), "tflite") is None


# --- the Detect tab -----------------------------------------------------------------------------------------
def test_the_detect_tab_says_it_prepares_the_copy_then_which_runtime_runs(qtbot, tmp_path, model, face_video) -> None:
    from desktop.detect_tab import DetectTab

    settings = make_settings(tmp_path / "s.ini")
    settings.setValue(keys.LOOP, True)
    tab = DetectTab(settings)
    qtbot.addWidget(tab)
    tab.resize(900, 640)
    tab.show()
    try:
        tab.threshold_slider.setValue(0)
        tab.start(source=str(face_video), model=str(model))
        qtbot.waitUntil(lambda: "preparing best.keras for LiteRT" in tab.status_text(), timeout=30_000)
        assert "Preparing best.keras for LiteRT" in tab.model_banner.text() and tab.model_banner.isVisible()
        shown = tab.frames_shown
        qtbot.waitUntil(lambda: tab.model_state == "model", timeout=180_000)
        assert tab.frames_shown > shown, "the video played on while the copy was made"
        qtbot.waitUntil(lambda: tab.boxes_drawn > 0 and "inference —" not in tab.status_text(), timeout=20_000)
        status = tab.status_text()
        assert "LiteRT on CPU" in status and "model: best.keras" in status, status
        assert tab.settings.value(keys.LAST_MODEL) == str(model)  # the user's model, not its copy
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.grab().save(str(SCREENSHOTS / "detect_tab_litert.png"))
    finally:
        tab.shutdown()


def test_a_saved_runtime_that_makes_no_sense_is_dropped(qtbot, tmp_path) -> None:
    from desktop.detect_tab import DetectTab

    settings = make_settings(tmp_path / "s.ini")
    settings.setValue(keys.RUNTIME, "cuda")
    tab = DetectTab(settings)
    qtbot.addWidget(tab)
    assert tab.models.runtime == "auto" and settings.value(keys.RUNTIME) is None
    settings.setValue(keys.RUNTIME, "tensorflow")
    again = DetectTab(settings)
    qtbot.addWidget(again)
    assert again.models.runtime == "tensorflow"


# --- the app in its own process -------------------------------------------------------------------------
def run_app(args: list[str], cache: Path, ini: Path, seconds: float) -> dict[str, str]:
    """``facetracker ARGS --quit-after SECONDS`` in a process of its own; its report as {name: value}.
    (ARGS may add ``--quit-after-ready``: the report then comes that long after the model is ready.)"""
    done = subprocess.run(
        [sys.executable, "-m", "desktop", *args, "--settings", str(ini), "--quit-after", str(seconds)],
        cwd=REPO, env=dict(os.environ, QT_QPA_PLATFORM="offscreen", FACETRACKER_CACHE=str(cache)),
        capture_output=True, text=True, timeout=seconds + 240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(not LINUX, reason="reads /proc/self/maps for TensorFlow's libraries")
def test_the_app_detects_with_a_keras_model_without_tensorflow_in_its_process(tmp_path, model, long_face_video) -> None:
    """The window's process maps no TensorFlow library while it detects with a .keras model; the same report
    names TensorFlow's libraries when TensorFlow is asked for (so the check can see them)."""
    load_detector(model)  # the copy, made once (by its own export child) before the app starts
    ini = tmp_path / "app.ini"
    report = run_app(["--source", str(long_face_video), "--model", str(model)], tmp_path / "cache", ini, 8)
    print(f"\napp with a LiteRT copy: {report}")
    assert report["tensorflow in process"] == "no"
    assert report["runtime"] == "LiteRT on CPU" and report["model banner"] == "—"
    assert "model: best.keras" in report["status"] and "inference —" not in report["status"]
    assert int(report["frames shown"]) > 20
    assert float(report["worst UI timer gap"].removesuffix(" ms")) < 1000

    make_settings(ini).setValue(keys.LOOP, True)  # playing on until TensorFlow is in and the model loaded
    report = run_app(["--source", str(long_face_video), "--model", str(model), "--runtime", "tensorflow",
                      "--quit-after-ready", "1"], tmp_path / "cache", ini, 120)
    assert report["runtime"].startswith("TensorFlow on CPU"), report
    held = report["tensorflow in process"]
    assert "tensorflow" in held and "keras" in held and "libtensorflow" in held, held
    assert make_settings(ini).value(keys.RUNTIME) == "tensorflow"  # remembered for the next start


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_app_starts_many_times_with_a_model_and_a_dataset_in_the_label_tab(tmp_path, model, long_face_video) -> None:
    """The Label tab shows a dataset (MTCNN, TensorFlow on its thread) while the Detect tab loads the model:
    cold (the copy made by an export child meanwhile, twice) and warm (the copy there); never a failed load."""
    from real_frames import write_pictures

    dataset = tmp_path / "faces"
    write_pictures(dataset / "images", count_faces=3, count_empty=1)
    cache = tmp_path / "cache"
    copies = model.parent / light.CACHE_FOLDER
    for run, cold in enumerate((True, False, False, True, False)):
        if cold:
            shutil.rmtree(copies, ignore_errors=True)
        ini = tmp_path / f"app{run}.ini"
        settings = make_settings(ini)
        settings.setValue(keys.DATASET, str(dataset))
        settings.setValue(keys.WINDOW_TAB, 2)  # the Label tab in front
        settings.setValue(keys.LOOP, True)
        settings.sync()
        # Cold: reported 10 s after the model is ready (MTCNN is in by then: it loaded while the copy was made).
        quit_early = ["--quit-after-ready", "10"] if cold else []
        report = run_app(["--source", str(long_face_video), "--model", str(model), *quit_early], cache, ini,
                         150 if cold else 20)
        print(f"\nstart {run} ({'cold' if cold else 'warm'}): model ready {report.get('model ready')}; "
              f"{report['runtime']}; {report['label suggestions']}")
        assert report["model banner"] == "—", report
        assert "model: best.keras" in report["status"] and report["runtime"] == "LiteRT on CPU", report
        assert "model ready" in report, report
        assert report["label suggestions"].startswith(("1 made", "2 made", "3 made", "4 made")), report
        assert "0 failed" in report["label suggestions"] and "failed engines: none" in report["label suggestions"]


def test_what_an_export_child_saw_of_the_gpu_counts_only_with_the_same_visible_devices(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(light.CACHE_ENV, str(tmp_path))
    assert light.recorded_tensorflow_device() is None
    light.remember_tensorflow_device("GPU: NVIDIA H200")
    assert light.recorded_tensorflow_device() == "GPU: NVIDIA H200"
    assert choose_runtime("auto", "tflite", light.recorded_tensorflow_device()) == ("tensorflow", None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # the GPUs hidden now: what the child saw no longer holds
    assert light.recorded_tensorflow_device() is None
    (tmp_path / "machine.json").write_text("{not json")
    assert light.recorded_tensorflow_device() is None
