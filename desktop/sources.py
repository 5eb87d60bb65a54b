"""Where frames come from: a webcam, a video file or a folder of pictures, behind one small interface.

A :class:`FrameSource` is opened, read one frame at a time, and closed. ``read()`` returns
``None`` when no frame came: for a camera that is a fault (the capture worker counts them and
reports an unplugged camera), for a file or folder it is the end. Opening may be slow (a camera
takes a moment), so the capture worker calls ``open()`` in its own thread.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_IMAGE_FOLDER_FPS = 2.0  # a picture folder is a slide show: long enough to look at each one


class SourceError(RuntimeError):
    """A source could not be opened: the message names it and says what to do."""


class FrameSource:
    """Base class: ``open()``, ``read() -> frame | None``, ``close()``, plus ``fps`` and ``name``.

    ``live`` says whether ``None`` from ``read()`` is a fault (a camera) or the end (a file).
    ``fps`` is the rate to play at, or ``None`` for a camera (it paces itself).
    """

    live: bool = False
    loop: bool = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.fps: float | None = None
        self.frame_size: tuple[int, int] | None = None  # (width, height) once opened

    def open(self) -> None:
        """Open the device or file; raise :class:`SourceError` when that is not possible."""
        raise NotImplementedError

    def read(self) -> np.ndarray | None:
        """Return the next BGR frame, or ``None`` when none came."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class _VideoCaptureSource(FrameSource):
    """What a camera and a video file share: an open ``cv2.VideoCapture`` read and released."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._capture: cv2.VideoCapture | None = None

    def read(self) -> np.ndarray | None:
        if self._capture is None:
            return None
        ok, frame = self._capture.read()
        return frame if ok and frame is not None else None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class CameraSource(_VideoCaptureSource):
    """A webcam by OpenCV index (0 is the first camera)."""

    live = True

    def __init__(self, index: int = 0) -> None:
        super().__init__(f"Camera {index}")
        self.index = int(index)

    def open(self) -> None:
        capture = cv2.VideoCapture(self.index)
        if not capture.isOpened():
            capture.release()
            raise SourceError(
                f"No camera found at index {self.index}. Plug in a webcam and press Retry, "
                "or open a video file or a folder of pictures."
            )
        self._capture = capture
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if 1.0 <= fps <= 240.0 else None
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.frame_size = (width, height) if width and height else None


class VideoFileSource(_VideoCaptureSource):
    """A video file, played at its own frame rate; ``loop`` starts it again at the end."""

    def __init__(self, path: str | os.PathLike, loop: bool = False) -> None:
        self.path = Path(path)
        super().__init__(self.path.name)
        self.loop = loop
        self.frame_count = 0

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such video file")
        capture = cv2.VideoCapture(str(self.path))
        ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok or first is None:
            capture.release()
            raise SourceError(f"{self.path}: not a video OpenCV can read (unknown format or damaged file)")
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._capture = capture
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if 1.0 <= fps <= 240.0 else 30.0
        self.frame_count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self.frame_size = (first.shape[1], first.shape[0])

    def read(self) -> np.ndarray | None:
        frame = super().read()
        if frame is None and self.loop and self._capture is not None:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            frame = super().read()
        return frame


class ImageFolderSource(FrameSource):
    """The pictures of a folder in name order, shown as a slide show (``fps`` pictures a second)."""

    def __init__(self, path: str | os.PathLike, loop: bool = False, fps: float = DEFAULT_IMAGE_FOLDER_FPS) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path.name}/")
        self.loop = loop
        self.fps = fps
        self.files: list[Path] = []
        self.skipped: list[Path] = []  # files that could not be decoded
        self._position = 0

    def open(self) -> None:
        if not self.path.is_dir():
            raise SourceError(f"{self.path}: no such folder")
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise SourceError(f"{self.path}: no pictures in this folder ({', '.join(IMAGE_SUFFIXES)})")
        self._position = 0
        self.skipped = []

    def read(self) -> np.ndarray | None:
        tried = 0
        while tried < len(self.files):
            if self._position >= len(self.files):
                if not self.loop:
                    return None
                self._position = 0
            path = self.files[self._position]
            self._position += 1
            tried += 1
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is not None:
                return frame
            if path not in self.skipped:
                self.skipped.append(path)
        return None

    def close(self) -> None:
        self._position = 0


#: Camera numbers go up to this (OpenCV backends number devices from 0; /dev/video255 is Linux's last).
MAX_CAMERA_INDEX = 255


def camera_index(spec: str | int) -> int | None:
    """The camera a source setting names ("0", "2"), or None for a file or folder.

    Only ASCII digits up to MAX_CAMERA_INDEX: ``"²".isdigit()`` is True but ``int("²")`` fails, and a
    twenty-digit number is no camera; both are taken as file names (and not found) instead.
    """
    text = str(spec).strip()
    if text.isascii() and text.isdecimal() and len(text) <= 3 and int(text) <= MAX_CAMERA_INDEX:
        return int(text)
    return None


def open_source(spec: str | int, loop: bool = False) -> FrameSource:
    """Make the source a command-line or settings value names (not yet opened).

    ``"0"`` (any whole number) is that camera, a folder is an image folder, anything else a
    video file. Raises :class:`SourceError` for a path that does not exist.
    """
    text = str(spec).strip()
    camera = camera_index(text)
    if camera is not None:
        return CameraSource(camera)
    if not text or "\x00" in text:
        raise SourceError(f"{text!r}: not a camera number, a video file or an image folder")
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # "~nobody/x": no such user
        path = Path(text)
    if path.is_dir():
        return ImageFolderSource(path, loop=loop)
    if path.is_file():
        return VideoFileSource(path, loop=loop)
    if path.exists():
        raise SourceError(f"{text}: not a video file or a folder (a named pipe or a device?): give a camera number, "
                          "a video file or an image folder")
    raise SourceError(f"{text}: no such file or folder (give a camera number, a video file or an image folder)")


def list_cameras(max_index: int = 5, skip: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """Return the camera indexes (below ``max_index``) that open and deliver a frame.

    Slow (each camera takes a moment to open): call it from a worker thread. Indexes in ``skip``
    (a camera already in use) are left out. On Linux, indexes with no ``/dev/videoN`` are not tried.
    """
    found = []
    for index in range(max_index):
        if index in skip:
            continue
        if sys.platform.startswith("linux") and not Path(f"/dev/video{index}").exists():
            continue
        capture = cv2.VideoCapture(index)
        try:
            if capture.isOpened() and capture.read()[0]:
                found.append(index)
        finally:
            capture.release()
    return found
