"""The two-head face detector: one backbone, a face-score head and a box head.

Written like ``keras.applications`` builders: one function, every argument defaulted, a plain
functional model that ``keras.models.load_model`` reads back with no custom objects. Input pixels
are RGB in 0..255 (see :mod:`training.preprocess`); the scaling to the backbone's range is the
model's first layer, so it travels inside the ``.keras`` file.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from training.defaults import DEFAULT_BACKBONE


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights were asked for but could not be downloaded or read (offline, say)."""


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone needs: its default input size, scaling and head shape."""

    default_input_size: int
    scale: float
    offset: float
    head_units: int
    box_pooling: str  # "max" (the tutorial's GlobalMaxPooling2D) or "flatten" (keeps where things are)
    has_imagenet_weights: bool


BACKBONES: dict[str, BackboneSpec] = {
    # A small CNN that learns from scratch in CPU minutes: the default for laptops and offline users.
    # 80 px: faces fill much of a webcam frame, and a small input trains many epochs per CPU minute.
    "tiny": BackboneSpec(80, 1 / 255.0, 0.0, 256, "flatten", False),
    # A MobileNet-class backbone: fast, with ImageNet weights when there is internet.
    "mobilenetv2": BackboneSpec(128, 1 / 127.5, -1.0, 512, "max", True),
    # The tutorial's model, exactly: VGG16 at 120x120, /255, GlobalMaxPooling2D -> Dense(2048) heads.
    "vgg16": BackboneSpec(120, 1 / 255.0, 0.0, 2048, "max", True),
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
        backbone: one of :data:`BACKBONES` (``"tiny"`` by default; ``"vgg16"`` is the tutorial's).
        input_size: square input side in pixels; the backbone's default when ``None``.
        weights: ``"imagenet"`` for pretrained backbone weights (downloaded once, cached by Keras),
            or ``None`` to train from scratch.

    Returns:
        A functional model taking (N, S, S, 3) RGB pixels in 0..255 and returning
        ``[class_score (N, 1), box (N, 4)]``, the box ``[x1, y1, x2, y2]`` in [0, 1] of the input.

    Raises:
        ValueError: unknown backbone, bad size, or ImageNet weights for a backbone that has none.
        WeightsUnavailableError: ImageNet weights could not be fetched.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    spec = BACKBONES[backbone]
    size = int(input_size or spec.default_input_size)
    if size < 32:
        raise ValueError(f"input_size must be at least 32 pixels, got {size}")
    if weights not in (None, "imagenet"):
        raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}")
    if weights == "imagenet" and not spec.has_imagenet_weights:
        raise ValueError(f"backbone {backbone!r} has no ImageNet weights; use weights=None")

    inputs = keras.Input(shape=(size, size, 3), name="image")
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


def model_input_size(model: keras.Model) -> int:
    """The square input side a built detector expects."""
    return int(model.inputs[0].shape[1])
