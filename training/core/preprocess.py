"""The one preprocessing step shared by training and inference, so the two cannot drift apart.

A frame (any size, OpenCV's BGR order) becomes an RGB float32 square of ``input_size`` pixels
with values in 0..255. Scaling to the backbone's range (the tutorial's ``/ 255``) happens inside
the model itself (a ``Rescaling`` layer), so a saved ``.keras`` file carries it.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """Return a 3-channel BGR view of a grayscale, BGR or BGRA frame (OpenCV's order; the dtype is kept)."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {frame.shape}")


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """A grayscale, BGR or BGRA frame as 3-channel RGB: the order models trained outside OpenCV expect."""
    return cv2.cvtColor(as_bgr(frame), cv2.COLOR_BGR2RGB)


def as_uint8(frame: np.ndarray) -> np.ndarray:
    """The frame as uint8, values clipped to 0..255 (a float or 16-bit frame would wrap around otherwise)."""
    return frame if frame.dtype == np.uint8 else np.clip(frame, 0, 255).astype(np.uint8)


def preprocess_frame(frame_bgr: np.ndarray, input_size: int) -> np.ndarray:
    """Resize a BGR frame to ``input_size`` x ``input_size`` and return it as RGB float32 in 0..255."""
    frame = as_uint8(as_bgr(frame_bgr))
    h, w = frame.shape[:2]
    shrinking = h > input_size or w > input_size
    resized = cv2.resize(
        frame,
        (input_size, input_size),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )
    return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB).astype(np.float32)


def preprocess_frames(frames_bgr: Sequence[np.ndarray] | np.ndarray, input_size: int) -> np.ndarray:
    """Batch form of :func:`preprocess_frame`: returns (N, S, S, 3) float32."""
    out = np.empty((len(frames_bgr), input_size, input_size, 3), dtype=np.float32)
    for i, frame in enumerate(frames_bgr):
        out[i] = preprocess_frame(frame, input_size)
    return out


def box_to_pixels(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """Scale a normalised ``[x1, y1, x2, y2]`` box to a frame's pixels."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1 * width, y1 * height, x2 * width, y2 * height)
