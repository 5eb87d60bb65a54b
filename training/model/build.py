"""The two-head face detector: one backbone, a face-score head and a box head.

Written like ``keras.applications`` builders: one function, every argument defaulted, a plain
functional model that ``keras.models.load_model`` reads back with no custom objects. Input pixels
are RGB in 0..255 (see :mod:`training.core.preprocess`); the scaling to the backbone's range is the
model's first layer, so it travels inside the ``.keras`` file.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from training.model.backbones import DEFAULT_BACKBONE, MULTI_FACE_BACKBONES
from training.model.backbones import (
    describe_start as describe_start,  # the words live Keras-free, for the Train tab
)


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights were asked for but could not be downloaded or read (offline, say)."""


FACE_STEM = "face_stem"  # prefix of the stem's layer names
FACE_STEM_SCALE, FACE_STEM_OFFSET = 1 / 128.0, -127.5 / 128.0  # MTCNN's pixel scaling
# MTCNN's RNet convolutions: (filters, kernel, max-pool after); stride 4, receptive field ~24 px.
_FACE_STEM_LAYERS = ((28, 3, True), (48, 3, True), (64, 2, False))


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone needs: its default input size, scaling and head shape."""

    default_input_size: int
    scale: float
    offset: float
    head_units: int
    # "max" (the tutorial's GlobalMaxPooling2D), "flatten" (keeps where things are) or "grid" (a face
    # score and a box per cell of a feature map, decoded in the model: see _grid_heads)
    box_pooling: str
    # the pretrained start it can have: "imagenet" (downloaded once by keras.applications), "face"
    # (face-trained weights shipped with FaceTracker or the mtcnn package) or None
    pretrained: str | None
    # how a per-cell head's box values become boxes: "grid" (grid_cell_boxes: sigmoid offsets within reach
    # of the cell, sizes as fractions) or "anchor" (BlazeFace's: centre = anchor + value / input size)
    box_decoding: str = "grid"
    # how far around a face's centre cell (in cells, as a fraction of the face's width/height) cells are
    # trained to box it and are not counted as "no face" (at least the 3x3 block): see multi_face_losses
    face_reach: float = 0.0
    # the face size (fraction of the input) at which the tutorial's localization loss is kept as it is; other
    # faces' box errors are weighed in their own size (multi_face_losses' size_reference). None: as it is
    box_loss_size: float | None = None
    # input pixels per cell of a per-cell head's maps (its cells: (input_size / cell_stride) ** 2)
    cell_stride: int = 8
    # whether Detector compiles its forward pass with XLA: faster for plain convolutions (grid: 4.9 -> 4.1 ms),
    # six times slower for depthwise ones (blazeface: 11 -> 59 ms on a 2-core CPU)
    xla: bool = True

    @property
    def has_imagenet_weights(self) -> bool:
        return self.pretrained == "imagenet"


BACKBONES: dict[str, BackboneSpec] = {
    # The default: MediaPipe's full-range BlazeFace (training.model.blazeface), pretrained on real faces and
    # fine-tuned on the user's pictures with the seed's losses per face. A score and a box for each cell
    # of a 48x48 map (4 input pixels apart) at 192 px, as multiface has; it already finds real faces
    # from far away to selfie size before any training.
    "blazeface": BackboneSpec(192, 1 / 127.5, -1.0, 0, "grid", "face", box_decoding="anchor", face_reach=0.25,
                              cell_stride=4, xla=False, box_loss_size=0.25),
    # The grid network below answering for every face: besides grid's best face it outputs
    # every cell's score and box (``scores``, ``boxes``), which detect_all thresholds and thins out with
    # non-maximum suppression (training.core.boxes.faces_from_cells). Trained on every labelled face; on
    # the real-face benchmarks it finds one face as well as grid and every face of a crowded frame.
    "multiface": BackboneSpec(128, FACE_STEM_SCALE, FACE_STEM_OFFSET, 64, "grid", "face"),
    # A small CNN whose head gives every cell of a 16x16 map (8 input pixels apart) its own face
    # score and box, so one set of weights finds a face anywhere in the frame (translation-
    # equivariant, as in CenterNet or BlazeFace) instead of learning each position; it answers with
    # its best face. 128 px: a 60 px face in a 640x480 frame is still 12 px wide. Its stem starts
    # from MTCNN's face-trained weights (see _face_stem).
    "grid": BackboneSpec(128, FACE_STEM_SCALE, FACE_STEM_OFFSET, 64, "grid", "face"),
    # A small CNN that learns from scratch in CPU minutes: the default for laptops and offline users.
    # 80 px: faces fill much of a webcam frame, and a small input trains many epochs per CPU minute.
    "tiny": BackboneSpec(80, 1 / 255.0, 0.0, 256, "flatten", None),
    # A MobileNet-class backbone: fast, with ImageNet weights when there is internet.
    "mobilenetv2": BackboneSpec(128, 1 / 127.5, -1.0, 512, "max", "imagenet"),
    # The tutorial's model, exactly: VGG16 at 120x120, /255, GlobalMaxPooling2D -> Dense(2048) heads.
    "vgg16": BackboneSpec(120, 1 / 255.0, 0.0, 2048, "max", "imagenet"),
}
_TINY_WIDTHS = (24, 48, 96, 160)  # filters per stride-2 block; each a multiple of _TINY_GROUPS
_TINY_NECK = 32  # channels of the final 1x1 conv that both heads read
_TINY_GROUPS = 8


def _tiny_features(x: keras.KerasTensor) -> keras.KerasTensor:
    """Four stride-2 blocks (conv-GN-ReLU, a second conv from block 2 on), then a 1x1 "neck"; 80x80 -> 5x5x32.

    GroupNormalization rather than BatchNormalization: it keeps no running statistics, so the
    validation numbers of a short run (a few hundred steps of batch 8) match training's, where
    BatchNorm's moving averages lag behind. The narrow neck keeps the flattened box-head input small
    (800 values): with thousands, Adam's first steps threw the box sigmoids into saturation and
    the boxes stayed stuck at the frame's edges for many epochs.
    """
    for i, filters in enumerate(_TINY_WIDTHS, start=1):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"tiny_block{i}_down")(x)
        x = layers.GroupNormalization(groups=_TINY_GROUPS, name=f"tiny_block{i}_gn1")(x)
        x = layers.ReLU(name=f"tiny_block{i}_relu1")(x)
        if i >= 2:
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"tiny_block{i}_conv")(x)
            x = layers.GroupNormalization(groups=_TINY_GROUPS, name=f"tiny_block{i}_gn2")(x)
            x = layers.ReLU(name=f"tiny_block{i}_relu2")(x)
    x = layers.Conv2D(_TINY_NECK, 1, use_bias=False, name="tiny_neck")(x)
    x = layers.GroupNormalization(groups=_TINY_GROUPS, name="tiny_neck_gn")(x)
    return layers.ReLU(name="tiny_neck_relu")(x)


_GRID_WIDTHS = (64, 128)  # filters of the stride-2 stages after the face stem: strides 8, 16
GRID_STRIDE = 8  # input pixels per cell of the score/box maps
SCORE_MAP = "score_map"  # layer names the trainer reads the raw maps from
BOX_MAP = "box_map"
CELL_SCORES = "scores"  # the multi-face model's extra outputs: every cell's score and box
CELL_BOXES = "boxes"


def _conv_gn_relu(x, filters: int, name: str, strides: int = 1, kernel: int = 3):
    """Conv, GroupNorm, ReLU. GroupNorm for the reason given in _tiny_features (measured again on real
    faces: BatchNorm's validation F1 lagged far behind, 0.11 against 0.35 after 8 epochs)."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.GroupNormalization(groups=min(_TINY_GROUPS, filters // 4), name=f"{name}_gn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


WEIGHT_NAMES = {"imagenet": "ImageNet", "face": "face-trained"}  # for messages
FACE_WEIGHTS_FILE = "rnet.lz4"  # in the mtcnn package's assets


def _face_stem(pixels: keras.KerasTensor) -> keras.KerasTensor:
    """The stride-4 stem of the grid model: MTCNN's RNet convolutions (PReLU, 3x3/2 max-pools).

    Shaped like RNet so that it can start from RNet's face-trained weights (``weights="face"``),
    which the pip ``mtcnn`` package ships: trained on tens of thousands of faces, they tell a face
    of a person the user never photographed far better than features learnt from a few hundred
    pictures (real faces, people never seen: val F1 0.62 after one epoch against 0.16 from scratch).
    RNet saw 24 px faces; at the default 128 px input a 60-180 px face in a 640x480 frame is 12-36 px.
    Reads the raw 0..255 RGB pixels and scales them as MTCNN does, (x - 127.5) / 128.
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


def load_pretrained_face_detector(model: keras.Model) -> None:
    """Copies MediaPipe's trained BlazeFace weights (shipped in ``assets/blazeface/``) into the blazeface model.

    Raises:
        WeightsUnavailableError: the weights file is missing or does not fit the network.
    """
    from training.model.blazeface import load_blazeface_weights

    try:
        load_blazeface_weights(model)
    except (OSError, ValueError, KeyError) as exc:
        raise WeightsUnavailableError(
            f"could not load the pretrained face detector's weights ({exc}); train from scratch with weights=None"
        ) from exc


def _grid_features(pixels: keras.KerasTensor) -> keras.KerasTensor:
    """The face stem (stride 4), two stride-2 stages (8, 16), then the stride-16 features upsampled onto
    the stride-8 ones (a tiny FPN): 128x128 -> 16x16x64. Stride 16 sees a whole face (its receptive
    field is ~100 px); stride 8 keeps where its edges are."""
    x = _face_stem(pixels)
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


CENTRE_REACH = 1.0  # cells: how far outside itself a cell may place a face's centre


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


def _grid_heads(features: keras.KerasTensor, units: int, every_cell: bool = False) -> list[keras.KerasTensor]:
    """The per-cell heads, decoded in the model: the face score is the best cell's, the box is its box.

    ``every_cell`` adds the multi-face outputs: every cell's sigmoid score (N, G*G) and its box
    (N, G*G, 4), clipped to the input as the best box is.
    """
    grid = int(features.shape[1])
    x = _conv_gn_relu(features, units, "grid_head")
    score_map = layers.Conv2D(1, 1, name=SCORE_MAP, dtype="float32",
                              bias_initializer=keras.initializers.Constant(-4.0))(x)  # start near "no face"
    box_map = layers.Conv2D(4, 1, name=BOX_MAP, dtype="float32")(x)
    return _cell_outputs(score_map, grid_cell_boxes(box_map, grid), grid, every_cell)


def _cell_outputs(score_map, cell_boxes, grid: int, every_cell: bool) -> list[keras.KerasTensor]:
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


def _blazeface_heads(pixels: keras.KerasTensor, size: int) -> list[keras.KerasTensor]:
    """BlazeFace's network and raw maps (training.model.blazeface), answered as multiface answers."""
    from training.model import blazeface

    score_raw, box_raw = blazeface.blazeface_maps(pixels)
    grid = size // BACKBONES["blazeface"].cell_stride
    score_map = layers.Identity(name=SCORE_MAP, dtype="float32")(score_raw)
    box_map = layers.Identity(name=BOX_MAP, dtype="float32")(box_raw)
    return _cell_outputs(score_map, blazeface.decode_boxes(box_map, grid, float(size)), grid, every_cell=True)


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


def is_grid_model(model: keras.Model) -> bool:
    """Whether a built or loaded detector has the per-cell head (its raw maps are what training fits)."""
    names = {layer.name for layer in model.layers}
    return SCORE_MAP in names and BOX_MAP in names


def is_multi_face_model(model: keras.Model) -> bool:
    """Whether a built or loaded detector answers for every face: the grid head with its four outputs
    ``[class, box, scores, boxes]`` (see :func:`build_model`)."""
    layer_names = {layer.name for layer in model.layers}
    return (len(model.outputs or []) == 4 and is_grid_model(model)
            and CELL_SCORES in layer_names and CELL_BOXES in layer_names)


def cell_maps_model(model: keras.Model, backbone: str) -> keras.Model:
    """The same weights with what a per-cell head trains on as outputs: the raw (N, G, G, 1) score-logit map
    and every cell's box (N, G*G, 4), decoded as ``backbone``'s spec says but not clipped (a box past
    the edge still learns)."""
    score_map, box_map = (model.get_layer(name).output for name in (SCORE_MAP, BOX_MAP))
    grid = int(score_map.shape[1])
    if BACKBONES[backbone].box_decoding == "anchor":
        from training.model.blazeface import decode_boxes

        cell_boxes = decode_boxes(box_map, grid, float(model_input_size(model)))
    else:
        cell_boxes = grid_cell_boxes(box_map, grid)
    return keras.Model(model.inputs, [score_map, cell_boxes], name=f"{model.name}_cells")


def grid_maps_model(model: keras.Model) -> keras.Model:
    """The same weights with the raw (N, G, G, 1) score-logit and (N, G, G, 4) box maps as outputs."""
    return keras.Model(model.inputs, [model.get_layer(SCORE_MAP).output, model.get_layer(BOX_MAP).output],
                       name=f"{model.name}_maps")


def _applications_features(backbone: str, x: keras.KerasTensor, input_size: int, weights: str | None):
    shape = (input_size, input_size, 3)
    try:
        if backbone == "vgg16":
            base = keras.applications.VGG16(include_top=False, weights=weights, input_shape=shape)
        else:
            base = keras.applications.MobileNetV2(
                include_top=False, weights=weights, input_shape=shape, alpha=0.35 if weights is None else 1.0
            )
    except ValueError:
        raise
    except Exception as exc:  # keras.utils.get_file raises a bare Exception on URL failures
        raise WeightsUnavailableError(
            f"could not get ImageNet weights for {backbone} ({exc}); "
            "check the internet connection, or train from scratch with weights=None"
        ) from exc
    return base(x)


def build_model(
    backbone: str = DEFAULT_BACKBONE,
    input_size: int | None = None,
    weights: str | None = None,
) -> keras.Model:
    """Build the two-head detector.

    Args:
        backbone: one of :data:`BACKBONES` (``"grid"`` by default; ``"vgg16"`` is the tutorial's;
            ``"multiface"`` is grid answering for every face, with two more outputs).
        input_size: square input side in pixels; the backbone's default when ``None``.
        weights: the backbone's pretrained start (its spec's ``pretrained``): ``"imagenet"``
            (downloaded once, cached by Keras) for mobilenetv2 and vgg16, ``"face"`` (MTCNN's
            face-trained stem, shipped in the mtcnn package, no download) for grid and multiface; or
            ``None`` to train from scratch.

    Returns:
        A functional model taking (N, S, S, 3) RGB pixels in 0..255 and returning
        ``[class_score (N, 1), box (N, 4)]``, the box ``[x1, y1, x2, y2]`` in [0, 1] of the input.
        ``"multiface"`` returns ``[class_score (N, 1), box (N, 4), scores (N, G*G), boxes (N, G*G, 4)]``
        (every cell's score and box, G = S / 8; outputs named class, box, scores, boxes).

    Raises:
        ValueError: unknown backbone, bad size, or pretrained weights a backbone does not have.
        WeightsUnavailableError: the pretrained weights could not be fetched or read.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    spec = BACKBONES[backbone]
    size = int(input_size or spec.default_input_size)
    if size < 32:
        raise ValueError(f"input_size must be at least 32 pixels, got {size}")
    if weights not in (None, "imagenet", "face"):
        raise ValueError(f"weights must be 'imagenet', 'face' or None, got {weights!r}")
    if weights is not None and weights != spec.pretrained:
        raise ValueError(f"backbone {backbone!r} has no {WEIGHT_NAMES[weights]} weights; use weights=None")

    multiple = 32 if spec.box_decoding == "anchor" else 2 * GRID_STRIDE
    if spec.box_pooling == "grid" and size % multiple:
        raise ValueError(f"input_size of the {backbone} backbone must be a multiple of {multiple}, got {size}")

    inputs = keras.Input(shape=(size, size, 3), name="image")
    if spec.box_decoding == "anchor":
        model = keras.Model(inputs, _blazeface_heads(inputs, size), name=f"facetracker_{backbone}")
        if weights == "face":
            load_pretrained_face_detector(model)
        return model
    if spec.box_pooling == "grid":
        outputs = _grid_heads(_grid_features(inputs), spec.head_units, every_cell=backbone in MULTI_FACE_BACKBONES)
        model = keras.Model(inputs, outputs, name=f"facetracker_{backbone}")
        if weights == "face":
            load_face_stem_weights(model)
        return model
    x = layers.Rescaling(spec.scale, spec.offset, name="scale_pixels")(inputs)
    if backbone == "tiny":
        features = _tiny_features(x)
    else:
        features = _applications_features(backbone, x, size, weights)

    c = layers.GlobalMaxPooling2D(name="class_pool")(features)
    c = layers.Dense(spec.head_units, activation="relu", name="class_hidden")(c)
    class_score = layers.Dense(1, activation="sigmoid", dtype="float32", name="class")(c)

    if spec.box_pooling == "flatten":
        b = layers.Flatten(name="box_pool")(features)
    else:
        b = layers.GlobalMaxPooling2D(name="box_pool")(features)
    b = layers.Dense(spec.head_units, activation="relu", name="box_hidden")(b)
    box = layers.Dense(4, activation="sigmoid", dtype="float32", name="box")(b)

    return keras.Model(inputs, [class_score, box], name=f"facetracker_{backbone}")


def freeze_leading_layers(model: keras.Model, count: int) -> int:
    """Keep the first ``count`` weighted layers as they are (not trained); returns how many were frozen.

    "First" is the order the network computes them in: blazeface's layers carry that order in their
    names (the ``.tflite`` graph's), the other backbones' in ``model.layers``."""
    weighted = [layer for layer in model.layers if layer.weights]
    numbered = [layer for layer in weighted if layer.name.startswith("blazeface_") and layer.name[10:13].isdigit()]
    if numbered:
        weighted = sorted(numbered, key=lambda layer: layer.name) + [other for other in weighted if other not in numbered]
    for layer in weighted[:count]:
        layer.trainable = False
    return min(count, len(weighted))


def backbone_of(model: keras.Model) -> str:
    """The backbone a built or loaded detector was made from: :func:`build_model` names every model
    ``facetracker_<backbone>``, and a saved ``.keras`` file keeps the name."""
    name = model.name.removeprefix("facetracker_")
    if name not in BACKBONES:
        raise ValueError(f"model {model.name!r} was not made by FaceTracker's build_model (no known backbone)")
    return name


def model_input_size(model: keras.Model) -> int:
    """The square input side a built detector expects."""
    return int(model.inputs[0].shape[1])
