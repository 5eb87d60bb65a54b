"""The ``keras.applications`` backbones: VGG16 (the tutorial's model) and MobileNetV2, with the tutorial's heads."""

from __future__ import annotations

import keras
from keras import layers

from training.model.backbones import BackboneSpec, WeightsUnavailableError
from training.model.heads import single_box_heads


def applications_features(backbone: str, x: keras.KerasTensor, input_size: int, weights: str | None):
    """The convolutional part of ``keras.applications``' VGG16 or MobileNetV2 (ImageNet weights with
    ``weights="imagenet"``, downloaded once; MobileNetV2 from scratch is the narrow alpha=0.35 one)."""
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


def applications_outputs(inputs: keras.KerasTensor, spec: BackboneSpec, size: int,
                         weights: str | None) -> list[keras.KerasTensor]:
    """``[class, box]`` of VGG16 or MobileNetV2 on 0..255 RGB ``inputs``, scaled to the backbone's range first."""
    x = layers.Rescaling(spec.scale, spec.offset, name="scale_pixels")(inputs)
    return single_box_heads(applications_features(spec.name, x, size, weights), spec)
