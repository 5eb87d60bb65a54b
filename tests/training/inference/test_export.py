"""Export to ONNX and TFLite, then run the files in ONNX Runtime and LiteRT: the same score and box as the
.keras model on real face pictures, the stored threshold with them, clear errors for bad files and
missing runtimes, and the app's Export button and model dialog.

The models are untrained (their scores mean nothing, but every frame gets some best cell and box, which
is what must match); the frames are real photos (scikit-image's) and real-face demo pictures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog

from training.cli import main as cli_main
from training.core.detection import (
    MissingRuntimeError,
    ModelFileError,
    metadata_sidecar,
    write_model_metadata,
)
from training.data.realfaces import make_real_demo_data
from training.inference import export as export_module
from training.inference.detector import Detector
from training.inference.export import ExportError, export_model, portable_signbit, verification_frames
from training.model.backbones import BACKBONES, DEFAULT_BACKBONE
from training.model.build import build_model

DEFAULT_SIZE = BACKBONES[DEFAULT_BACKBONE].default_input_size

FORMATS = ("onnx", "tflite")
TOLERANCE = 1e-4  # the bar for float32 exports, on the score and on the box in [0, 1] of the frame
STORED = {"score_threshold": 0.37, "epoch": 4, "val_f1": 0.8}


@pytest.fixture(scope="module")
def real_frames(tmp_path_factory) -> list[np.ndarray]:
    """Real faces: 640x480 real-face demo pictures (faces and no faces) and scikit-image's photos."""
    root = make_real_demo_data(tmp_path_factory.mktemp("real") / "data", count=8, seed=3)
    pictures = [cv2.imread(str(p)) for p in sorted(root.glob("*/images/*.jpg"))]
    assert len(pictures) == 8 and all(p is not None and p.shape == (480, 640, 3) for p in pictures)
    return pictures + verification_frames()


def _save(model: keras.Model, path: Path, metadata: dict | None = None) -> Path:
    model.save(path)
    if metadata is not None:
        write_model_metadata(path, metadata)
    return path


@pytest.fixture(scope="module")
def grid_model(tmp_path_factory) -> Path:
    """The default backbone (blazeface, 192 px), saved as training saves it: with a stored threshold."""
    keras.utils.set_random_seed(7)
    return _save(build_model(weights=None), tmp_path_factory.mktemp("grid") / "best.keras", STORED)


@pytest.fixture(scope="module")
def grid_exports(grid_model) -> dict[str, Path]:
    """Both exports, made through the command line as a user would."""
    assert cli_main(["export", str(grid_model), "--format", "onnx"]) == 0  # default name: best.onnx
    tflite = grid_model.with_name("phone.tflite")
    assert cli_main(["export", str(grid_model), "--out", str(tflite)]) == 0  # the format from the name
    return {"onnx": grid_model.with_suffix(".onnx"), "tflite": tflite}



def _largest_differences(reference: Detector, candidate: Detector, frames: list[np.ndarray]) -> tuple[float, float]:
    """Largest score and box differences (box in [0, 1] of the frame), frame by frame and as one batch."""
    score_diff = box_diff = 0.0
    batch_a, batch_b = reference.detect_batch(frames), candidate.detect_batch(frames)
    for frame, a_batch, b_batch in zip(frames, batch_a, batch_b, strict=True):
        a, b = reference.detect(frame), candidate.detect(frame)
        height, width = frame.shape[:2]
        scale = np.array([width, height, width, height], dtype=np.float64)
        for x, y in ((a, b), (a_batch, b_batch), (a, b_batch)):
            score_diff = max(score_diff, abs(x.score - y.score))
            box_diff = max(box_diff, float(np.max(np.abs(np.subtract(x.box, y.box)) / scale)))
    return score_diff, box_diff


# --- export -> load -> same outputs ---------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_export_gives_the_keras_models_score_and_box_on_real_faces(fmt, grid_model, grid_exports, real_frames):
    keras_detector = Detector.from_file(grid_model)
    exported = Detector.from_file(grid_exports[fmt])
    assert exported.runtime == {"onnx": "onnxruntime", "tflite": "litert"}[fmt]
    assert exported.model is None and exported.input_size == keras_detector.input_size == DEFAULT_SIZE
    assert exported.device.startswith("CPU") and exported.runtime in repr(exported)
    scores = [d.score for d in keras_detector.detect_batch(real_frames)]
    assert max(scores) - min(scores) > 1e-3, "the frames must give different answers for the check to mean anything"
    score_diff, box_diff = _largest_differences(keras_detector, exported, real_frames)
    assert score_diff <= TOLERANCE and box_diff <= TOLERANCE
    # More frames than one batch chunk (32), and a single frame again afterwards (LiteRT resizes its input).
    many = (real_frames * 3)[:35]
    assert [round(d.score, 4) for d in exported.detect_batch(many)] == \
        [round(d.score, 4) for d in keras_detector.detect_batch(many)]
    assert exported.detect(real_frames[0]).score == pytest.approx(keras_detector.detect(real_frames[0]).score, abs=TOLERANCE)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_tiny_backbone_exports_too(fmt, tiny_model_file, real_frames, tmp_path):
    result = export_model(tiny_model_file, fmt, tmp_path / f"tiny.{fmt}")
    assert result.path.is_file() and result.max_score_difference <= TOLERANCE and result.max_box_difference <= TOLERANCE
    assert result.frames_checked == len(verification_frames())
    exported = Detector.from_file(result.path)
    assert exported.input_size == 48 and exported.threshold == 0.5  # the tiny model stores no threshold
    score_diff, box_diff = _largest_differences(Detector.from_file(tiny_model_file), exported, real_frames)
    assert score_diff <= TOLERANCE and box_diff <= TOLERANCE
    assert "Wrote" in result.summary() and result.as_dict()["format"] == fmt


@pytest.mark.slow
def test_a_mixed_precision_model_is_exported_in_float32(tmp_path, real_frames):
    """A GPU-trained model computes in float16; its export computes in float32 with the same weights."""
    keras.utils.set_random_seed(5)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model("tiny", input_size=48, weights=None)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    path = _save(model, tmp_path / "mixed.keras")
    result = export_model(path, "onnx")
    exported = Detector.from_file(result.path)
    float32 = Detector(export_module.float32_model(keras.models.load_model(path)))
    assert float32.model.layers[2].compute_dtype == "float32"
    score_diff, box_diff = _largest_differences(float32, exported, real_frames)
    assert score_diff <= TOLERANCE and box_diff <= TOLERANCE
    score_diff, box_diff = _largest_differences(Detector.from_file(path), exported, real_frames)
    assert score_diff <= 1e-2 and box_diff <= 1e-2  # float16 against float32: close, not equal


def test_portable_signbit_is_the_sign_bit_of_every_float():
    values = np.array([-0.0, 0.0, -1.5, 2.0, -np.inf, np.inf, -1e-40, 1e-40, -3.4e38], dtype=np.float32)
    rows = np.array([[-0.0, 0.0, -1.0], [0.0, -0.0, -1.0], [-2.0, -0.0, -1.0]], dtype=np.float32)
    before = keras.ops.convert_to_numpy(keras.ops.argmax(rows, axis=-1))
    with portable_signbit():
        signs = keras.ops.convert_to_numpy(keras.ops.signbit(values))
        after = keras.ops.convert_to_numpy(keras.ops.argmax(rows, axis=-1))
    assert signs.tolist() == np.signbit(values).tolist()
    assert after.tolist() == before.tolist() == [1, 0, 1]  # -0.0 ranks below +0.0, as Keras has it
    assert keras.ops.convert_to_numpy(keras.ops.signbit(values)).tolist() == np.signbit(values).tolist()


def test_an_export_that_does_not_reproduce_the_model_is_not_written(tiny_model_file, tmp_path, monkeypatch):
    target = tmp_path / "old.onnx"
    target.write_bytes(b"the previous export")
    monkeypatch.setattr(export_module, "compare_detectors", lambda *args: (0.02, 0.0))
    with pytest.raises(ExportError, match="does not reproduce") as info:
        export_model(tiny_model_file, "onnx", target)
    assert str(target) in str(info.value)
    assert target.read_bytes() == b"the previous export"
    assert not metadata_sidecar(target).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.onnx"], "no temporary file left behind"


@pytest.mark.slow  # three exports: about 20 s
def test_an_export_killed_between_its_two_commits_never_pairs_the_new_model_with_an_old_sidecar(
        tiny_model_file, tmp_path, monkeypatch):
    """Issue 19: the model is committed first, then its sidecar, which names the model by size and SHA-256;
    killed in between, the old sidecar is refused beside the new model (never a silent wrong threshold)."""
    first = _save(keras.models.load_model(tiny_model_file), tmp_path / "first.keras", {"score_threshold": 0.3})
    keras.utils.set_random_seed(11)
    second = _save(build_model("tiny", input_size=48, weights=None), tmp_path / "second.keras",
                   {"score_threshold": 0.7})
    out = tmp_path / "phone.tflite"
    export_model(first, "tflite", out)
    assert Detector.from_file(out).threshold == pytest.approx(0.3)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the moment between the model's rename and the sidecar's
    monkeypatch.setattr(export_module, "atomic_write_text", killed)
    with pytest.raises(KeyboardInterrupt):
        export_model(second, "tflite", out)
    monkeypatch.undo()
    with pytest.raises(ModelFileError) as info:
        Detector.from_file(out)
    assert str(info.value).startswith(f"{metadata_sidecar(out)}: describes another model file than phone.tflite")
    export_model(second, "tflite", out)  # exported again: whole, and nothing of the killed one is left
    assert Detector.from_file(out).threshold == pytest.approx(0.7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.keras", "phone.tflite", "phone.tflite.json",
                                                          "second.keras"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_exported_detector_serves_several_threads(fmt, grid_exports, real_frames):
    """The Detect tab and the Label tab's suggestions share one detector; a LiteRT interpreter is not
    thread-safe on its own (its input and output tensors are shared), so the Detector serialises calls."""
    import threading

    detector = Detector.from_file(grid_exports[fmt])
    frames = real_frames[:6]
    expected = [detector.detect(f).score for f in frames]
    wrong: list[str] = []

    def work(offset: int) -> None:
        try:
            for i in range(60):
                k = (i + offset) % len(frames)
                if i % 7 == 0:
                    got = [d.score for d in detector.detect_batch(frames)]
                    if got != pytest.approx(expected, abs=TOLERANCE):
                        wrong.append(f"batch {got}")
                elif detector.detect(frames[k]).score != pytest.approx(expected[k], abs=TOLERANCE):
                    wrong.append(f"frame {k}")
        except Exception as exc:  # LiteRT without the lock: "There is at least 1 reference to internal data"
            wrong.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not wrong, wrong[:5]


# --- the threshold travels ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_stored_threshold_travels_with_the_export(fmt, grid_exports, tmp_path):
    path = grid_exports[fmt]
    sidecar = metadata_sidecar(path)
    assert sidecar.name == path.name + ".json"
    stored = json.loads(sidecar.read_text())
    assert {k: stored[k] for k in STORED} == STORED and stored["format"] == fmt and stored["input_size"] == DEFAULT_SIZE
    detector = Detector.from_file(path)
    assert detector.threshold == pytest.approx(0.37) and detector.metadata["epoch"] == 4
    assert Detector.from_file(path, threshold=0.8).threshold == 0.8

    alone = tmp_path / path.name  # the file copied without its JSON
    shutil.copyfile(path, alone)
    # ONNX also carries it inside the file; a lone TFLite file falls back to the tutorial's 0.5.
    assert Detector.from_file(alone).threshold == pytest.approx(0.37 if fmt == "onnx" else 0.5)
    metadata_sidecar(alone).write_text(json.dumps({"score_threshold": 0.61}))  # a user's edit wins
    assert Detector.from_file(alone).threshold == pytest.approx(0.61)


# --- the command line -------------------------------------------------------------------------------
def test_export_command_line_errors_are_one_line(grid_model, tmp_path, capsys):
    assert cli_main(["export", str(grid_model)]) == 2
    assert "say which format" in capsys.readouterr().err
    assert cli_main(["export", str(grid_model), "--format", "onnx", "--out", str(tmp_path / "x.tflite")]) == 2
    err = capsys.readouterr().err
    assert "x.tflite" in err and "must be named *.onnx" in err
    missing = tmp_path / "nothing.keras"
    assert cli_main(["export", str(missing), "--format", "tflite"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and "no such file" in err
    assert cli_main(["export", str(missing), "--format", "tflite", "--progress", "json"]) == 1
    event = json.loads(capsys.readouterr().out.strip())
    assert event["event"] == "error" and "no such file" in event["message"]
    assert not list(tmp_path.iterdir())


def test_evaluate_and_predict_take_an_exported_model(grid_exports, tmp_path, capsys):
    data = make_real_demo_data(tmp_path / "data", count=8, seed=4)
    assert cli_main(["evaluate", str(grid_exports["tflite"]), str(data), "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == str(grid_exports["tflite"])
    assert cli_main(["predict", str(grid_exports["onnx"]), str(data / "test" / "images"), "--out", str(tmp_path / "p")]) == 0
    assert list((tmp_path / "p").glob("*.jpg"))


# --- bad files and missing runtimes -------------------------------------------------------------------
def _one_output_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["score"], keepdims=0, axes=[1, 2, 3])], "not_a_detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 32, 32, 3])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _three_outputs_tflite(path: Path) -> Path:
    import tensorflow as tf

    inputs = keras.Input((32, 32, 3))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(1)(flat), keras.layers.Dense(4)(flat), keras.layers.Dense(2)(flat)])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    path.write_bytes(converter.convert())
    return path


BAD_FILES = {
    # case: (file name, how to make it, words the message must contain)
    "onnx-missing": ("gone.onnx", None, "no such file"),
    "onnx-folder": ("folder.onnx", "mkdir", "is a folder"),
    "onnx-empty": ("empty.onnx", lambda p, e: p.write_bytes(b""), "is empty"),
    "onnx-text": ("notes.onnx", lambda p, e: p.write_text("not a model at all"), "could not be read as an ONNX model"),
    "onnx-truncated": ("cut.onnx", lambda p, e: p.write_bytes(e["onnx"].read_bytes()[:5000]), "could not be read as an ONNX"),
    "onnx-is-keras": ("renamed.onnx", lambda p, e: p.write_bytes(e["keras"].read_bytes()), "name it .keras"),
    "onnx-is-tflite": ("renamed2.onnx", lambda p, e: p.write_bytes(e["tflite"].read_bytes()), "name it .tflite"),
    "onnx-wrong-kind": ("other.onnx", lambda p, e: _one_output_onnx(p), "not a FaceTracker face detector"),
    "tflite-missing": ("gone.tflite", None, "no such file"),
    "tflite-folder": ("folder.tflite", "mkdir", "is a folder"),
    "tflite-empty": ("empty.tflite", lambda p, e: p.write_bytes(b""), "is empty"),
    "tflite-text": ("notes.tflite", lambda p, e: p.write_text("not a model at all"), "not a TFLite model"),
    "tflite-truncated": ("cut.tflite", lambda p, e: p.write_bytes(e["tflite"].read_bytes()[:5000]), "TFLite model"),
    "tflite-is-keras": ("renamed.tflite", lambda p, e: p.write_bytes(e["keras"].read_bytes()), "name it .keras"),
    "tflite-is-onnx": ("renamed2.tflite", lambda p, e: p.write_bytes(e["onnx"].read_bytes()), "not a TFLite model"),
    "tflite-wrong-kind": ("other.tflite", lambda p, e: _three_outputs_tflite(p), "two outputs"),
    "keras-is-tflite": ("renamed.keras", lambda p, e: p.write_bytes(e["tflite"].read_bytes()), "name it .tflite"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_exported_files_raise_model_file_error_naming_the_file(case, tmp_path, grid_model, grid_exports):
    name, make, words = BAD_FILES[case]
    path = tmp_path / name
    if make == "mkdir":
        path.mkdir()
    elif make is not None:
        make(path, {"keras": grid_model, **grid_exports})
    with pytest.raises(ModelFileError) as info:
        Detector.from_file(path)
    message = str(info.value)
    assert str(path) in message and words in message and "\n" not in message
    assert info.value.path == path and not isinstance(info.value, MissingRuntimeError)


def test_a_missing_onnx_runtime_names_the_extra(grid_exports, grid_model, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails, as when not installed
    with pytest.raises(MissingRuntimeError) as info:
        Detector.from_file(grid_exports["onnx"])
    assert str(grid_exports["onnx"]) in str(info.value) and 'pip install "facetracker[onnx]"' in str(info.value)
    assert isinstance(info.value, ModelFileError)
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # exporting to ONNX needs the same extra
    with pytest.raises(ExportError, match=r'pip install "facetracker\[onnx\]"'):
        export_model(grid_model, "onnx", tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())


def test_without_litert_tensorflows_interpreter_runs_tflite_and_without_both_the_extra_is_named(
        grid_exports, real_frames, monkeypatch):
    litert = Detector.from_file(grid_exports["tflite"])
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    fallback = Detector.from_file(grid_exports["tflite"])
    assert fallback.runtime == "tensorflow-lite" and "TensorFlow Lite" in fallback.device
    score_diff, box_diff = _largest_differences(litert, fallback, real_frames[:4])
    assert score_diff <= TOLERANCE and box_diff <= TOLERANCE
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingRuntimeError) as info:
        Detector.from_file(grid_exports["tflite"])
    assert str(grid_exports["tflite"]) in str(info.value) and 'pip install "facetracker[litert]"' in str(info.value)


def test_light_runtimes_do_not_load_tensorflow(grid_exports):
    """An exported model runs without TensorFlow or Keras ever being imported (what "light" means)."""
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from training.inference.detector import Detector
        for path in ({str(grid_exports["onnx"])!r}, {str(grid_exports["tflite"])!r}):
            detection = Detector.from_file(path).detect(np.full((480, 640, 3), 128, np.uint8))
            assert 0.0 <= detection.score <= 1.0
        loaded = sorted(name for name in ("tensorflow", "keras") if name in sys.modules)
        print("heavy modules:", loaded)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr
    assert "heavy modules: []" in done.stdout


# --- the app -------------------------------------------------------------------------------------------
@pytest.fixture
def train_tab(qtbot, tmp_path):
    from desktop.train_tab import TrainTab

    tab = TrainTab(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(tab)
    tab.show()
    yield tab
    tab.shutdown()


@pytest.mark.slow
def test_the_train_tab_exports_the_best_model(qtbot, train_tab, tiny_model_file, tmp_path, monkeypatch):
    assert not train_tab.export_button.isEnabled()  # no run, no model
    model = shutil.copyfile(tiny_model_file, tmp_path / "best.keras")
    train_tab.best_model = model
    train_tab._update_buttons()
    assert train_tab.export_button.isEnabled() and train_tab.export_button.text() == "Export…"
    asked = {}

    def save_dialog(parent, caption, start, filters, selected):
        asked.update(start=start, filters=filters)
        return str(tmp_path / "for-the-phone"), "TFLite, for LiteRT (*.tflite)"  # no suffix typed

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    qtbot.mouseClick(train_tab.export_button, Qt.MouseButton.LeftButton)
    assert "*.onnx" in asked["filters"] and "*.tflite" in asked["filters"] and asked["start"].endswith("best.onnx")
    assert not train_tab.export_button.isEnabled() and "Exporting" in train_tab.status_label.text()
    qtbot.waitUntil(lambda: not train_tab.exporter.is_running(), timeout=180_000)
    target = tmp_path / "for-the-phone.tflite"
    assert "Exported" in train_tab.status_label.text(), train_tab.status_label.text()
    assert str(target) in train_tab.status_label.text() and "#b00020" not in train_tab.status_label.styleSheet()
    assert Detector.from_file(target).runtime == "litert" and metadata_sidecar(target).is_file()
    assert train_tab.export_button.isEnabled()


def test_a_failed_export_is_reported_in_the_train_tab(qtbot, train_tab, tmp_path):
    broken = tmp_path / "best.keras"
    broken.write_text("not a model")
    train_tab.best_model = broken
    train_tab.exporter.export(broken, tmp_path / "best.onnx")
    qtbot.waitUntil(lambda: not train_tab.exporter.is_running(), timeout=120_000)
    text = train_tab.status_label.text()
    assert "Export failed" in text and str(broken) in text and "not a .keras model file" in text
    assert "#b00020" in train_tab.status_label.styleSheet()
    assert "Export failed" in train_tab.log_view.toPlainText()
    assert not (tmp_path / "best.onnx").exists()


def test_the_detect_tab_opens_an_exported_model(qtbot, tmp_path, face_video, grid_exports, monkeypatch):
    from desktop.detect_tab import DetectTab
    from desktop.settings import make_settings

    tab = DetectTab(make_settings(tmp_path / "settings.ini"), realtime=False)
    qtbot.addWidget(tab)
    tab.show()
    try:
        offered = {}

        def open_dialog(parent, caption, start, filters):
            offered["filters"] = filters
            return str(grid_exports["onnx"]), filters.split(";;")[0]

        monkeypatch.setattr(QFileDialog, "getOpenFileName", open_dialog)
        tab.start(source=str(face_video), model=None)
        tab.choose_model()
        first = offered["filters"].split(";;")[0]
        assert all(f"*.{suffix}" in first for suffix in ("keras", "onnx", "tflite"))
        qtbot.waitUntil(lambda: tab.model_state == "model", timeout=60_000)
        detector = tab.current_detector()
        assert detector.runtime == "onnxruntime" and detector.path == grid_exports["onnx"]
        assert tab.threshold_slider.value() == 37  # the threshold stored beside the export
        assert "best.onnx" in tab.model_label.text()
        qtbot.waitUntil(lambda: tab.inference.processed >= 3, timeout=30_000)
    finally:
        tab.shutdown()
