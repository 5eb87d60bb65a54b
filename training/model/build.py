"""The two-head face detector: :func:`build_model` builds any backbone of the table
(:data:`training.model.backbones.BACKBONES`) with its family's builder, one file per family as
``keras.applications`` keeps one per architecture: :mod:`training.model.blazeface` (the default),
:mod:`training.model.grid` (grid, multiface), :mod:`training.model.tiny`, :mod:`training.model.applications`
(mobilenetv2, vgg16); the outputs they share are in :mod:`training.model.heads`.

Written like ``keras.applications`` builders: one function, every argument defaulted, a plain
functional model that ``keras.models.load_model`` reads back with no custom objects. Input pixels
are RGB in 0..255 (see :mod:`training.core.preprocess`); the scaling to the backbone's range is the
model's first layer, so it travels inside the ``.keras`` file.
"""

from __future__ import annotations

import keras

from training.model import applications, blazeface, grid, tiny
from training.model.backbones import (
    BACKBONES,
    DEFAULT_BACKBONE,
    WeightsUnavailableError,
)
from training.model.backbones import (
    describe_start as describe_start,  # the words live Keras-free, for the Train tab
)
from training.model.grid import grid_cell_boxes as grid_cell_boxes  # the trainer's and the tests' name for it
from training.model.heads import BOX_MAP, CELL_BOXES, CELL_SCORES, SCORE_MAP

__all__ = [
    "WeightsUnavailableError", "backbone_of", "build_model", "cell_maps_model", "describe_start",
    "freeze_leading_layers", "grid_cell_boxes", "grid_maps_model", "is_grid_model", "is_multi_face_model",
    "model_input_size",
]

WEIGHT_NAMES = {"imagenet": "ImageNet", "face": "face-trained"}  # for messages

#: Each builder family: ``outputs(inputs, spec, size, weights) -> [class, box(, scores, boxes)]``, and what
#: loads its pretrained start into the built model (the applications load theirs while building).
_FAMILIES = {
    "blazeface": (blazeface.blazeface_outputs, blazeface.load_pretrained_face_detector),
    "grid": (grid.grid_outputs, grid.load_grid_weights),
    "tiny": (tiny.tiny_outputs, None),
    "applications": (applications.applications_outputs, None),
}


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
    cells = int(score_map.shape[1])
    if BACKBONES[backbone].box_decoding == "anchor":
        cell_boxes = blazeface.decode_boxes(box_map, cells, float(model_input_size(model)))
    else:
        cell_boxes = grid_cell_boxes(box_map, cells)
    return keras.Model(model.inputs, [score_map, cell_boxes], name=f"{model.name}_cells")


def grid_maps_model(model: keras.Model) -> keras.Model:
    """The same weights with the raw (N, G, G, 1) score-logit and (N, G, G, 4) box maps as outputs."""
    return keras.Model(model.inputs, [model.get_layer(SCORE_MAP).output, model.get_layer(BOX_MAP).output],
                       name=f"{model.name}_maps")


def build_model(
    backbone: str = DEFAULT_BACKBONE,
    input_size: int | None = None,
    weights: str | None = None,
) -> keras.Model:
    """Build the two-head detector.

    Args:
        backbone: one of :data:`~training.model.backbones.BACKBONES` (``"blazeface"`` by default, pretrained
            on real faces; ``"multiface"`` the grid network answering for every face; ``"vgg16"`` the tutorial's).
        input_size: square input side in pixels; the backbone's default when ``None``.
        weights: the backbone's pretrained start (its spec's ``pretrained``): ``"face"`` (blazeface:
            MediaPipe's weights, shipped in ``assets/blazeface/``; grid and multiface: MTCNN's face-trained
            stem, shipped in the mtcnn package), ``"imagenet"`` (downloaded once, cached by Keras) for
            mobilenetv2 and vgg16; or ``None`` to train from scratch.

    Returns:
        A functional model taking (N, S, S, 3) RGB pixels in 0..255 and returning
        ``[class_score (N, 1), box (N, 4)]``, the box ``[x1, y1, x2, y2]`` in [0, 1] of the input.
        A multi-face backbone (blazeface, multiface) returns
        ``[class_score (N, 1), box (N, 4), scores (N, G*G), boxes (N, G*G, 4)]`` (every cell's score and box,
        G = S / the spec's ``cell_stride``; outputs named class, box, scores, boxes).

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
    multiple = spec.input_multiple
    if size % multiple:
        raise ValueError(f"input_size of the {backbone} backbone must be a multiple of {multiple}, got {size}")

    outputs, load_weights = _FAMILIES[spec.family]
    inputs = keras.Input(shape=(size, size, 3), name="image")
    model = keras.Model(inputs, outputs(inputs, spec, size, weights), name=f"facetracker_{backbone}")
    if load_weights is not None:
        load_weights(model, weights)
    return model


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


def rebuilt(model: keras.Model) -> keras.Model:
    """A loaded detector's weights in a network built anew for its backbone and input size.

    A model loaded from a file keeps its saved operation names while Keras' name counters start afresh in a new
    process, so the operations :func:`cell_maps_model` adds for training would take the same names ("The name
    "add" is used 2 times in the model"): resuming a blazeface run in the training child failed so. Built here,
    the names are this process's own. ValueError when the weights do not fit the network this version builds.
    """
    network = build_model(backbone_of(model), model_input_size(model), weights=None)
    network.set_weights(model.get_weights())
    return network


def model_input_size(model: keras.Model) -> int:
    """The square input side a built detector expects."""
    return int(model.inputs[0].shape[1])
