"""The outputs every FaceTracker model answers with, shared by the builder families.

A single-box head (tiny, mobilenetv2, vgg16: the tutorial's two dense heads) answers ``[class (N, 1),
box (N, 4)]``. A per-cell head (grid, multiface, blazeface) has a raw score map and box map (layers
:data:`SCORE_MAP`, :data:`BOX_MAP`, which training fits) and decodes them in the model into the same two
outputs, the best cell's score and its block's box; a multi-face one adds every cell's score and box.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from training.model.backbones import BackboneSpec

SCORE_MAP = "score_map"  # layer names the trainer reads the raw maps from
BOX_MAP = "box_map"
CELL_SCORES = "scores"  # the multi-face model's extra outputs: every cell's score and box
CELL_BOXES = "boxes"


def single_box_heads(features: keras.KerasTensor, spec: BackboneSpec) -> list[keras.KerasTensor]:
    """The tutorial's heads on a feature map: max-pooled -> Dense -> face score, and pooled as ``spec`` says
    (``box_pooling`` "max" or "flatten") -> Dense -> sigmoid box ``[x1, y1, x2, y2]``."""
    c = layers.GlobalMaxPooling2D(name="class_pool")(features)
    c = layers.Dense(spec.head_units, activation="relu", name="class_hidden")(c)
    class_score = layers.Dense(1, activation="sigmoid", dtype="float32", name="class")(c)

    if spec.box_pooling == "flatten":
        b = layers.Flatten(name="box_pool")(features)
    else:
        b = layers.GlobalMaxPooling2D(name="box_pool")(features)
    b = layers.Dense(spec.head_units, activation="relu", name="box_hidden")(b)
    box = layers.Dense(4, activation="sigmoid", dtype="float32", name="box")(b)
    return [class_score, box]


def cell_outputs(score_map, cell_boxes, grid: int, every_cell: bool) -> list[keras.KerasTensor]:
    """A per-cell head's outputs: ``[class (N, 1), box (N, 4)]`` (the best cell's score and its block's
    box), and with ``every_cell`` ``scores (N, G*G)`` and ``boxes (N, G*G, 4)`` too; boxes clipped to the input."""
    logits = ops.reshape(score_map, (-1, grid * grid))
    best_score = ops.sigmoid(ops.max(logits, axis=-1, keepdims=True))
    best_box = ops.clip(best_block_box(logits, cell_boxes, grid), 0.0, 1.0)
    # float32 outputs, as the single-box heads: under mixed precision the losses stay exact.
    class_score = layers.Identity(name="class", dtype="float32")(best_score)
    box = layers.Identity(name="box", dtype="float32")(best_box)
    if not every_cell:
        return [class_score, box]
    scores = layers.Identity(name=CELL_SCORES, dtype="float32")(ops.sigmoid(logits))
    boxes = layers.Identity(name=CELL_BOXES, dtype="float32")(ops.clip(cell_boxes, 0.0, 1.0))
    return [class_score, box, scores, boxes]


def best_block_box(logits, cell_boxes, grid: int):
    """The box of the best-scoring cell, averaged with its 8 neighbours' boxes by their scores.

    The neighbours of a face's cell are trained to box the same face (see ``grid_losses``): averaging
    the block evens out each cell's error, and weighting by score lets the best cell dominate.
    Returns (N, 4)."""
    cells = np.arange(grid * grid)
    cell_column = (cells % grid).astype("float32")[np.newaxis]
    cell_row = (cells // grid).astype("float32")[np.newaxis]
    best = ops.argmax(logits, axis=-1)
    best_column = ops.cast(best % grid, "float32")[:, None]
    best_row = ops.cast(best // grid, "float32")[:, None]
    near_column = ops.abs(ops.subtract(best_column, cell_column)) <= 1
    near_row = ops.abs(ops.subtract(best_row, cell_row)) <= 1
    block = ops.cast(ops.logical_and(near_column, near_row), "float32")
    weights = ops.sigmoid(logits) * block
    weights = weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-12)
    return ops.sum(weights[..., None] * cell_boxes, axis=1)
