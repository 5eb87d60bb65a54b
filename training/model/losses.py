"""The detector's losses, in ``keras.ops`` so they run on any Keras backend.

``localization_loss`` is the tutorial's: squared error of the top-left corner plus squared error of
the width and height, summed (not averaged) over the batch. ``mask`` (1 for a face, 0 for none)
lets training skip boxes of no-face pictures, which the tutorial pulls toward ``[0, 0, 0, 0]``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

CLASS_LOSS_WEIGHT = 0.5


def localization_loss(y_true, y_pred, mask=None):
    """Sum over the batch of ``(dx1^2 + dy1^2) + (dw^2 + dh^2)`` for boxes ``[x1, y1, x2, y2]``."""
    per_sample = _localization_per_box(ops.cast(y_true, "float32"), ops.cast(y_pred, "float32"))
    if mask is not None:
        per_sample = per_sample * ops.reshape(ops.cast(mask, "float32"), (-1,))
    return ops.sum(per_sample)


def classification_loss(y_true, y_pred):
    """Binary cross-entropy of the face score, averaged over the batch."""
    y_true = ops.reshape(ops.cast(y_true, "float32"), (-1, 1))
    y_pred = ops.reshape(ops.cast(y_pred, "float32"), (-1, 1))
    return ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))


def total_loss(class_true, class_pred, box_true, box_pred, face_only: bool = True):
    """Return ``(total, class_loss, regress_loss)`` with total = regress + 0.5 * class."""
    class_l = classification_loss(class_true, class_pred)
    mask = class_true if face_only else None
    regress_l = localization_loss(box_true, box_pred, mask=mask)
    return regress_l + CLASS_LOSS_WEIGHT * class_l, class_l, regress_l


def _bce_from_logits(target, logits):
    """Binary cross-entropy of a sigmoid output, computed from its logits (stable for any logit)."""
    return ops.maximum(logits, 0.0) - logits * target + ops.log1p(ops.exp(-ops.abs(logits)))


def grid_losses(class_true, box_true, score_logits, cell_boxes, grid: int):
    """The seed's losses on the per-cell head: ``(class_loss, regress_loss, responsible_box)``.

    The cell holding a face's centre is responsible for it: ``localization_loss`` fits that cell's
    box (face pictures only), and binary cross-entropy pushes its score to 1. Every other cell is a
    "no face" for the same binary cross-entropy, except the responsible cell's 8 neighbours, which
    may see much of the face and are left alone. Negatives count twice: their mean (all of them
    learn) and their hardest one (the cell whose score decides a false alarm, since the model's
    face score is its best cell's). Averaged over the batch.

    Args:
        class_true: (N, 1) 1 for a face.  box_true: (N, 4) the face's ``[x1, y1, x2, y2]`` in [0, 1].
        score_logits: (N, G, G, 1) raw score map.  cell_boxes: (N, G*G, 4) from ``grid_cell_boxes``.
    """
    face = ops.reshape(ops.cast(class_true, "float32"), (-1,))
    box_true = ops.cast(box_true, "float32")
    logits = ops.reshape(ops.cast(score_logits, "float32"), (-1, grid * grid))
    centre_x = (box_true[:, 0] + box_true[:, 2]) / 2
    centre_y = (box_true[:, 1] + box_true[:, 3]) / 2
    column = ops.clip(ops.floor(centre_x * grid), 0, grid - 1)
    row = ops.clip(ops.floor(centre_y * grid), 0, grid - 1)
    responsible = ops.cast(row * grid + column, "int32")

    cells = np.arange(grid * grid)
    cell_column = ops.convert_to_tensor((cells % grid).astype("float32"))[None, :]
    cell_row = ops.convert_to_tensor((cells // grid).astype("float32"))[None, :]
    near = ops.cast(
        (ops.abs(cell_column - column[:, None]) <= 1) & (ops.abs(cell_row - row[:, None]) <= 1), "float32"
    ) * face[:, None]
    positive = ops.one_hot(responsible, grid * grid) * face[:, None]
    negative = 1.0 - near

    positive_loss = ops.sum(positive * _bce_from_logits(1.0, logits), axis=-1)
    negative_loss = _bce_from_logits(0.0, logits) * negative
    mean_negative = ops.sum(negative_loss, axis=-1) / ops.maximum(ops.sum(negative, axis=-1), 1.0)
    hardest_negative = ops.max(negative_loss, axis=-1)
    class_l = ops.mean(positive_loss + mean_negative + hardest_negative)

    cell_boxes = ops.cast(cell_boxes, "float32")
    picked = ops.take_along_axis(cell_boxes, ops.reshape(responsible, (-1, 1, 1)), axis=1)
    responsible_box = ops.reshape(picked, (-1, 4))
    # The responsible cell and its neighbours all box the face (the model answers with whichever
    # scores best): the tutorial's localization loss of each, averaged over the block, summed over faces.
    per_cell = _localization_per_box(box_true[:, None, :], cell_boxes)  # (N, G*G)
    regress_l = ops.sum(ops.sum(per_cell * near, axis=-1) / ops.maximum(ops.sum(near, axis=-1), 1.0))
    return class_l, regress_l, responsible_box


def _localization_per_box(y_true, y_pred):
    """``localization_loss`` before the sum: one value per box, boxes on the last axis."""
    delta_coord = ops.sum(ops.square(y_true[..., :2] - y_pred[..., :2]), axis=-1)
    size_true = y_true[..., 2:] - y_true[..., :2]
    size_pred = y_pred[..., 2:] - y_pred[..., :2]
    return delta_coord + ops.sum(ops.square(size_true - size_pred), axis=-1)


#: Cells (in cell widths, squared) a face's own centre cell is preferred by: see multi_face_losses.
_OWN_CELL_PRIORITY = 100.0


def multi_face_losses(face_boxes, face_mask, score_logits, cell_boxes, grid: int, reach: float = 0.0,
                      size_reference: float | None = None):
    """:func:`grid_losses` for every face of a picture: ``(class_loss, regress_loss)``.

    Each face's centre cell is responsible for it (binary cross-entropy to 1, summed over the
    picture's faces), and the 3x3 block around that cell fits the face's box with the tutorial's
    localization loss, averaged over the block and summed over faces and pictures. A cell in two
    faces' blocks fits one of them: the face whose centre cell it is, else the face whose centre is
    nearest to the cell's centre (so a cell never learns the mean of two boxes). Cells outside every
    face's block are negatives (their mean and their hardest one, as in grid_losses). The class loss is
    averaged over the batch. With one face per picture this is exactly ``grid_losses``.

    ``reach`` widens a large face's block to ``reach`` times its width (and height) in cells on each side
    of the centre cell (never less than one cell): on a fine map (BlazeFace's 48x48) a selfie-sized face
    covers twenty cells, and a pretrained detector rightly finds it from all of its middle ones; calling
    those "no face" would teach it to forget faces.

    ``size_reference`` measures each face's localization loss in its own size: the squared errors are
    multiplied by ``(size_reference / face size)**2`` (the face's larger side, in input fractions, at least
    a twentieth). The tutorial's loss is in fractions of the frame, so a 50 px face's box error of a
    quarter of its width costs 40 times less than a selfie's: fine-tuned that way, a pretrained detector's
    boxes on small faces drifted (IoU 0.6 -> 0.4 on real photographs) while it still found them. None:
    the tutorial's loss as it is.

    Args:
        face_boxes: (N, K, 4) every face's ``[x1, y1, x2, y2]`` in [0, 1], zero-padded.
        face_mask: (N, K) 1 for a face, 0 for padding.
        score_logits: (N, G, G, 1) raw score map.  cell_boxes: (N, G*G, 4) from ``grid_cell_boxes``.
    """
    cells_count = grid * grid
    mask = ops.cast(face_mask, "float32")  # (N, K)
    faces = ops.cast(face_boxes, "float32")  # (N, K, 4)
    logits = ops.reshape(ops.cast(score_logits, "float32"), (-1, cells_count))
    centre_x = (faces[..., 0] + faces[..., 2]) / 2
    centre_y = (faces[..., 1] + faces[..., 3]) / 2
    column = ops.clip(ops.floor(centre_x * grid), 0, grid - 1)  # (N, K)
    row = ops.clip(ops.floor(centre_y * grid), 0, grid - 1)
    responsible = ops.cast(row * grid + column, "int32")

    cells = np.arange(cells_count)
    cell_column = ops.convert_to_tensor((cells % grid).astype("float32"))[None, None, :]  # (1, 1, C)
    cell_row = ops.convert_to_tensor((cells // grid).astype("float32"))[None, None, :]
    reach_x = ops.maximum(1.0, ops.floor(reach * (faces[..., 2] - faces[..., 0]) * grid))[..., None]
    reach_y = ops.maximum(1.0, ops.floor(reach * (faces[..., 3] - faces[..., 1]) * grid))[..., None]
    near = ops.cast(
        (ops.abs(cell_column - column[..., None]) <= reach_x) & (ops.abs(cell_row - row[..., None]) <= reach_y),
        "float32",
    ) * mask[..., None]  # (N, K, C): each face's block
    own = ops.one_hot(responsible, cells_count) * mask[..., None]  # (N, K, C): each face's centre cell
    negative = 1.0 - ops.max(near, axis=1)  # (N, C)

    positive_loss = ops.sum(own * _bce_from_logits(1.0, logits[:, None, :]), axis=(1, 2))
    negative_loss = _bce_from_logits(0.0, logits) * negative
    mean_negative = ops.sum(negative_loss, axis=-1) / ops.maximum(ops.sum(negative, axis=-1), 1.0)
    hardest_negative = ops.max(negative_loss, axis=-1)
    class_l = ops.mean(positive_loss + mean_negative + hardest_negative)

    # Which face each cell fits: squared distance (in cells) from the cell's centre to the face's,
    # its own centre cell first; cells outside a face's block never fit it.
    distance = (ops.square(cell_column + 0.5 - centre_x[..., None] * grid)
                + ops.square(cell_row + 0.5 - centre_y[..., None] * grid)
                - _OWN_CELL_PRIORITY * own)
    distance = ops.where(near > 0, distance, ops.full_like(distance, 1e9))
    owner = ops.one_hot(ops.argmin(distance, axis=1), int(faces.shape[1]))  # (N, C, K)
    fits = ops.transpose(owner, (0, 2, 1)) * near  # (N, K, C)

    per_cell = _localization_per_box(faces[:, :, None, :], ops.cast(cell_boxes, "float32")[:, None, :, :])
    if size_reference is not None:
        size = ops.maximum(ops.maximum(faces[..., 2] - faces[..., 0], faces[..., 3] - faces[..., 1]), 0.05)
        per_cell = per_cell * ops.square(size_reference / size)[..., None]
    regress_l = ops.sum(ops.sum(per_cell * fits, axis=-1) / ops.maximum(ops.sum(fits, axis=-1), 1.0))
    return class_l, regress_l
