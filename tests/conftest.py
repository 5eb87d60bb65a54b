"""Shared test setup: headless Qt, quiet TensorFlow, the CPU only."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# The app's light copies of the pretrained detector (desktop.runtime): under test-output/, not the user's cache;
# kept between runs (each is keyed by what it was made from), so only the first run pays for the export.
os.environ.setdefault("FACETRACKER_CACHE", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                        "test-output", "cache"))

from pathlib import Path  # noqa: E402 - the environment above must be set first

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import skimage.data  # noqa: E402


def write_face_video(path: Path, frames: int = 40, fps: float = 20.0) -> Path:
    """A 320x240 video of the astronaut photo drifting sideways: a real face for the classic finder."""
    photo = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (260, 260))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    for i in range(frames):
        frame = np.full((240, 320, 3), 60, dtype=np.uint8)
        x = 10 + i % 40
        frame[:, x : x + 260] = photo[:240]
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="session")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The face video, written once for the whole run (tests only read it)."""
    return write_face_video(tmp_path_factory.mktemp("video") / "face.avi")


@pytest.fixture(scope="session")
def long_face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The face video at 12 s, for an app that must still be playing it after 10 s."""
    return write_face_video(tmp_path_factory.mktemp("video") / "long.avi", frames=240)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny-backbone model (48 px), saved once for the run: loading, exporting, bad input.
    Tests read it (or copy it); none writes to it."""
    import keras

    from training.model.build import build_model

    keras.utils.set_random_seed(3)
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    build_model("tiny", input_size=48, weights=None).save(path)
    return path


@pytest.fixture(scope="session")
def multiface_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained every-face model (multiface, 48 px) saved once for the run: enough for the app's wiring."""
    from training.model.build import build_model

    path = tmp_path_factory.mktemp("multiface") / "multiface.keras"
    build_model("multiface", weights=None, input_size=48).save(path)
    return path


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 synthetic demo pictures (160x120, train/val/test) made once for the run; tests only read them."""
    from training.data.demo import make_demo_data

    return make_demo_data(tmp_path_factory.mktemp("demo") / "demo", count=40, width=160, height=120, seed=2)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that drives a Qt widget (uses ``qtbot``) is a ``gui`` test: ``-m "not gui"`` leaves them out."""
    for item in items:
        if "qtbot" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.gui)
