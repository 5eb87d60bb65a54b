"""Detector on a real saved model: pixel boxes, batch == single, and every way a model file can be wrong."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from training.core.preprocess import preprocess_frames
from training.inference.detector import Detection, Detector, ModelFileError, load_detector_model
from training.model.build import build_model

INPUT_SIZE = 48


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    keras.utils.set_random_seed(1)
    path = tmp_path_factory.mktemp("model") / "detector.keras"
    build_model("tiny", input_size=INPUT_SIZE, weights=None).save(path)
    return path


@pytest.fixture(scope="module")
def detector(model_path) -> Detector:
    return Detector.from_file(model_path)


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """Random frames of different, non-square sizes (a width/height mix-up would show)."""
    rng = np.random.default_rng(seed)
    sizes = [(480, 640), (120, 200), (300, 90), (48, 48), (37, 61)]
    return [rng.integers(0, 256, size=(*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(count)]


def _raw_outputs(model: keras.Model, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The model's own eager output on the shared preprocessing: what detect() must reproduce."""
    scores, boxes = model(preprocess_frames(frames, INPUT_SIZE), training=False)
    return keras.ops.convert_to_numpy(scores), keras.ops.convert_to_numpy(boxes)


def test_detector_reports_what_it_loaded(detector, model_path):
    assert detector.input_size == INPUT_SIZE
    assert detector.path == model_path
    assert detector.device.startswith(("CPU", "GPU"))
    assert str(model_path) in repr(detector)


def test_a_detector_is_a_face_detector(detector):
    from training.core.detection import MODEL_LABEL, FaceDetector

    assert isinstance(detector, FaceDetector) and detector.label == MODEL_LABEL and detector.name == "your model"
    x = np.zeros((2, detector.input_size, detector.input_size, 3), np.float32)
    assert [o.shape for o in detector.forward(x)[:2]] == [(2, 1), (2, 4)]


def test_detect_gives_the_models_output_in_frame_pixels(detector):
    frames = _frames(5)
    scores, boxes = _raw_outputs(detector.model, frames)
    for frame, score, box in zip(frames, scores[:, 0], boxes, strict=True):
        detection = detector.detect(frame)
        h, w = frame.shape[:2]
        assert isinstance(detection, Detection)
        assert isinstance(detection.score, float)
        assert detection.score == pytest.approx(float(score), abs=1e-4)
        assert np.allclose(np.array(detection.box) / [w, h, w, h], box, atol=1e-4)


@pytest.mark.parametrize("convert", ["gray", "bgra"])
def test_detect_accepts_gray_and_bgra_frames(detector, convert):
    import cv2

    bgr = _frames(1, seed=3)[0]
    other = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY if convert == "gray" else cv2.COLOR_BGR2BGRA)
    expected = detector.detect(cv2.cvtColor(other, cv2.COLOR_GRAY2BGR) if convert == "gray" else bgr)
    got = detector.detect(other)
    assert got.score == pytest.approx(expected.score, abs=1e-5)
    assert np.allclose(got.box, expected.box, atol=1e-3)


def test_detect_batch_equals_detect_one_by_one(detector, monkeypatch):
    import training.inference.detector as inference

    monkeypatch.setattr(inference, "_BATCH_CHUNK", 3)  # 7 frames -> chunks of 3, 3, 1
    frames = _frames(7, seed=5)
    batch = detector.detect_batch(frames)
    assert len(batch) == len(frames)
    for frame, got in zip(frames, batch, strict=True):
        single = detector.detect(frame)
        assert got.score == pytest.approx(single.score, abs=1e-5)
        assert np.allclose(got.box, single.box, atol=1e-3)
    assert detector.detect_batch([]) == []


@pytest.mark.parametrize("bad", [np.zeros((0, 10, 3), np.uint8), None, np.zeros((4, 4, 5), np.uint8)])
def test_detect_rejects_non_images_with_a_value_error(detector, bad):
    with pytest.raises(ValueError):
        detector.detect(bad)


def test_is_face_is_strictly_above_the_threshold():
    assert Detection(0.7, (0, 0, 1, 1)).is_face()
    assert not Detection(0.5, (0, 0, 1, 1)).is_face()
    assert not Detection(0.7, (0, 0, 1, 1)).is_face(threshold=0.8)


def test_saved_file_loads_with_plain_keras_in_safe_mode(model_path, detector):
    plain = keras.models.load_model(model_path, safe_mode=True, compile=False)
    frames = _frames(2, seed=9)
    expected_scores, expected_boxes = _raw_outputs(plain, frames)
    got = detector.detect_batch(frames)
    assert np.allclose([d.score for d in got], expected_scores[:, 0], atol=1e-4)
    assert load_detector_model(model_path).count_params() == plain.count_params()


def test_detector_refuses_a_model_of_the_wrong_kind():
    inputs = keras.Input((32, 32, 3))
    one_head = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(inputs)))
    with pytest.raises(ValueError, match="two outputs"):
        Detector(one_head)


# ----------------------------------------------------------------------------- bad model files


def _save(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


def _one_output_model(path: Path) -> Path:
    inputs = keras.Input((32, 32, 3))
    return _save(keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs))), path)


def _wrong_shapes_model(path: Path) -> Path:
    inputs = keras.Input((32, 32, 3))
    flat = keras.layers.Flatten()(inputs)
    return _save(keras.Model(inputs, [keras.layers.Dense(1)(flat), keras.layers.Dense(3)(flat)]), path)


def _non_square_model(path: Path) -> Path:
    inputs = keras.Input((32, 48, 3))
    flat = keras.layers.Flatten()(inputs)
    return _save(keras.Model(inputs, [keras.layers.Dense(1)(flat), keras.layers.Dense(4)(flat)]), path)


def _lambda_model(path: Path) -> Path:
    """Arbitrary code in a file: safe mode must refuse it."""
    inputs = keras.Input((32, 32, 3))
    flat = keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    return _save(keras.Model(inputs, [keras.layers.Dense(1)(flat), keras.layers.Dense(4)(flat)]), path)


def _text_file(path: Path) -> Path:
    path.write_text("not a model")
    return path


def _zip_without_config(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    return path


def _truncated(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _garbage_weights(path: Path, source: Path) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            payload = src.read(item.filename)
            dst.writestr(item, b"\x00garbage" * 10 if item.filename.endswith(".h5") else payload)
    return path


def _renamed(path: Path, source: Path) -> Path:
    path.write_bytes(source.read_bytes())
    return path


BAD_FILES = {
    # case: (file name, how to make it, words the message must contain)
    "missing": ("nothing.keras", None, "no such file"),
    "folder": ("a_folder.keras", "mkdir", "is a folder"),
    "text": ("notes.keras", _text_file, "not a .keras model file"),
    "h5": ("old.h5", _text_file, "HDF5"),
    "zip-without-config": ("other.keras", _zip_without_config, "not a Keras model"),
    "truncated": ("cut.keras", _truncated, "not a .keras model file"),
    "garbage-weights": ("broken.keras", _garbage_weights, "could not be read"),
    "wrong-suffix": ("detector.zip", _renamed, "must end in .keras"),
    "one-output": ("one.keras", _one_output_model, "two outputs"),
    "wrong-shapes": ("shapes.keras", _wrong_shapes_model, "(N, 4)"),
    "non-square": ("wide.keras", _non_square_model, "square"),
    "lambda-unsafe": ("lambda.keras", _lambda_model, "safe mode"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_model_files_raise_model_file_error_naming_the_file(case, tmp_path, model_path):
    name, make, words = BAD_FILES[case]
    path = tmp_path / name
    if make == "mkdir":
        path.mkdir()
    elif make in (_truncated, _garbage_weights, _renamed):
        make(path, model_path)
    elif make is not None:
        make(path)
    with pytest.raises(ModelFileError) as info:
        load_detector_model(path)
    message = str(info.value)
    assert str(path) in message
    assert words in message
    assert "\n" not in message
    assert info.value.path == path
    with pytest.raises(ModelFileError):
        Detector.from_file(path)


def test_the_threshold_stored_in_the_model_file_is_the_detectors_default(model_path, tmp_path):
    import shutil

    from training.core.detection import read_model_metadata, write_model_metadata

    assert Detector.from_file(model_path).threshold == 0.5  # no stored threshold: the tutorial's rule
    copy = tmp_path / "with_threshold.keras"
    shutil.copyfile(model_path, copy)
    write_model_metadata(copy, {"score_threshold": 0.37, "epoch": 4})
    write_model_metadata(copy, {"score_threshold": 0.41, "epoch": 5})  # a second write replaces the first
    assert read_model_metadata(copy) == {"score_threshold": 0.41, "epoch": 5}
    with zipfile.ZipFile(copy) as archive:
        assert archive.namelist().count("facetracker.json") == 1
    detector = Detector.from_file(copy)  # Keras still reads the archive
    assert detector.threshold == pytest.approx(0.41) and detector.metadata["epoch"] == 5
    assert Detector.from_file(copy, threshold=None).threshold == pytest.approx(0.41)
    assert Detector(detector.model, copy, threshold=0.9).threshold == 0.9
    write_model_metadata(copy, {"score_threshold": "high"})  # nonsense: fall back, do not crash
    assert Detector.from_file(copy).threshold == 0.5
    assert read_model_metadata(tmp_path / "missing.keras") == {}
