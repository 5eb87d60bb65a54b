"""The tutorial's losses, checked against hand computations in NumPy."""

import numpy as np
import pytest
from keras import ops

from training.model.losses import CLASS_LOSS_WEIGHT, classification_loss, localization_loss, total_loss

# Boxes [x1, y1, x2, y2]: a typical face, boxes at the frame's corners, a whole-frame box and a
# no-face row (zeros), so corner, size and empty cases all count.
BOX_TRUE = np.array(
    [[0.20, 0.30, 0.60, 0.80], [0.00, 0.00, 0.25, 0.25], [0.75, 0.70, 1.00, 1.00], [0.0, 0.0, 1.0, 1.0],
     [0.0, 0.0, 0.0, 0.0]],
    np.float32,
)
BOX_PRED = np.array(
    [[0.25, 0.20, 0.55, 0.90], [0.10, 0.05, 0.30, 0.20], [0.50, 0.50, 0.90, 0.95], [0.5, 0.5, 0.5, 0.5],
     [0.40, 0.30, 0.70, 0.60]],
    np.float32,
)
FACE = np.array([[1], [1], [1], [1], [0]], np.float32)


def numpy_localization(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The reference's formula, written out term by term."""
    total = 0.0
    for i, ((tx1, ty1, tx2, ty2), (px1, py1, px2, py2)) in enumerate(zip(y_true, y_pred, strict=True)):
        corner = (tx1 - px1) ** 2 + (ty1 - py1) ** 2
        size = ((tx2 - tx1) - (px2 - px1)) ** 2 + ((ty2 - ty1) - (py2 - py1)) ** 2
        weight = 1.0 if mask is None else float(mask[i][0])
        total += weight * (corner + size)
    return total


def numpy_bce(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true = y_true.reshape(-1).astype(np.float64)
    y_pred = y_pred.reshape(-1).astype(np.float64)
    return float(np.mean(-(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))))


def test_localization_loss_matches_hand_computation():
    expected = numpy_localization(BOX_TRUE, BOX_PRED)
    assert float(localization_loss(BOX_TRUE, BOX_PRED)) == pytest.approx(expected, rel=1e-5)


def test_localization_loss_first_row_by_hand():
    # (0.2-0.25)^2 + (0.3-0.2)^2 + (0.4-0.3)^2 + (0.5-0.7)^2 = 0.0025 + 0.01 + 0.01 + 0.04
    assert float(localization_loss(BOX_TRUE[:1], BOX_PRED[:1])) == pytest.approx(0.0625, rel=1e-5)


def test_localization_loss_is_summed_not_averaged():
    one = float(localization_loss(BOX_TRUE[:1], BOX_PRED[:1]))
    doubled = float(localization_loss(np.repeat(BOX_TRUE[:1], 2, 0), np.repeat(BOX_PRED[:1], 2, 0)))
    assert doubled == pytest.approx(2 * one, rel=1e-6)


def test_localization_loss_uses_corner_and_size_not_centre():
    # Same centre, different top-left corner and size: a centre-based loss would give 0.
    truth = np.array([[0.4, 0.4, 0.6, 0.6]], np.float32)
    grown = np.array([[0.3, 0.3, 0.7, 0.7]], np.float32)
    assert float(localization_loss(truth, grown)) == pytest.approx(0.1**2 * 2 + 0.2**2 * 2, rel=1e-5)


def test_localization_loss_mask_drops_no_face_rows():
    expected = numpy_localization(BOX_TRUE, BOX_PRED, FACE)
    assert float(localization_loss(BOX_TRUE, BOX_PRED, mask=FACE)) == pytest.approx(expected, rel=1e-5)
    assert expected < numpy_localization(BOX_TRUE, BOX_PRED)  # the no-face row really counted before


def test_localization_loss_zero_for_perfect_boxes():
    assert float(localization_loss(BOX_TRUE, BOX_TRUE)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(
    "y_true,y_pred",
    [
        ([[1], [0], [1], [0]], [[0.9], [0.2], [0.4], [0.6]]),
        ([[1], [1]], [[0.5], [0.99]]),
        ([[0]], [[0.01]]),
    ],
)
def test_classification_loss_is_mean_bce(y_true, y_pred):
    y_true = np.array(y_true, np.float32)
    y_pred = np.array(y_pred, np.float32)
    assert float(classification_loss(y_true, y_pred)) == pytest.approx(numpy_bce(y_true, y_pred), rel=1e-4)


def test_classification_loss_accepts_flat_vectors():
    flat = float(classification_loss(np.array([1, 0], np.float32), np.array([0.8, 0.3], np.float32)))
    assert flat == pytest.approx(numpy_bce(np.array([1, 0]), np.array([0.8, 0.3])), rel=1e-4)


@pytest.mark.parametrize("face_only", [True, False])
def test_total_is_localization_plus_half_classification(face_only):
    class_pred = np.array([[0.8], [0.6], [0.3], [0.9], [0.2]], np.float32)
    total, class_l, regress_l = total_loss(FACE, class_pred, BOX_TRUE, BOX_PRED, face_only=face_only)
    expected_regress = numpy_localization(BOX_TRUE, BOX_PRED, FACE if face_only else None)
    expected_class = numpy_bce(FACE, class_pred)
    assert CLASS_LOSS_WEIGHT == 0.5
    assert float(regress_l) == pytest.approx(expected_regress, rel=1e-5)
    assert float(class_l) == pytest.approx(expected_class, rel=1e-4)
    assert float(total) == pytest.approx(expected_regress + 0.5 * expected_class, rel=1e-4)


def test_total_loss_has_gradients_for_both_heads():
    import tensorflow as tf

    class_pred = tf.Variable(np.full((5, 1), 0.5, np.float32))
    box_pred = tf.Variable(BOX_PRED)
    with tf.GradientTape() as tape:
        total, _, _ = total_loss(FACE, class_pred, BOX_TRUE, box_pred)
    class_grad, box_grad = tape.gradient(total, [class_pred, box_pred])
    assert np.all(np.isfinite(ops.convert_to_numpy(class_grad)))
    box_grad = ops.convert_to_numpy(box_grad)
    assert np.abs(box_grad[:4]).sum() > 0
    assert np.all(box_grad[4] == 0)  # the no-face row does not pull the box head (face_only default)


# ------------------------------------------------------------------------------- the grid head's losses

GRID = 4


def _grid_case(face_logit: float, other_logit: float, box_map_value: float = 0.0):
    """One face picture (face centred in cell row 1, column 2 of a 4x4 grid) and one picture without a face."""
    from training.model.build import grid_cell_boxes

    class_true = np.array([[1.0], [0.0]], np.float32)
    box_true = np.array([[0.55, 0.30, 0.70, 0.45], [0, 0, 0, 0]], np.float32)  # centre (0.625, 0.375): cell 1*4+2
    logits = np.full((2, GRID, GRID, 1), other_logit, np.float32)
    logits[0, 1, 2, 0] = face_logit
    box_map = np.full((2, GRID, GRID, 4), box_map_value, np.float32)
    return class_true, box_true, logits, grid_cell_boxes(box_map, GRID)


def test_grid_box_loss_is_the_tutorial_localization_loss_of_the_face_cell_and_its_neighbours():
    from training.model.losses import grid_losses

    class_true, box_true, logits, cells = _grid_case(5.0, -5.0)
    _, regress_l, picked = grid_losses(class_true, box_true, logits, cells, GRID)
    picked, cells = ops.convert_to_numpy(picked), ops.convert_to_numpy(cells)
    # A raw map of zeros puts every cell's box at its own centre with half the input's width and height.
    np.testing.assert_allclose(picked[0], [0.625 - 0.25, 0.375 - 0.25, 0.625 + 0.25, 0.375 + 0.25], atol=1e-6)
    block = [row * GRID + column for row in (0, 1, 2) for column in (1, 2, 3)]  # cell (1, 2) and its 8 neighbours
    per_cell = [float(localization_loss(box_true[:1], cells[0, [i]])) for i in block]
    assert float(regress_l) == pytest.approx(np.mean(per_cell), rel=1e-5)  # the no-face row adds nothing
    corner = np.array([[0.0, 0.0, 0.1, 0.1], [0, 0, 0, 0]], np.float32)  # a face in cell (0, 0): 4 cells in its block
    _, regress_corner, _ = grid_losses(class_true, corner, logits, ops.convert_to_tensor(cells), GRID)
    expected = np.mean([float(localization_loss(corner[:1], cells[0, [i]])) for i in (0, 1, GRID, GRID + 1)])
    assert float(regress_corner) == pytest.approx(expected, rel=1e-5)


def test_grid_class_loss_rewards_the_face_cell_and_ignores_its_neighbours():
    from training.model.losses import grid_losses

    good = grid_losses(*_grid_case(6.0, -6.0)[:3], _grid_case(6.0, -6.0)[3], GRID)[0]
    wrong = grid_losses(*_grid_case(-6.0, -6.0)[:3], _grid_case(-6.0, -6.0)[3], GRID)[0]
    assert float(good) < 0.05 < float(wrong)  # the face's cell must score high
    class_true, box_true, logits, cells = _grid_case(6.0, -6.0)
    logits[0, 1, 3, 0] = 6.0  # a neighbour of the face's cell also says "face": left alone
    assert float(grid_losses(class_true, box_true, logits, cells, GRID)[0]) == pytest.approx(float(good), rel=1e-5)
    logits[0, 3, 0, 0] = 6.0  # a far cell says "face": a false alarm, punished
    assert float(grid_losses(class_true, box_true, logits, cells, GRID)[0]) > float(good) + 1.0
    _, _, logits, _ = _grid_case(6.0, -6.0)
    logits[1, 0, 0, 0] = 6.0  # any cell of a picture without a face
    assert float(grid_losses(class_true, box_true, logits, cells, GRID)[0]) > float(good) + 1.0
