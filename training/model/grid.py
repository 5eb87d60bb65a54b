"""The grid family: grid (the best face) and multiface (every face), a small CNN with a score and a box per cell.

Its stem is shaped like MTCNN's RNet and starts from RNet's face-trained weights (the ``mtcnn`` package
ships them); two stride-2 stages and a tiny FPN give a 16x16 map at 128 px, and the per-cell head is
decoded in the model (:func:`training.model.heads.cell_outputs`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from training.model.backbones import FACE_STEM_OFFSET, FACE_STEM_SCALE, BackboneSpec, WeightsUnavailableError
from training.model.heads import BOX_MAP, SCORE_MAP, cell_outputs

FACE_STEM = "face_stem"  # prefix of the stem's layer names
# MTCNN's RNet convolutions: (filters, kernel, max-pool after); stride 4, receptive field ~24 px.
_FACE_STEM_LAYERS = ((28, 3, True), (48, 3, True), (64, 2, False))
FACE_WEIGHTS_FILE = "rnet.lz4"  # in the mtcnn package's assets
_GRID_WIDTHS = (64, 128)  # filters of the stride-2 stages after the face stem: strides 8, 16
GRID_STRIDE = 8  # input pixels per cell of the score/box maps
_GROUPS = 8  # GroupNormalization's groups (fewer for narrow layers)
CENTRE_REACH = 1.0  # cells: how far outside itself a cell may place a face's centre


def _conv_gn_relu(x, filters: int, name: str, strides: int = 1, kernel: int = 3):
    """Conv, GroupNorm, ReLU. GroupNorm for the reason given in training.model.tiny.tiny_features (on real
    faces BatchNorm's validation F1 also lagged far behind)."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.GroupNormalization(groups=min(_GROUPS, filters // 4), name=f"{name}_gn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def face_stem(pixels: keras.KerasTensor) -> keras.KerasTensor:
    """The stride-4 stem of the grid model: MTCNN's RNet convolutions (PReLU, 3x3/2 max-pools).

    Shaped like RNet so that it can start from RNet's face-trained weights (``weights="face"``),
    which the pip ``mtcnn`` package ships: trained on tens of thousands of faces, they tell a face
    of a person the user never photographed far better than features learnt from a few hundred
    pictures (docs/models.md). RNet saw 24 px faces; at the default 128 px input a 60-180 px face in a
    640x480 frame is 12-36 px. Reads the raw 0..255 RGB pixels and scales them as MTCNN does, (x - 127.5) / 128.
    """
    x = layers.Rescaling(FACE_STEM_SCALE, FACE_STEM_OFFSET, name=f"{FACE_STEM}_scale")(pixels)
    for i, (filters, kernel, pool) in enumerate(_FACE_STEM_LAYERS, start=1):
        x = layers.Conv2D(filters, kernel, padding="same", name=f"{FACE_STEM}_conv{i}")(x)
        x = layers.PReLU(shared_axes=[1, 2], name=f"{FACE_STEM}_prelu{i}")(x)
        if pool:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{FACE_STEM}_pool{i}")(x)
    return x


def load_face_stem_weights(model: keras.Model) -> None:
    """Loads RNet's face-trained weights (shipped in the ``mtcnn`` package) into the grid model's stem.

    Read straight from the package's assets: mtcnn's own loader first looks for a file of that name
    in the current folder, and the file is a pickle.

    Raises:
        WeightsUnavailableError: the package or its weights file is missing or unreadable.
    """
    try:
        import importlib.resources

        import joblib

        weights = joblib.load(str(importlib.resources.files("mtcnn.assets.weights") / FACE_WEIGHTS_FILE))
        for i in range(len(_FACE_STEM_LAYERS)):  # RNet's list: kernel, bias, PReLU alpha per layer
            model.get_layer(f"{FACE_STEM}_conv{i + 1}").set_weights(weights[3 * i: 3 * i + 2])
            model.get_layer(f"{FACE_STEM}_prelu{i + 1}").set_weights(weights[3 * i + 2: 3 * i + 3])
    except Exception as exc:  # ImportError, a missing or damaged file, shapes of another mtcnn release
        raise WeightsUnavailableError(
            f"could not load the face-trained stem weights from the mtcnn package ({exc}); "
            "install it (pip install 'mtcnn>=1,<2') or train from scratch with weights=None"
        ) from exc


def grid_features(pixels: keras.KerasTensor) -> keras.KerasTensor:
    """The face stem (stride 4), two stride-2 stages (8, 16), then the stride-16 features upsampled onto
    the stride-8 ones (a tiny FPN): 128x128 -> 16x16x64. Stride 16 sees a whole face (its receptive
    field is ~100 px); stride 8 keeps where its edges are."""
    x = face_stem(pixels)
    skips = []
    for i, filters in enumerate(_GRID_WIDTHS, start=3):
        x = _conv_gn_relu(x, filters, f"grid_block{i}_down", strides=2)
        x = _conv_gn_relu(x, filters, f"grid_block{i}_a")
        x = _conv_gn_relu(x, filters, f"grid_block{i}_b")
        skips.append(x)
    top = _conv_gn_relu(skips[1], _GRID_WIDTHS[0], "grid_top", kernel=1)
    top = layers.UpSampling2D(2, interpolation="bilinear", name="grid_up")(top)
    x = layers.Add(name="grid_merge")([skips[0], top])
    return _conv_gn_relu(x, _GRID_WIDTHS[0], "grid_neck")


def grid_cell_boxes(box_map, grid: int):
    """Every cell's box ``[x1, y1, x2, y2]`` in [0, 1] of the input, from the raw (N, G, G, 4) box map.

    A cell predicts its face's centre within itself or up to one cell beyond (so the neighbours of
    a face's cell, which see much of the face too, can box it as well, as in YOLOv5) and the face's
    width and height as fractions of the input. Returns (N, G*G, 4).
    """
    raw = ops.reshape(ops.cast(box_map, "float32"), (-1, grid * grid, 4))
    columns, rows = np.meshgrid(np.arange(grid, dtype="float32"), np.arange(grid, dtype="float32"))
    cells = np.stack([columns.ravel(), rows.ravel()], axis=-1)[np.newaxis]  # (1, G*G, 2): x, y of each cell
    offset = ops.sigmoid(raw[..., :2]) * (1 + 2 * CENTRE_REACH) - CENTRE_REACH  # 0.5 (the cell's middle) at 0
    centre = (offset + cells) / grid
    half = ops.sigmoid(raw[..., 2:]) / 2
    return ops.concatenate([centre - half, centre + half], axis=-1)


def grid_heads(features: keras.KerasTensor, units: int, every_cell: bool = False) -> list[keras.KerasTensor]:
    """The per-cell heads, decoded in the model: the face score is the best cell's, the box is its box.

    ``every_cell`` adds the multi-face outputs: every cell's sigmoid score (N, G*G) and its box
    (N, G*G, 4), clipped to the input as the best box is.
    """
    grid = int(features.shape[1])
    x = _conv_gn_relu(features, units, "grid_head")
    score_map = layers.Conv2D(1, 1, name=SCORE_MAP, dtype="float32",
                              bias_initializer=keras.initializers.Constant(-4.0))(x)  # start near "no face"
    box_map = layers.Conv2D(4, 1, name=BOX_MAP, dtype="float32")(x)
    return cell_outputs(score_map, grid_cell_boxes(box_map, grid), grid, every_cell)


def grid_outputs(inputs: keras.KerasTensor, spec: BackboneSpec, size: int, weights: str | None) -> list[keras.KerasTensor]:
    """The grid or multiface network's outputs on 0..255 RGB ``inputs`` (every cell's too when ``spec.multi_face``)."""
    return grid_heads(grid_features(inputs), spec.head_units, every_cell=spec.multi_face)


def load_grid_weights(model: keras.Model, weights: str | None) -> None:
    """The grid family's pretrained start: with ``weights="face"``, MTCNN's face-trained stem."""
    if weights == "face":
        load_face_stem_weights(model)
