"""The detector's losses, in ``keras.ops`` so they run on any Keras backend.

``localization_loss`` is the tutorial's: squared error of the top-left corner plus squared error of
the width and height, summed (not averaged) over the batch. ``mask`` (1 for a face, 0 for none)
lets training skip boxes of no-face pictures, which the tutorial pulls toward ``[0, 0, 0, 0]``.
"""

from __future__ import annotations

import keras
from keras import ops

CLASS_LOSS_WEIGHT = 0.5


def localization_loss(y_true, y_pred, mask=None):
    """Sum over the batch of ``(dx1^2 + dy1^2) + (dw^2 + dh^2)`` for boxes ``[x1, y1, x2, y2]``."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    delta_coord = ops.sum(ops.square(y_true[:, :2] - y_pred[:, :2]), axis=-1)
    w_true = y_true[:, 2] - y_true[:, 0]
    h_true = y_true[:, 3] - y_true[:, 1]
    w_pred = y_pred[:, 2] - y_pred[:, 0]
    h_pred = y_pred[:, 3] - y_pred[:, 1]
    delta_size = ops.square(w_true - w_pred) + ops.square(h_true - h_pred)
    per_sample = delta_coord + delta_size
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
