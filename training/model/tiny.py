"""The tiny backbone: a small single-box CNN that learns from scratch in CPU minutes."""

from __future__ import annotations

import keras
from keras import layers

from training.model.backbones import BackboneSpec
from training.model.heads import single_box_heads

_TINY_WIDTHS = (24, 48, 96, 160)  # filters per stride-2 block; each a multiple of _TINY_GROUPS
_TINY_NECK = 32  # channels of the final 1x1 conv that both heads read
_TINY_GROUPS = 8


def tiny_features(x: keras.KerasTensor) -> keras.KerasTensor:
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


def tiny_outputs(inputs: keras.KerasTensor, spec: BackboneSpec, size: int, weights: str | None) -> list[keras.KerasTensor]:
    """The tiny network's ``[class, box]`` on 0..255 RGB ``inputs`` (no pretrained weights: ``weights`` is None)."""
    x = layers.Rescaling(spec.scale, spec.offset, name="scale_pixels")(inputs)
    return single_box_heads(tiny_features(x), spec)
