"""BlazeFace (MediaPipe's full-range face detector) as a plain Keras functional model.

A face detector already trained on many thousands of real faces is the start our own models lacked:
trained from a few hundred pictures, they learned the look of those pictures ("a pasted grey patch"),
not faces. MediaPipe's full-range BlazeFace (Apache-2.0, about 100k parameters) finds faces from far
away to selfie size in a 192x192 input and answers with a score and a box for each cell of a 48x48
map: exactly our multi-face head (a score and a box per cell), so it trains with the same losses and
runs through the same ``Detector.detect_all`` and exports.

The network below is written out as the ``.tflite`` graph has it (checked layer by layer against
MediaPipe's own model: see ``assets/blazeface/convert_blazeface.py``, which copies the weights into
``assets/blazeface/face_detection_full_range.npz``). Every building block is a depthwise 3x3
convolution followed by a 1x1 convolution; two of them with a shortcut make a residual block; a
feature pyramid brings the 6x6 features back up to 48x48.

Input: RGB pixels in 0..255 (as every FaceTracker model); the model scales them to [-1, 1] itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from training.model.backbones import BLAZEFACE_START, BackboneSpec, WeightsUnavailableError
from training.model.heads import BOX_MAP, SCORE_MAP, cell_outputs

INPUT_SIZE = 192
GRID = 48  # cells a side of the score/box maps: one anchor each, 4 input pixels apart
#: Raw box values are in input pixels (MediaPipe's x_scale/y_scale/w_scale/h_scale = 192).
BOX_SCALE = float(INPUT_SIZE)
PREFIX = "blazeface"
WEIGHTS_FILE = "face_detection_full_range.npz"
#: What the start is called in messages, config.json and the Train tab (kept Keras-free in training.model.backbones).
PRETRAINED_NAME = BLAZEFACE_START

# (residual blocks, bottleneck width, output width) of each stage after the stem, finest first;
# each stage but the first starts with a stride-2 pair of units.
_STAGES = ((2, 8, 32), (2, 16, 64), (2, 32, 128), (2, 48, 192), (3, 96, 384))
# The pyramid on the way back up: (lateral width, residual blocks, bottleneck width), coarsest first.
_PYRAMID = ((96, 2, 48), (64, 2, 32), (48, 1, 24))


class _Names:
    """Numbers the convolutions in the order the ``.tflite`` graph runs them, so weights copy by index."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, kind: str) -> str:
        self.count += 1
        return f"{PREFIX}_{self.count:03d}_{kind}"


def _unit(x, filters: int, names: _Names, stride: int = 1, relu: bool = True):
    """Depthwise 3x3 then pointwise 1x1 (ReLU after the pair when ``relu``).

    Stride 2 pads one pixel on every side first, as the ``.tflite`` graph does (Keras' "same" would pad
    only the bottom and right and shift every box by a pixel)."""
    if stride == 2:
        x = layers.ZeroPadding2D(1)(x)
        x = layers.DepthwiseConv2D(3, strides=2, padding="valid", name=names("dw"))(x)
    else:
        x = layers.DepthwiseConv2D(3, padding="same", name=names("dw"))(x)
    return layers.Conv2D(filters, 1, activation="relu" if relu else None, name=names("pw"))(x)


def _residual(x, bottleneck: int, names: _Names):
    """Two units (narrow, then back to the input's width) added to the input, then ReLU."""
    y = _unit(x, bottleneck, names)
    y = _unit(y, int(x.shape[-1]), names, relu=False)
    return layers.ReLU()(layers.Add()([x, y]))


def _depth_to_space(x, block: int = 2):
    """TFLite's DEPTH_TO_SPACE (channels (i, j, c) -> pixel (i, j) of a block) in keras.ops."""
    height, width, channels = int(x.shape[1]), int(x.shape[2]), int(x.shape[3]) // (block * block)
    x = ops.reshape(x, (-1, height, width, block, block, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height * block, width * block, channels))


def _head(x, channels: int, names: _Names):
    """A 1x1 convolution, a stride-2 depthwise 3x3 and depth-to-space: one output per cell of 48x48."""
    x = layers.Conv2D(4 * channels, 1, name=names("head"))(x)
    x = layers.ZeroPadding2D(1)(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="valid", name=names("headdw"))(x)
    return _depth_to_space(x)


def blazeface_maps(pixels: keras.KerasTensor) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The network from 0..255 RGB pixels (N, 192, 192, 3) to its raw maps: score logits (N, 48, 48, 1)
    and box values (N, 48, 48, 16: centre x, y, width, height in input pixels, then 6 key points)."""
    names = _Names()
    x = layers.Rescaling(1 / 127.5, -1.0, name=f"{PREFIX}_scale")(pixels)
    x = layers.ZeroPadding2D(1)(x)
    x = layers.Conv2D(32, 3, strides=2, padding="valid", activation="relu", name=names("stem"))(x)  # 96x96
    laterals = []
    for stage, (blocks, bottleneck, width) in enumerate(_STAGES):
        if stage:
            x = _unit(x, bottleneck, names, stride=2)
            x = _unit(x, width, names)
        for _ in range(blocks):
            x = _residual(x, bottleneck, names)
        if 1 <= stage <= 3:  # 48x48, 24x24, 12x12: lateral features for the way back up
            lateral_width = _PYRAMID[3 - stage][0]
            laterals.append(layers.Conv2D(lateral_width, 1, activation="relu", name=names("lateral"))(x))
    for (width, blocks, bottleneck), lateral in zip(_PYRAMID, reversed(laterals), strict=True):
        x = layers.Conv2D(width, 1, activation="relu", name=names("top"))(x)
        x = layers.UpSampling2D(2, interpolation="bilinear")(x)
        x = layers.Add()([lateral, x])
        for _ in range(blocks):
            x = _residual(x, bottleneck, names)
    return _head(x, 1, names), _head(x, 16, names)


def anchor_centres(grid: int = GRID) -> np.ndarray:
    """(G*G, 2) every cell's centre (x, y) in [0, 1] of the input, row by row (MediaPipe's anchors,
    offset 0.5, fixed size)."""
    columns, rows = np.meshgrid(np.arange(grid, dtype="float32"), np.arange(grid, dtype="float32"))
    return (np.stack([columns.ravel(), rows.ravel()], axis=-1) + 0.5) / grid


def decode_boxes(raw, grid: int = GRID, scale: float = BOX_SCALE):
    """Every cell's ``[x1, y1, x2, y2]`` in [0, 1] of the input from the raw (N, G, G, >=4) box map, as
    MediaPipe decodes them: centre = anchor + raw / scale, size = raw / scale. Returns (N, G*G, 4)."""
    raw = ops.reshape(ops.cast(raw[..., :4], "float32"), (-1, grid * grid, 4)) / scale
    centre = raw[..., :2] + anchor_centres(grid)[np.newaxis]
    half = ops.abs(raw[..., 2:]) / 2
    return ops.concatenate([centre - half, centre + half], axis=-1)


def weights_path() -> Path:
    """Where the converted weights are: ``assets/blazeface/`` beside the code in a checkout, under the
    bundle's own folder in a PyInstaller app."""
    candidates = [Path(__file__).resolve().parents[2] / "assets" / "blazeface" / WEIGHTS_FILE]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / "assets" / "blazeface" / WEIGHTS_FILE)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[-1]


def load_blazeface_weights(model: keras.Model, path: str | Path | None = None) -> None:
    """Copy MediaPipe's trained weights (``assets/blazeface/*.npz``) into the network's convolutions.

    Raises:
        FileNotFoundError / ValueError: the file is missing, or does not fit the network (another
            conversion): the message names the file and the first layer that does not fit.
    """
    path = Path(path) if path is not None else weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: BlazeFace weights not found (they ship in the repository's assets/)")
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    convs = sorted((layer for layer in model.layers if layer.name.startswith(f"{PREFIX}_")
                    and layer.name[len(PREFIX) + 1:][:3].isdigit()), key=lambda layer: layer.name)
    if len(convs) * 2 != len(arrays):
        raise ValueError(f"{path}: holds {len(arrays) // 2} layers' weights, the network has {len(convs)}")
    for index, layer in enumerate(convs, start=1):
        kernel, bias = arrays[f"{index:03d}_kernel"], arrays[f"{index:03d}_bias"]
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [kernel.shape, bias.shape]:
            raise ValueError(f"{path}: weights {index:03d} are shaped {kernel.shape}, {bias.shape}; "
                             f"layer {layer.name} needs {expected}")
        layer.set_weights([kernel, bias])


def blazeface_outputs(inputs: keras.KerasTensor, spec: BackboneSpec, size: int,
                      weights: str | None) -> list[keras.KerasTensor]:
    """BlazeFace's network and raw maps (:func:`blazeface_maps`), answered as multiface answers: the best
    cell's score and box, then every cell's score and box (decoded at MediaPipe's anchors)."""
    score_raw, box_raw = blazeface_maps(inputs)
    grid = size // spec.cell_stride
    score_map = layers.Identity(name=SCORE_MAP, dtype="float32")(score_raw)
    box_map = layers.Identity(name=BOX_MAP, dtype="float32")(box_raw)
    return cell_outputs(score_map, decode_boxes(box_map, grid, float(size)), grid, every_cell=True)


def load_pretrained_face_detector(model: keras.Model, weights: str | None = "face") -> None:
    """Copies MediaPipe's trained BlazeFace weights (shipped in ``assets/blazeface/``) into the blazeface
    model when ``weights`` is "face" (None: from scratch).

    Raises:
        WeightsUnavailableError: the weights file is missing or does not fit the network.
    """
    if weights != "face":
        return
    try:
        load_blazeface_weights(model)
    except (OSError, ValueError, KeyError) as exc:
        raise WeightsUnavailableError(
            f"could not load the pretrained face detector's weights ({exc}); train from scratch with weights=None"
        ) from exc
