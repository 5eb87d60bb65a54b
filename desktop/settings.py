"""What the app remembers between runs (QSettings), with typed reads.

QSettings hands back strings from INI files ("true", "0.5"), lists ("a, b"), or whatever another
program or an edit left there, so every read goes through a helper that converts, checks the range,
and falls back to the default on anything unexpected: such a value is dropped from the settings
with a note on stderr (:data:`dropped`), never a crash at start-up.
"""

from __future__ import annotations

import math
import os
import sys
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
RUNTIME = "detect/runtime"  # what runs a .keras model: auto, litert, onnx or tensorflow (desktop.runtime.RUNTIMES)
SNAPSHOT_FOLDER = "detect/snapshot_folder"
RECORDING_FOLDER = "detect/recording_folder"
WINDOW_GEOMETRY = "window/geometry"
WINDOW_TAB = "window/tab"

DEFAULT_SOURCE = "0"
DEFAULT_THRESHOLD = 0.5
MAX_TEXT = 4096  # a path or a name; a longer saved text is not one of ours
INT_RANGE = (-(2**31), 2**31 - 1)  # what Qt's spin boxes take

#: The notes about saved values that were dropped in this run (also printed on stderr).
dropped: list[str] = []


def _drop(settings: QSettings, key: str, value: object, why: str) -> None:
    """Forget a bad saved value, with a note: the next start reads the default without a word."""
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    note = f"setting {key} = {shown} dropped: {why}; using the default"
    dropped.append(note)
    print(f"facetracker: {note}", file=sys.stderr, flush=True)
    try:
        settings.remove(key)
    except Exception:  # a read-only settings file: the note is enough
        pass


def make_settings(path: str | os.PathLike | None = None) -> QSettings:
    """The user's settings; with ``path``, an INI file there instead (tests, portable use).

    Raises ValueError naming ``path`` when it is there but not a regular file (a named pipe would block
    Qt's read of it before the window shows)."""
    if path is not None:
        from training.core import is_regular_file, kind_of

        if os.path.lexists(path) and not is_regular_file(path):
            try:
                kind = kind_of(os.stat(path).st_mode)
            except OSError:
                kind = "a broken link"
            raise ValueError(f"{path}: is {kind}, not a settings file")
        return QSettings(str(Path(path)), QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def _value(settings: QSettings, key: str, default: object) -> object:
    try:
        return settings.value(key, default)
    except Exception:  # a value Qt cannot convert back (a damaged @Variant in an INI file)
        _drop(settings, key, "?", "unreadable")
        return default


def read_str(settings: QSettings, key: str, default: str = "") -> str:
    """A text setting (a path, a name); the default when it is not text, too long, or holds a NUL."""
    value = _value(settings, key, default)
    if value is None:
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        _drop(settings, key, value, "not text")
        return default
    if len(value) > MAX_TEXT or "\x00" in value:
        _drop(settings, key, value, "not a path or a name")
        return default
    return value


def read_bool(settings: QSettings, key: str, default: bool) -> bool:
    value = _value(settings, key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
    _drop(settings, key, value, "not true or false")
    return default


def read_float(settings: QSettings, key: str, default: float, low: float = float("-inf"),
               high: float = float("inf")) -> float:
    """A float setting clamped to [low, high]; the default when missing or not a finite number."""
    value = _value(settings, key, default)
    try:
        number = float(value) if not isinstance(value, bool) else math.nan  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        _drop(settings, key, value, "not a finite number")
        return default
    return min(max(number, low), high)


def read_int(settings: QSettings, key: str, default: int, low: int = INT_RANGE[0], high: int = INT_RANGE[1]) -> int:
    """A whole-number setting in [low, high] (by default what a spin box takes); the default otherwise."""
    value = _value(settings, key, default)
    if isinstance(value, str) and value.strip().isascii() and len(value.strip()) <= 20:
        text = value.strip()
        value = int(text) if text.lstrip("-").isdecimal() else value
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        _drop(settings, key, value, f"not a whole number from {low} to {high}")
        return default
    return value


def read_choice(settings: QSettings, key: str, choices: tuple[str, ...], default: str) -> str:
    """A setting that must be one of ``choices``; the default (and a note) for anything else."""
    value = read_str(settings, key, default)
    if value not in choices:
        _drop(settings, key, value, f"not one of {', '.join(choices)}")
        return default
    return value
