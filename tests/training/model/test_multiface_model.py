"""The multi-face model: its four outputs, its per-face losses, NMS decoding, detect_all in every runtime,
and the classic finder's every face. Real Keras models (untrained weights), real exports, a real photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import skimage.data
from keras import ops

from training.core.boxes import faces_from_cells, iou_matrix, non_max_suppression
from training.core.detection import Detection, ModelFileError
from training.core.preprocess import box_to_pixels, preprocess_frames
from training.inference.classic import ClassicFaceFinder, merge_same_faces
from training.inference.detector import Detector, _io_problem, load_detector_model
from training.model.build import (
    build_model,
    grid_cell_boxes,
    grid_maps_model,
    is_grid_model,
    is_multi_face_model,
)
from training.model.losses import grid_losses, multi_face_losses

GRID = 6


@pytest.fixture(scope="module")
def multiface_path(tmp_path_factory) -> Path:
    """A multiface model whose cell scores spread widely (no "no face" bias), so some pass a threshold."""
    keras.utils.set_random_seed(3)
    model = build_model("multiface", weights=None)
    layer = model.get_layer("score_map")
    kernel, _ = layer.get_weights()
    layer.set_weights([kernel, np.zeros(1, np.float32)])  # scores from about 0.25 to 0.9
    path = tmp_path_factory.mktemp("multiface") / "multi.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def multiface(multiface_path) -> keras.Model:
    return load_detector_model(multiface_path)


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8) for _ in range(count)]


# ----------------------------------------------------------------------------- the model


def test_multiface_has_grid_outputs_plus_every_cells_score_and_box(multiface, multiface_path):
    assert [tuple(o.shape) for o in multiface.outputs] == [(None, 1), (None, 4), (None, 256), (None, 256, 4)]
    assert multiface.output_names == ["class", "box", "scores", "boxes"]
    assert is_multi_face_model(multiface) and is_grid_model(multiface)
    assert not is_multi_face_model(build_model("grid", weights=None))
    # class and box exactly as the grid model computes them with the same weights
    grid = build_model("grid", weights=None)
    grid.set_weights(multiface.get_weights())
    x = preprocess_frames(_frames(3), 128)
    score, box, scores, boxes = (ops.convert_to_numpy(o) for o in multiface(x))
    assert all(o.dtype == np.float32 for o in (score, box, scores, boxes))
    grid_score, grid_box = (ops.convert_to_numpy(o) for o in grid(x))
    np.testing.assert_allclose(score, grid_score, atol=1e-6)
    np.testing.assert_allclose(box, grid_box, atol=1e-6)
    # scores: each cell's sigmoid; boxes: each cell's decoded box, inside the input
    logits, box_map = (ops.convert_to_numpy(o) for o in grid_maps_model(multiface)(x))
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-logits.reshape(3, -1))), atol=1e-6)
    np.testing.assert_allclose(boxes, np.clip(ops.convert_to_numpy(grid_cell_boxes(box_map, 16)), 0, 1), atol=1e-6)
    assert scores.std() > 0.05  # the fixture's score map really varies
    np.testing.assert_allclose(score[:, 0], scores.max(axis=1), atol=1e-6)
    # a plain model: plain Keras in safe mode reads it back with no custom objects
    loaded = keras.models.load_model(multiface_path, safe_mode=True, compile=False)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)[2]), scores, atol=1e-6)


def test_multiface_starts_from_the_face_trained_stem():
    model = build_model("multiface", weights="face")
    plain = build_model("multiface", weights=None)
    kernel = model.get_layer("face_stem_conv1").get_weights()[0]
    assert not np.allclose(kernel, plain.get_layer("face_stem_conv1").get_weights()[0])
    assert model.get_layer("face_stem_conv1").get_weights()[0].shape == (3, 3, 3, 28)


# ----------------------------------------------------------------------------- the losses


def _random_case(seed: int, pictures: int = 5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (pictures, GRID, GRID, 1)).astype(np.float32)
    box_map = rng.normal(0, 1, (pictures, GRID, GRID, 4)).astype(np.float32)
    corner = rng.uniform(0, 0.7, (pictures, 2))
    size = rng.uniform(0.05, 0.3, (pictures, 2))
    boxes = np.concatenate([corner, corner + size], axis=1).astype(np.float32)
    face = (rng.uniform(size=pictures) > 0.3).astype(np.float32)
    face[0] = 1.0
    boxes *= face[:, None]
    return face, boxes, logits, grid_cell_boxes(box_map, GRID)


@pytest.mark.parametrize("seed", [0, 1])
def test_one_face_per_picture_gives_exactly_the_grid_losses(seed):
    face, boxes, logits, cells = _random_case(seed)
    class_g, regress_g, _ = grid_losses(face[:, None], boxes, logits, cells, GRID)
    class_m, regress_m = multi_face_losses(boxes[:, None, :], face[:, None], logits, cells, GRID)
    assert float(class_m) == pytest.approx(float(class_g), rel=1e-5)
    assert float(regress_m) == pytest.approx(float(regress_g), rel=1e-5)
    # the same with padding: junk faces masked off change nothing
    rng = np.random.default_rng(seed + 10)
    junk = rng.uniform(0, 1, (len(face), 3, 4)).astype(np.float32)
    padded = np.concatenate([boxes[:, None, :], junk], axis=1)
    mask = np.concatenate([face[:, None], np.zeros((len(face), 3), np.float32)], axis=1)
    class_p, regress_p = multi_face_losses(padded, mask, logits, cells, GRID)
    assert float(class_p) == pytest.approx(float(class_g), rel=1e-5)
    assert float(regress_p) == pytest.approx(float(regress_g), rel=1e-5)


def _cell(row: int, column: int) -> int:
    return row * GRID + column


def _face_at(column: float, row: float, half: float = 0.04) -> list[float]:
    """A face centred at (column, row) in cell units of the GRID x GRID map."""
    x, y = column / GRID, row / GRID
    return [x - half, y - half, x + half, y + half]


def _block(row: int, column: int) -> list[int]:
    return [_cell(r, c) for r in range(row - 1, row + 2) for c in range(column - 1, column + 2)
            if 0 <= r < GRID and 0 <= c < GRID]


def test_regression_is_zero_when_every_block_boxes_its_own_face():
    faces = np.array([[_face_at(1.5, 1.5), _face_at(4.5, 4.5)]], np.float32)  # far apart: blocks disjoint
    cells = np.random.default_rng(0).uniform(0, 1, (1, GRID * GRID, 4)).astype(np.float32)
    cells[0, _block(1, 1)] = faces[0, 0]
    cells[0, _block(4, 4)] = faces[0, 1]
    logits = np.zeros((1, GRID, GRID, 1), np.float32)
    _, regress = multi_face_losses(faces, np.ones((1, 2), np.float32), logits, cells, GRID)
    assert float(regress) == pytest.approx(0.0, abs=1e-10)
    cells[0, _cell(4, 5)] = faces[0, 0]  # a cell of the second face's block boxes the first face
    _, wrong = multi_face_losses(faces, np.ones((1, 2), np.float32), logits, cells, GRID)
    assert float(wrong) > 1e-3


def test_a_cell_in_two_blocks_fits_the_nearest_face_and_a_face_cell_fits_its_own_face():
    # face A centred in cell (1, 1) near its right edge, face B in cell (1, 3): column 2 is in both blocks,
    # its centre (2.5) is 0.6 cells from A and 1.0 from B.
    a, b = _face_at(1.9, 1.5, 0.05), _face_at(3.5, 1.5, 0.03)
    faces = np.array([[a, b]], np.float32)
    mask = np.ones((1, 2), np.float32)
    logits = np.zeros((1, GRID, GRID, 1), np.float32)
    cells = np.zeros((1, GRID * GRID, 4), np.float32)
    cells[0, _block(1, 1)] = a
    cells[0, _block(1, 3)] = b
    shared = [_cell(r, 2) for r in range(3)]
    cells[0, shared] = a
    assert float(multi_face_losses(faces, mask, logits, cells, GRID)[1]) == pytest.approx(0.0, abs=1e-10)
    cells[0, shared] = b
    assert float(multi_face_losses(faces, mask, logits, cells, GRID)[1]) > 1e-4
    # A's centre in the corner of its cell (1, 1), B just across the border in cell (1, 2): B is nearer
    # to cell (1, 1)'s centre, but that cell is A's own, so it fits A.
    a, b = _face_at(1.99, 1.99, 0.05), _face_at(2.01, 1.5, 0.03)
    faces = np.array([[a, b]], np.float32)
    cells = np.zeros((1, GRID * GRID, 4), np.float32)
    cells[0, _block(1, 1)] = a
    cells[0, _block(1, 2)] = b  # their blocks overlap in columns 1-2: the rest are nearer B
    cells[0, _cell(1, 1)] = a
    for r in range(3):  # column 1 (centre 1.5) is nearer A (0.49 away) than B (0.51)
        cells[0, _cell(r, 1)] = a
    mine = float(multi_face_losses(faces, mask, logits, cells, GRID)[1])
    cells[0, _cell(1, 1)] = b
    assert float(multi_face_losses(faces, mask, logits, cells, GRID)[1]) > mine + 1e-4


def test_class_loss_wants_every_faces_cell_to_score_and_nothing_else():
    faces = np.array([[_face_at(1.5, 1.5), _face_at(4.5, 4.5)]], np.float32)
    mask = np.ones((1, 2), np.float32)
    cells = np.zeros((1, GRID * GRID, 4), np.float32)

    def class_loss(on: list[tuple[int, int]]) -> float:
        logits = np.full((1, GRID, GRID, 1), -8.0, np.float32)
        for row, column in on:
            logits[0, row, column, 0] = 8.0
        return float(multi_face_losses(faces, mask, logits, cells, GRID)[0])

    good = class_loss([(1, 1), (4, 4)])
    assert good < 0.01
    assert class_loss([(1, 1)]) > good + 5  # the second face missed: its positive counts as much as the first's
    assert class_loss([(4, 4)]) > good + 5
    assert class_loss([(1, 1), (4, 4), (1, 2), (5, 5)]) == pytest.approx(good, abs=1e-6)  # neighbours left alone
    assert class_loss([(1, 1), (4, 4), (0, 5)]) > good + 5  # a cell outside both blocks: a false alarm


def test_multi_face_loss_gradients_are_finite():
    import tensorflow as tf

    rng = np.random.default_rng(4)
    logits = tf.Variable(rng.normal(0, 30, (2, GRID, GRID, 1)).astype(np.float32))  # extreme logits too
    box_map = tf.Variable(rng.normal(0, 1, (2, GRID, GRID, 4)).astype(np.float32))
    faces = np.array([[_face_at(1.5, 1.5), _face_at(2.2, 1.7), [0, 0, 0, 0]],
                      [[0.0, 0.0, 1.0, 1.0], [0, 0, 0, 0], [0, 0, 0, 0]]], np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    with tf.GradientTape() as tape:
        class_l, regress_l = multi_face_losses(faces, mask, logits, grid_cell_boxes(box_map, GRID), GRID)
        total = regress_l + 0.5 * class_l
    grads = [g.numpy() for g in tape.gradient(total, [logits, box_map])]
    assert all(np.isfinite(g).all() and np.abs(g).sum() > 0 for g in grads)


# ----------------------------------------------------------------------------- decoding


def test_nms_keeps_the_best_of_each_overlapping_group_best_first():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 0, 10, 10.5]], float)
    scores = np.array([0.6, 0.9, 0.7, 0.5])
    assert non_max_suppression(boxes, scores, 0.4).tolist() == [1, 2]
    assert non_max_suppression(boxes, scores, 0.99).tolist() == [1, 2, 0, 3]
    assert non_max_suppression(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    np.testing.assert_allclose(iou_matrix(boxes[:1], boxes[1:2]), [[90 / 110]])


def test_faces_from_cells_keeps_separate_faces_and_merges_duplicates():
    cells = np.array([[0.10, 0.10, 0.30, 0.30],  # face one, three cells
                      [0.12, 0.10, 0.32, 0.30],
                      [0.10, 0.12, 0.30, 0.32],
                      [0.60, 0.60, 0.80, 0.80],  # face two, two cells
                      [0.62, 0.60, 0.82, 0.80],
                      [0.11, 0.11, 0.31, 0.31]])  # below the threshold, yet it boxes face one
    scores = np.array([0.9, 0.6, 0.3, 0.8, 0.8, 0.1])
    faces = faces_from_cells(scores, cells, threshold=0.5)
    assert [score for score, _ in faces] == [0.9, 0.8]
    first = (0.9 * cells[0] + 0.6 * cells[1] + 0.3 * cells[2] + 0.1 * cells[5]) / 1.9
    second = (cells[3] + cells[4]) / 2
    np.testing.assert_allclose(faces[0][1], first)
    np.testing.assert_allclose(faces[1][1], second)
    unmerged = faces_from_cells(scores, cells, threshold=0.5, merge=False)
    np.testing.assert_allclose([box for _, box in unmerged], cells[[0, 3]])
    assert faces_from_cells(scores, cells, threshold=0.95) == []
    assert len(faces_from_cells(scores, cells, threshold=0.05, iou_threshold=0.99)) == 6  # nothing the same face


def test_a_cell_between_two_faces_is_averaged_into_the_better_one_only():
    cells = np.array([[0.0, 0.0, 0.4, 0.4], [0.2, 0.0, 0.6, 0.4], [0.1, 0.0, 0.5, 0.4]])
    scores = np.array([0.9, 0.8, 0.5])  # the third overlaps both by IoU 0.6
    faces = faces_from_cells(scores, cells, threshold=0.5, iou_threshold=0.4)
    assert len(faces) == 2  # 0 and 1 overlap by 1/3: two faces
    np.testing.assert_allclose(faces[0][1], (0.9 * cells[0] + 0.5 * cells[2]) / 1.4)
    np.testing.assert_allclose(faces[1][1], cells[1])


# ----------------------------------------------------------------------------- detect_all


def _expected_faces(model: keras.Model, frame: np.ndarray, threshold: float) -> list[Detection]:
    outputs = [ops.convert_to_numpy(o)[0] for o in model(preprocess_frames([frame], 128))]
    height, width = frame.shape[:2]
    return [Detection(score, box_to_pixels(box, width, height))
            for score, box in faces_from_cells(outputs[2], outputs[3], threshold)]


def _same(found: list[Detection], expected: list[Detection], atol: float = 1e-3) -> None:
    assert len(found) == len(expected)
    for a, b in zip(found, expected, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-5)
        np.testing.assert_allclose(a.box, b.box, atol=atol)


def test_detect_all_thresholds_and_suppresses_every_cell_in_frame_pixels(multiface, multiface_path):
    frames = _frames(3, seed=1)
    scores = ops.convert_to_numpy(multiface(preprocess_frames(frames, 128))[2])
    detector = Detector.from_file(multiface_path)
    assert detector.multi_face
    for frame, frame_scores in zip(frames, scores, strict=True):
        detector.threshold = float(np.quantile(frame_scores, 0.9))  # about 25 cells above it
        found = detector.detect_all(frame)
        _same(found, _expected_faces(multiface, frame, detector.threshold))
        assert 2 <= len(found) < 25  # several faces above the threshold, fewer after NMS
        assert max(max(d.box[2] for d in found) / 640, max(d.box[3] for d in found) / 480) > 0.3  # pixels
        assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    detector.threshold = float(np.quantile(scores, 0.9))
    batch = detector.detect_all_batch(frames)
    for frame, found in zip(frames, batch, strict=True):
        _same(found, detector.detect_all(frame))
    # detect stays the single best face: grid's class and box
    best = detector.detect(frames[0])
    assert best.score == pytest.approx(float(scores[0].max()), abs=1e-5)
    low = float(np.quantile(scores[0], 0.9))
    detector.threshold = 0.9999999
    assert detector.detect_all(frames[0]) == []
    # a threshold given to the call (the Detect tab's slider) wins over the stored one, for that call only
    _same(detector.detect_all(frames[0], threshold=low), _expected_faces(multiface, frames[0], low))
    assert detector.detect_all_batch(frames[:1], threshold=low)[0] and detector.detect_all(frames[0]) == []


def test_detect_all_of_a_single_face_model_is_its_one_face_or_nothing(tmp_path):
    detector = Detector(build_model("grid", weights=None), threshold=0.0)
    assert not detector.multi_face
    frame = _frames(1, seed=2)[0]
    best = detector.detect(frame)
    assert detector.detect_all(frame) == [best]
    batch = detector.detect_all_batch([frame, frame])
    assert len(batch) == 2
    for found in batch:  # a batch's float arithmetic may differ in the last bits
        _same(found, [best])
    detector.threshold = 0.9999999
    assert detector.detect_all(frame) == [] and detector.detect_all_batch([frame]) == [[]]
    assert detector.detect_all(frame, threshold=0.0) == [best]


# LiteRT returns the outputs in another order than Keras (box, cell boxes, score, cell scores): the
# loader tells them apart by shape.
@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_exports_keep_four_outputs_and_detect_all(fmt, multiface_path, tmp_path):
    from training.inference.export import export_model

    threshold = 0.5
    keras_detector = Detector.from_file(multiface_path, threshold=threshold)
    frames = _frames(2, seed=5)
    result = export_model(multiface_path, fmt, tmp_path / f"multi.{fmt}")
    exported = Detector.from_file(result.path, threshold=threshold)
    assert exported.multi_face
    for frame in frames:
        found = exported.detect_all(frame)
        assert found
        _same(found, keras_detector.detect_all(frame), atol=1e-2)
        assert exported.detect(frame).score == pytest.approx(keras_detector.detect(frame).score, abs=1e-4)
    assert [len(f) for f in exported.detect_all_batch(frames)] == [len(keras_detector.detect_all(f)) for f in frames]


def test_an_export_check_refuses_a_single_face_answer_for_a_multi_face_model(multiface_path):
    from training.inference.export import compare_detectors

    frames = _frames(1)
    single = Detector(build_model("grid", weights=None))
    with pytest.raises(ValueError, match="answers for every face"):
        compare_detectors(Detector.from_file(multiface_path), single, frames)


def test_exported_output_shapes_two_or_four_any_order_else_a_clear_error():
    image = (None, 128, 128, 3)
    assert _io_problem(image, [(None, 1), (None, 4)]) is None
    assert _io_problem(image, [(None, 4), (None, 256, 4), (None, 1), (None, 256)]) is None  # LiteRT's order
    assert _io_problem(image, [("batch", 1), ("batch", 4), ("batch", 256), ("batch", 256, 4)]) is None
    three = _io_problem(image, [(None, 1), (None, 4), (None, 256)])
    assert "two outputs (four for a multi-face model)" in three and "has 3" in three
    assert "cell boxes (N, C, 4)" in _io_problem(image, [(None, 1), (None, 4), (None, 256), (None, 255, 4)])
    assert "(N, 4)" in _io_problem(image, [(None, 1), (None, 4), (None, 1), (None, 256, 4)])


def test_a_keras_model_with_three_or_mismatched_outputs_is_refused(tmp_path):
    inputs = keras.Input((32, 32, 3))
    flat = keras.layers.Flatten()(inputs)
    heads = [keras.layers.Dense(n)(flat) for n in (1, 4, 16)]
    cells = keras.layers.Reshape((15, 4))(keras.layers.Dense(60)(flat))
    for outputs, words in ((heads, "four for a multi-face model"), (heads + [cells], "cell boxes (N, C, 4)")):
        model = keras.Model(inputs, outputs)
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
            Detector(model)
        model.save(tmp_path / "odd.keras")
        with pytest.raises(ModelFileError, match="odd.keras"):
            load_detector_model(tmp_path / "odd.keras")


# ----------------------------------------------------------------------------- the classic finder


def _two_astronauts() -> np.ndarray:
    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[0:320, 0:320] = cv2.resize(photo, (320, 320), interpolation=cv2.INTER_AREA)
    frame[200:480, 360:640] = cv2.resize(photo, (280, 280), interpolation=cv2.INTER_AREA)
    return frame


def test_classic_finder_finds_every_face_and_detect_stays_the_biggest():
    finder = ClassicFaceFinder()
    frame = _two_astronauts()
    faces = finder.detect_all(frame)
    assert len(faces) == 2 and all(face.score == 1.0 for face in faces)
    # the astronaut's face is around (170-250, 60-200) of her 512 px photo: one box on each copy
    centres = sorted(((x1 + x2) / 2, (y1 + y2) / 2) for x1, y1, x2, y2 in (face.box for face in faces))
    assert 90 < centres[0][0] < 160 and 50 < centres[0][1] < 110
    assert 420 < centres[1][0] < 520 and 210 < centres[1][1] < 300
    assert finder.detect(frame) == faces[0]
    assert finder.detect_all(np.full((480, 640, 3), 90, np.uint8)) == []


def test_classic_windows_mostly_inside_a_bigger_face_are_that_face():
    big = Detection(1.0, (100.0, 100.0, 200.0, 200.0))
    inside = Detection(1.0, (120.0, 110.0, 190.0, 180.0))
    apart = Detection(1.0, (300.0, 100.0, 380.0, 180.0))
    edge = Detection(1.0, (180.0, 100.0, 260.0, 180.0))  # a quarter of it inside: another face
    assert merge_same_faces([big, inside, apart, edge]) == [big, apart, edge]
