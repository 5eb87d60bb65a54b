"""The pretrained start: MediaPipe's BlazeFace rebuilt in Keras finds real faces before any training,
decodes as MediaPipe does, refuses weights that do not fit, and fine-tunes with the per-face losses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage
from keras import ops
from matplotlib import cbook
from PIL import Image

from training.data.realfaces import ASTRONAUT_FACE, GRACE_HOPPER_FACE
from training.evaluation.metrics import box_iou
from training.model import blazeface
from training.model.backbones import BACKBONES, WeightsUnavailableError, describe_start
from training.model.build import backbone_of, build_model
from training.model.losses import multi_face_losses

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"


def photo(path) -> np.ndarray:
    with Image.open(path) as picture:
        return cv2.cvtColor(np.asarray(picture.convert("RGB")), cv2.COLOR_RGB2BGR)


def in_webcam_frame(image: np.ndarray, box, height: int = 420, x: int = 100, grey: int = 70):
    """The photo scaled to ``height`` inside a 640x480 frame at (x, 30), and its face box moved along."""
    scale = min(height / image.shape[0], (640 - x) / image.shape[1])
    height, width = round(image.shape[0] * scale), round(image.shape[1] * scale)
    frame = np.full((480, 640, 3), grey, np.uint8)
    frame[30:30 + height, x:x + width] = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    x1, y1, x2, y2 = box
    return frame, (x1 * scale + x, y1 * scale + 30, x2 * scale + x, y2 * scale + 30)


@pytest.fixture(scope="module")
def pretrained():
    from training.inference.pretrained import pretrained_detector

    return pretrained_detector()


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_the_pretrained_detector_finds_a_real_face_before_any_training(pretrained, name):
    if name == "astronaut":
        image, box = photo(SKIMAGE_DATA / "astronaut.png"), ASTRONAUT_FACE
    else:
        image, box = photo(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), GRACE_HOPPER_FACE
    frame, truth = in_webcam_frame(image, box)
    faces = pretrained.detect_all(frame)
    assert len(faces) == 1, faces
    assert box_iou(np.array([faces[0].box]), np.array([truth]))[0] > 0.5


def test_the_pretrained_detector_finds_no_face_in_a_scene_without_one(pretrained):
    for name in ("coffee.png", "rocket.jpg", "brick.png"):
        frame, _ = in_webcam_frame(photo(SKIMAGE_DATA / name), (0, 0, 1, 1))
        assert pretrained.detect_all(frame) == [], name


def test_boxes_decode_as_mediapipe_decodes_them():
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 20, (2, 4, 4, 16)).astype("float32")
    boxes = ops.convert_to_numpy(blazeface.decode_boxes(raw, grid=4, scale=16.0))
    cell = 5  # row 1, column 1: anchor centre (1.5 / 4, 1.5 / 4)
    x, y, w, h = raw[1, 1, 1, :4] / 16.0
    centre_x, centre_y = 1.5 / 4 + x, 1.5 / 4 + y
    np.testing.assert_allclose(boxes[1, cell], [centre_x - abs(w) / 2, centre_y - abs(h) / 2,
                                                centre_x + abs(w) / 2, centre_y + abs(h) / 2], atol=1e-6)


def test_weights_that_do_not_fit_are_refused_naming_the_file(tmp_path, monkeypatch):
    model = build_model("blazeface", weights=None)
    with np.load(blazeface.weights_path()) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["002_kernel"] = arrays["002_kernel"][:, :, :1]
    damaged = tmp_path / "other.npz"
    np.savez(damaged, **arrays)
    with pytest.raises(ValueError, match=r"other\.npz.*weights 002"):
        blazeface.load_blazeface_weights(model, damaged)
    monkeypatch.setattr(blazeface, "weights_path", lambda: tmp_path / "missing.npz")
    with pytest.raises(WeightsUnavailableError, match="missing.npz"):
        build_model("blazeface", weights="face")


def test_the_pretrained_model_saves_as_an_ordinary_model_file(pretrained, tmp_path):
    from training.inference.detector import Detector
    from training.inference.pretrained import PRETRAINED_LABEL, save_pretrained_model

    path = save_pretrained_model(tmp_path / "pretrained.keras")
    loaded = Detector.from_file(path)
    assert loaded.metadata["pretrained"] is True and loaded.metadata["label"] == PRETRAINED_LABEL
    assert loaded.threshold == pytest.approx(pretrained.threshold)
    assert backbone_of(loaded.model) == "blazeface"
    frame, _ = in_webcam_frame(photo(SKIMAGE_DATA / "astronaut.png"), ASTRONAUT_FACE)
    np.testing.assert_allclose([f.box for f in loaded.detect_all(frame)],
                               [f.box for f in pretrained.detect_all(frame)], atol=0.05)


def test_a_large_face_keeps_its_middle_cells_out_of_the_negatives():
    """reach: a selfie-sized face covers many cells; the ones near its centre are not "no face"."""
    grid = 12
    face = np.array([[[0.1, 0.1, 0.9, 0.9]]], "float32")  # 10 cells wide; centre cell (6, 6)
    mask = np.ones((1, 1), "float32")
    logits = np.full((1, grid, grid, 1), -6.0, "float32")
    logits[0, 6, 8] = 6.0  # a cell two cells right of the centre calls it a face
    cells = np.tile(face[:, :, None, :], (1, 1, grid * grid, 1)).reshape(1, grid * grid, 4)
    tight, _ = multi_face_losses(face, mask, logits, cells, grid)
    wide, _ = multi_face_losses(face, mask, logits, cells, grid, reach=BACKBONES["blazeface"].face_reach)
    assert float(tight) > float(wide) + 3.0  # the tight block punishes that cell as a false alarm


def test_describe_start_names_what_a_run_starts_from():
    assert "BlazeFace" in describe_start("blazeface", "face")
    assert "scratch" in describe_start("blazeface", "none")


@pytest.mark.slow
def test_a_blazeface_run_fine_tunes_the_pretrained_detector_says_so_and_resumes_in_a_new_process(tmp_path):
    from training.cli import main
    from training.data.realfaces import make_real_demo_data

    data = make_real_demo_data(tmp_path / "data", count=40, seed=3, max_faces=2)
    code = main([str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "8"])
    assert code == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["config"]["backbone"] == "blazeface" and config["weights_used"] == "face"
    assert "BlazeFace" in config["started_from"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["ap50"] >= 0 and metrics["test"]["multi_face"]
    # Honest verdict: the model's figures on real photographs no training set uses sit beside the test split's.
    real, real_classic = metrics["real_photos"], metrics["real_photos_classic"]
    assert real["faces"] >= 8 and real["frames"] >= 12 and 0 <= real["ap50"] <= 1 and real_classic["faces"] == real["faces"]
    assert f"AP50 {real['ap50']:.2f} (classic finder {real_classic['ap50']:.2f})" in metrics["verdict"]

    # Resumed in a new process, as the Train tab's child and `--resume` do: the loaded network's saved
    # operation names must not clash with the training outputs added to it ("The name "add" is used 2 times").
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", "training", str(data), "--resume", str(tmp_path / "run"), "--epochs", "2",
                           "--progress", "none"], capture_output=True, text=True, timeout=600, env=env,
                          cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_completed"] == 2
