"""What the app remembers between runs (QSettings), with typed reads.

QSettings hands back strings from INI files ("true", "0.5"), so every read goes through a
helper that converts and falls back to the default on anything unexpected.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANISATION = "FaceTracker"
APPLICATION = "FaceTracker"

# Keys, one home for every part of the window.
LAST_MODEL = "model/last"  # path of the last .keras model used
DATASET = "dataset/folder"  # the dataset folder Collect/Label/Train work on
SOURCE = "detect/source"  # "0" (camera index), a video file or an image folder
THRESHOLD = "detect/threshold"
SMOOTHING = "detect/smoothing"
LOOP = "detect/loop"
SNAPSHOT_FOLDER = "detect/snapshot_folder"
RECORDING_FOLDER = "detect/recording_folder"
WINDOW_GEOMETRY = "window/geometry"
WINDOW_TAB = "window/tab"

DEFAULT_SOURCE = "0"
DEFAULT_THRESHOLD = 0.5


def make_settings(path: str | os.PathLike | None = None) -> QSettings:
    """The user's settings; with ``path``, an INI file there instead (tests, portable use)."""
    if path is not None:
        return QSettings(str(Path(path)), QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def read_str(settings: QSettings, key: str, default: str = "") -> str:
    value = settings.value(key, default)
    return default if value is None else str(value)


def read_bool(settings: QSettings, key: str, default: bool) -> bool:
    value = settings.value(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
    return default


def read_float(settings: QSettings, key: str, default: float, low: float = float("-inf"),
               high: float = float("inf")) -> float:
    """A float setting clamped to [low, high]; the default when missing or not a number."""
    try:
        value = float(settings.value(key, default))
    except (TypeError, ValueError):
        return default
    if value != value:  # NaN
        return default
    return min(max(value, low), high)


def read_int(settings: QSettings, key: str, default: int) -> int:
    try:
        return int(settings.value(key, default))
    except (TypeError, ValueError):
        return default
