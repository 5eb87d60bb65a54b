"""Reading a labelled face dataset: pictures plus labelme JSON, checked file by file.

Three layouts are read (``load_dataset`` finds which):

* ``split``  - the tutorial's ``root/{train,val,test}/{images,labels}``;
* ``flat``   - ``root/images/`` + ``root/labels/``;
* ``beside`` - labelme's default, each ``.json`` next to its picture (in ``root`` or ``root/images``).

Pictures and labels pair by file *stem*, never by listing order (the tutorial's sorted-order pairing
shifts every pair when one file is missing). Flat and beside datasets are split by a hash of the stem,
so adding pictures never moves an old picture to another split. Every bad file becomes a
:class:`Problem` (skipped and reported) or, with ``strict=True``, a :class:`DataError`.

No TensorFlow here: the desktop app reads datasets without loading it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import simplejpeg
from PIL import BmpImagePlugin, Image, JpegImagePlugin, PngImagePlugin

from training.core.boxes import Box, clipped, ordered
from training.core.files import atomic_write_text
from training.core.inputs import has_undecodable_name, read_bytes, read_json, shown

SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
UNSUPPORTED_IMAGE_EXTENSIONS = (".webp", ".gif", ".tif", ".tiff", ".heic", ".avif")
FACE_LABEL = "face"
BOX_TOLERANCE_PX = 1.0  # labelme lets a corner land a pixel past the edge; more than that is a labelling error
LABELME_VERSION = "5.5.0"
# A picture's pixel count is checked from its header before it is decoded: 100 megapixels is well above
# a 48-megapixel phone photo (8000x6000); a larger header is a damaged file or a decompression bomb.
MAX_PIXELS = 100_000_000
MAX_LABEL_BYTES = 64 * 2**20  # labelme JSON with the picture embedded (imageData) is a few MB
MAX_PICTURE_BYTES = 1 * 2**30  # a 100-megapixel PNG of noise is about 300 MB; more is no picture of ours
LAYOUTS = {
    "split": "train/val/test folders",
    "flat": "images/ + labels/, split by file name",
    "beside": "labelme JSON beside each picture, split by file name",
}

NO_BOX: Box = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Sample:
    """One picture and its label, boxes normalised ``[x1, y1, x2, y2]``.

    ``boxes`` holds every face (largest first); ``box`` is the largest, what a single-face model
    trains on (zeros without a face). Built with ``box`` alone, ``boxes`` is that one box.
    """

    image_path: Path
    label_path: Path | None
    has_face: bool
    box: Box
    width: int
    height: int
    boxes: tuple[Box, ...] = ()

    def __post_init__(self) -> None:
        if not self.boxes and self.has_face:
            object.__setattr__(self, "boxes", (tuple(self.box),))

    @property
    def face_count(self) -> int:
        return len(self.boxes) if self.has_face else 0


@dataclass(frozen=True)
class Problem:
    """A file that was skipped, and why."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{shown(self.path)}: {self.message}"


class DataError(ValueError):
    """A dataset problem that stops the work; names the file or folder and what is wrong with it."""

    def __init__(self, path: Path | str, message: str):
        self.path = Path(path)
        self.message = message
        super().__init__(f"{shown(self.path)}: {message}")


@dataclass
class Dataset:
    """The samples of each split, every file that was skipped, and notes about files that were used."""

    root: Path
    layout: str
    splits: dict[str, list[Sample]]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per split: pictures, pictures with a face (``faces``), pictures without (``no_faces``), face boxes
        in all (``face_boxes``: what a multi-face model learns from) and pictures with several faces."""
        result = {}
        for name in SPLITS:
            samples = self.splits.get(name, [])
            faces = sum(1 for s in samples if s.has_face)
            result[name] = {"images": len(samples), "faces": faces, "no_faces": len(samples) - faces,
                            "face_boxes": sum(s.face_count for s in samples),
                            "several_faces": sum(1 for s in samples if s.face_count > 1)}
        return result

    def several_faces_notes(self) -> list[Problem]:
        """One note per picture labelled with several faces, saying which face a single-face model uses.

        Not a dataset warning: a multi-face model learns every face. The trainer of a single-face model
        gives these as its warnings (it trains on the largest face of each such picture).
        """
        return [several_faces_note(s.label_path, s.boxes, s.width, s.height)
                for name in SPLITS for s in self.splits.get(name, [])
                if s.face_count > 1 and s.label_path is not None]

    def unlabelled(self) -> int:
        """Pictures without a label file: counted as "no face", the tutorial's convention."""
        return sum(1 for samples in self.splits.values() for s in samples if s.label_path is None)

    def empty_splits(self) -> list[str]:
        return [name for name in SPLITS if not self.splits.get(name)]

    def require_split(self, name: str) -> list[Sample]:
        """The samples of a split, or a DataError that says how to fill it."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        samples = self.splits.get(name, [])
        if samples:
            return samples
        if self.layout == "split":
            hint = f"put pictures in {self.root / name / 'images'} (labels in {self.root / name / 'labels'})"
        else:
            hint = (
                f"pictures go to the {name} split by a hash of their file name; "
                "add more pictures, or sort them into train/val/test folders"
            )
        raise DataError(self.root / name, f"the {name} split has no pictures: {hint}")

    def training_refusal(self) -> str | None:
        """Why the training pictures cannot teach a face detector (no face at all, or nothing but faces),
        or None. A model trained on one class only learns to answer that class: it would "pass" with
        a class accuracy of 1.0 on a validation split like it and be useless."""
        train = self.splits.get("train", [])
        if not train:
            return None  # require_split says how to fill it
        faces = sum(1 for s in train if s.has_face)
        if faces == 0:
            unlabelled = sum(1 for s in train if s.label_path is None)
            why = (f", {unlabelled} of them without a label file (counted as no face)" if unlabelled else "")
            return (f"none of the {len(train)} training pictures has a face labelled{why}: label your face "
                    "in the Label tab (or labelme) first; a model cannot learn faces from none")
        if faces == len(train):
            return (f"all {len(train)} training pictures show a face and none is without: add pictures without "
                    "your face in view (the tutorial: about one in five), or the model learns to say "
                    "\"face\" everywhere")
        return None

    def require_trainable(self) -> None:
        """DataError naming the dataset when :meth:`training_refusal` has a reason; what training calls."""
        reason = self.training_refusal()
        if reason:
            raise DataError(self.root, f"cannot train on this dataset: {reason}")

    def summary_text(self) -> str:
        """A table of the splits followed by the skipped files, for people."""
        counts = self.counts()
        lines = [
            f"Dataset {self.root} (layout: {self.layout}, {LAYOUTS.get(self.layout, '')})",
            f"{'split':<8}{'images':>8}{'faces':>8}{'no face':>9}{'boxes':>8}",
        ]
        total = {key: sum(c[key] for c in counts.values()) for key in next(iter(counts.values()))}
        for name, c in [*counts.items(), ("total", total)]:
            lines.append(f"{name:<8}{c['images']:>8}{c['faces']:>8}{c['no_faces']:>9}{c['face_boxes']:>8}")
        lines.append(unlabelled_line(self.unlabelled()))
        if total["several_faces"]:
            lines.append(several_faces_line(total["several_faces"], total["face_boxes"]))
        empty = self.empty_splits()
        if empty:
            lines.append(f"Empty splits: {', '.join(empty)}")
        refusal = self.training_refusal()
        if refusal:
            lines.append(f"Cannot train: {refusal}")
        if self.problems:
            lines.append(f"Problems ({len(self.problems)} skipped):")
            lines.extend(f"  {line}" for line in grouped_problem_lines(self.problems))
        else:
            lines.append("Problems: none")
        if self.warnings:
            lines.append(f"Warnings ({len(self.warnings)}, used anyway):")
            lines.extend(f"  {line}" for line in grouped_problem_lines(self.warnings))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (for ``summary --json`` and the desktop)."""
        return {
            "root": str(self.root),
            "layout": self.layout,
            "counts": self.counts(),
            "unlabelled": self.unlabelled(),
            "several_faces": sum(c["several_faces"] for c in self.counts().values()),
            "empty_splits": self.empty_splits(),
            "cannot_train": self.training_refusal(),
            "problems": [str(p) for p in self.problems],
            "warnings": [str(w) for w in self.warnings],
        }


#: A message shared by this many files or more is one line ("20,000 files: the picture file is empty, e.g. ...").
GROUP_AT = 4
#: At most this many lines of problems in a summary; the rest is counted (``summary --problems-file``: all).
MAX_PROBLEM_LINES = 40


def grouped_problem_lines(problems: list[Problem], max_lines: int = MAX_PROBLEM_LINES,
                          examples: int = 3) -> list[str]:
    """Problems for people: files with the same message grouped into one line naming a few of them,
    the others one line each, in the order first seen; at most ``max_lines`` lines (the last says how
    many more there are). ``Dataset.problems`` keeps every one (``summary --json``, ``--problems-file``)."""
    by_message: dict[str, list[Problem]] = {}
    for problem in problems:
        by_message.setdefault(problem.message, []).append(problem)
    lines: list[str] = []
    for message, group in by_message.items():
        if len(group) >= GROUP_AT:
            names = ", ".join(shown(p.path.name) for p in group[:examples])
            lines.append(f"{len(group):,} files: {message}, e.g. {names} (and {len(group) - examples:,} more)")
        else:
            lines.extend(str(p) for p in group)
    if len(lines) > max_lines:
        rest = len(lines) - (max_lines - 1)
        lines = [*lines[: max_lines - 1], f"... and {rest:,} more lines like these (summary --problems-file FILE "
                                          "writes every problem)"]
    return lines


def unlabelled_line(count: int) -> str:
    """How every summary says how many pictures have no label file (and what that means)."""
    pictures = "picture" if count == 1 else "pictures"
    return f"{count} {pictures} without a label file, counted as no face"


def several_faces_line(count: int, face_boxes: int) -> str:
    """How a summary says how many pictures show several faces (and what each kind of model learns)."""
    pictures = "picture shows" if count == 1 else "pictures show"
    return (f"{count} {pictures} several faces ({face_boxes} face boxes in all): a multi-face model learns "
            "every face, a single-face model the largest of each picture")


# --------------------------------------------------------------------------------------------- images


def _read_picture(path: Path) -> bytes:
    # not cv2.imread: it cannot open non-ASCII paths on Windows; and a named pipe must not block the scan
    try:
        data = read_bytes(path, max_bytes=MAX_PICTURE_BYTES, error=DataError, what="picture")
    except DataError as exc:
        if exc.message == "no such picture":
            raise DataError(path, "the picture does not exist") from None
        raise
    if not data:
        raise DataError(path, "the picture file is empty")
    return data


def load_image(path: Path | str) -> np.ndarray:
    """Decode a picture as BGR uint8 (EXIF orientation applied, as labelme shows it); DataError if it
    is unreadable, damaged, or larger than ``MAX_PIXELS``.

    The size is read from the header before anything is decoded (a few hundred bytes can declare
    40000x40000 pixels), and the pixel data is checked first (:func:`check_picture`), so a damaged
    file is a DataError naming it, not a half-grey picture or an OpenCV exception.
    """
    path = Path(path)
    data = _read_picture(path)
    width, height, kind = _header(path, data)
    image = _check_pixel_data(path, data, kind, width, height)
    if image is None:  # a JPEG: checked, not yet decoded
        image = _cv2_decode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(path, "not a readable picture (corrupt, or not a JPEG, PNG or BMP file)")
    return image


def image_size(path: Path | str) -> tuple[int, int]:
    """(width, height) of a picture as it is shown, read from its header; DataError if corrupt, truncated
    or larger than ``MAX_PIXELS``.

    Reading the header is ~50x faster than decoding, and checking that the file ends where its format
    says it should catches the truncated JPEGs that OpenCV would silently decode half grey.
    """
    path = Path(path)
    width, height, _ = _header(path, _read_picture(path))
    return width, height


def check_picture(path: Path | str) -> tuple[int, int]:
    """(width, height) of a picture after checking all of its pixel data; DataError naming the file if
    it is damaged, truncated, unreadable or larger than ``MAX_PIXELS``.

    What the dataset scan runs on every picture, so that a damaged picture is a listed problem before
    training instead of a crash (or garbage) in the middle of an epoch. JPEG scan data is decoded by
    libjpeg-turbo at 1/8 scale (every coefficient is still read) and its corrupt-data warnings are
    errors here; PNG chunks are checked against their CRCs and their compressed pixel data is inflated
    (quietly: libpng would print its complaints) before the picture is decoded as training will;
    other formats are decoded. The size returned is the one :func:`load_image` gives.
    """
    path = Path(path)
    data = _read_picture(path)
    width, height, kind = _header(path, data)
    image = _check_pixel_data(path, data, kind, width, height)
    return (width, height) if image is None else (int(image.shape[1]), int(image.shape[0]))


def _header(path: Path, data: bytes) -> tuple[int, int, str]:
    """(width, height as shown, "jpeg" | "png" | "bmp" | "other") from the header, before any decoding.

    Pillow reads the header (size, and the EXIF orientation that the decoder applies); what a header
    cannot show, a file cut short, is checked here from the file's end.
    """
    kind = "jpeg" if data[:2] == b"\xff\xd8" else "png" if data[:8] == b"\x89PNG\r\n\x1a\n" else (
        "bmp" if data[:2] == b"BM" else "other")
    try:
        width, height = _other_size(data) if kind == "other" else _known_size(kind, data)
    except _HeaderError as exc:
        raise DataError(path, str(exc)) from None
    if width * height > MAX_PIXELS:
        raise DataError(
            path,
            f"the picture is {width}x{height} ({width * height / 1e6:.0f} megapixels), more than the "
            f"{MAX_PIXELS // 1_000_000}-megapixel limit: a damaged file, or shrink it first",
        )
    return width, height, kind


# Each format's header reader, called as Image.open calls it but without Image.open's own
# decompression-bomb check, so that a too-large picture gets our limit and its size in the message.
_READERS = {"jpeg": JpegImagePlugin.JpegImageFile, "png": PngImagePlugin.PngImageFile,
            "bmp": BmpImagePlugin.BmpImageFile}


def _known_size(kind: str, data: bytes) -> tuple[int, int]:
    """(width, height as shown) of a JPEG, PNG or BMP from Pillow's header reader, and whether the file
    reaches its end: the end-of-image marker after the JPEG scan, the PNG IEND chunk, the BMP's size."""
    name = kind.upper()
    if kind == "png" and data.rfind(b"IEND") < 0:
        raise _HeaderError("truncated PNG: the file ends before its IEND chunk")
    if kind == "bmp" and len(data) >= 6 and int.from_bytes(data[2:6], "little") > len(data):
        raise _HeaderError(f"truncated BMP: the header says {int.from_bytes(data[2:6], 'little')} bytes, "
                           f"the file has {len(data)}")
    try:
        picture = _READERS[kind](io.BytesIO(data))
    except Exception as exc:  # Pillow raises many kinds for a damaged header (SyntaxError, OSError, ...)
        if kind == "png":
            with contextlib.suppress(struct.error, IndexError):
                _check_png_data(data, pixels=False)  # names the damaged chunk, as the whole check would
        reason = str(exc).strip() or type(exc).__name__
        if reason == "not identified by this driver":  # Pillow's words for a header without a size
            reason = "it gives no picture size"
        ran_out = isinstance(exc.__cause__ or exc, (struct.error, IndexError, EOFError))  # Pillow wraps these
        if ran_out or "runcated" in reason:
            raise _HeaderError(f"truncated {name}: the file ends inside its header") from None
        raise _HeaderError(f"corrupt {name}: its header cannot be read ({reason})") from None
    width, height = picture.size
    if kind == "jpeg":
        if not picture.tile:  # the header ran to the end of the file without a start of scan
            raise _HeaderError("truncated JPEG: the file ends before the image data")
        # Pillow stops reading at the start of scan; the end-of-image marker closes the scan data (where
        # 0xFF is always followed by 0x00 or a restart marker), so looking from the file's end is quick.
        if data.rfind(b"\xff\xd9") < picture.fp.tell():
            raise _HeaderError("truncated JPEG: the file ends before the end of the image data")
        if _exif_orientation(picture) in (5, 6, 7, 8):  # turned by 90 degrees when shown
            return height, width
    return width, height


def _exif_orientation(picture: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright); 5..8 mean the picture is shown turned by 90 degrees."""
    try:
        orientation = picture.getexif().get(0x0112, 1)
    except Exception:  # damaged EXIF: the decoder ignores it too, and shows the picture as stored
        return 1
    return orientation if isinstance(orientation, int) else 1


def _other_size(data: bytes) -> tuple[int, int]:
    """Another format under a picture extension (a WebP saved as .jpg): its size from Pillow's header
    reader, so the pixel limit applies before anything is decoded; a format Pillow cannot size is refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own decompression-bomb warning: the limit is ours
            with Image.open(io.BytesIO(data)) as picture:
                return int(picture.size[0]), int(picture.size[1])
    except Exception as exc:  # Pillow raises many kinds for data it cannot read (even SyntaxError)
        if type(exc).__name__ == "DecompressionBombError":  # beyond Pillow's own (larger) limit
            raise _HeaderError(f"the picture is larger than the {MAX_PIXELS // 1_000_000}-megapixel limit") from None
        raise _HeaderError("not a readable picture (corrupt, or not a JPEG, PNG or BMP file)") from None


def _cv2_decode(data: bytes, flags: int) -> np.ndarray | None:
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        return None


def _check_pixel_data(path: Path, data: bytes, kind: str, width: int, height: int) -> np.ndarray | None:
    """DataError naming ``path`` if the pixel data after the header is damaged (see check_picture).

    Returns the picture decoded as :func:`load_image` decodes it where checking took a full decode
    (every format but JPEG, whose check decodes at 1/8 scale), else None.
    """
    try:
        if kind == "jpeg":
            _check_jpeg_data(data)
            return None
        if kind == "png":
            _check_png_data(data)
        image = _cv2_decode(data, cv2.IMREAD_COLOR)
        if image is None:
            raise _HeaderError("not a readable picture (corrupt, or not a JPEG, PNG or BMP file)")
        if image.shape[:2] not in ((height, width), (width, height)):  # (turned by an EXIF orientation)
            raise _HeaderError(f"corrupt picture: its header says {width}x{height} pixels, its data holds "
                               f"{image.shape[1]}x{image.shape[0]}")
        return image
    except _HeaderError as exc:
        raise DataError(path, str(exc)) from None
    except (struct.error, IndexError):
        raise DataError(path, "corrupt picture: a part of it is cut short") from None


# libjpeg's warnings (jerror.h) that do not mean damage: the picture decodes as it should.
_JPEG_HARMLESS_WARNINGS = ("Unknown Adobe color transform", "Warning: unknown JFIF revision",
                           "Invalid SOS parameters for sequential JPEG", "Application transferred too many scanlines")


def _check_jpeg_data(data: bytes) -> None:
    """Decodes every coefficient of a JPEG (at 1/8 scale: the inverse DCTs are what scaling saves) with
    libjpeg-turbo's corrupt-data warnings as errors; OpenCV and Pillow decode a garbled scan silently.

    JPEG has no checksum: a garble after which the Huffman codes fall back into step decodes without
    any complaint, here as anywhere. What libjpeg notices is caught.
    """
    try:
        try:
            _, _, colorspace, _ = simplejpeg.decode_jpeg_header(data, strict=False)
        except KeyError:  # simplejpeg has no name for the colour space libjpeg read (a damaged frame header)
            raise _HeaderError("corrupt JPEG: its header gives an unknown colour space") from None
        output = "CMYK" if colorspace in ("CMYK", "YCCK") else "GRAY"
        try:
            simplejpeg.decode_jpeg(data, colorspace=output, strict=True, min_factor=8)
        except ValueError as exc:
            if not (str(exc).startswith(_JPEG_HARMLESS_WARNINGS) or "bad ICC marker" in str(exc)):
                raise
            simplejpeg.decode_jpeg(data, colorspace=output, strict=False, min_factor=8)  # the rest, at least
    except (ValueError, RuntimeError) as exc:
        message = str(exc).strip() or type(exc).__name__
        if message.startswith(("Unsupported JPEG data precision", "Unsupported JPEG process")):
            raise _HeaderError(f"a JPEG of a kind that cannot be read ({message}): save it again as an ordinary "
                               "JPEG or PNG") from None
        raise _HeaderError(f"corrupt JPEG: its image data is damaged ({message})") from None


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _check_png_data(data: bytes, pixels: bool = True) -> None:
    """Every chunk's CRC, and the compressed pixel data inflated (streamed, a few MB at a time) to the
    length its header needs. Run before OpenCV decodes the picture: it finds the usual damage without
    libpng printing its complaints on stderr, and says which chunk. ``pixels=False`` stops at the pixel
    data: the chunks of the header alone, to say what is wrong with a header Pillow cannot read.
    """
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if colour not in _PNG_CHANNELS or depth not in _PNG_DEPTHS[colour] or interlace not in (0, 1):
        raise _HeaderError(f"corrupt PNG: its header has colour type {colour} with bit depth {depth}, "
                           f"interlace {interlace}")
    bits = depth * _PNG_CHANNELS[colour]
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    needed = 0
    for x0, y0, dx, dy in passes:
        columns, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if columns and rows:
            needed += rows * (1 + (columns * bits + 7) // 8)
    inflater, inflated, pos, ended = zlib.decompressobj(), 0, 8, False
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT" and not pixels:
            return
        end = pos + 12 + length
        if end > len(data):
            raise _HeaderError(f"truncated PNG: its {_chunk_name(kind)} chunk runs past the end of the file")
        body = data[pos + 8 : end - 4]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end - 4 : end])[0]:
            raise _HeaderError(f"corrupt PNG: its {_chunk_name(kind)} chunk fails its checksum (damaged data)")
        if kind == b"IDAT" and inflated < needed:
            try:
                chunk = inflater.decompress(body, 1 << 22)
                while chunk:
                    inflated += len(chunk)
                    if inflated >= needed:
                        break
                    chunk = inflater.decompress(inflater.unconsumed_tail, 1 << 22)
            except zlib.error as exc:
                raise _HeaderError(f"corrupt PNG: its compressed pixel data is damaged ({exc})") from None
        elif kind == b"IEND":
            ended = True
            break
        pos = end
    if not ended:
        raise _HeaderError("truncated PNG: the file ends before its IEND chunk")
    if inflated < needed:
        raise _HeaderError(f"corrupt PNG: its pixel data stops short of the {width}x{height} picture")


def _chunk_name(kind: bytes) -> str:
    return kind.decode("ascii") if kind.isalpha() else f"0x{kind.hex()}"


class _HeaderError(Exception):
    pass


# --------------------------------------------------------------------------------------------- labels


def face_boxes_px(boxes_px) -> list[tuple[float, float, float, float]]:
    """``None`` (no face), one ``(x1, y1, x2, y2)`` or a sequence of them, as a list of boxes."""
    if boxes_px is None:
        return []
    boxes = list(boxes_px)
    if len(boxes) == 4 and all(isinstance(v, (int, float, np.number)) for v in boxes):
        return [tuple(float(v) for v in boxes)]  # one box
    return [tuple(float(v) for v in box) for box in boxes]


def labelme_document(
    json_path: Path | str,
    image_path: Path | str,
    box_px,
    width: int,
    height: int,
) -> dict[str, Any]:
    """The labelme JSON document for one picture: a "face" rectangle per box, or no shapes without one.

    ``box_px`` is None (no face), one ``(x1, y1, x2, y2)`` in pixels, or a sequence of them (several
    faces). ``imagePath`` is relative to the JSON's folder (as labelme writes it) and ``imageData``
    is null, so labelme loads the picture from disk.
    """
    shapes = [
        {
            "label": FACE_LABEL,
            "points": [[x1, y1], [x2, y2]],
            "group_id": None,
            "description": "",
            "shape_type": "rectangle",
            "flags": {},
        }
        for x1, y1, x2, y2 in face_boxes_px(box_px)
    ]
    return {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": _relative_image_path(Path(image_path), Path(json_path)),
        "imageData": None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }


def write_labelme(
    json_path: Path | str,
    image_path: Path | str,
    box_px,
    width: int,
    height: int,
) -> None:
    """Write a labelme JSON for one picture (see :func:`labelme_document`: one box, several, or None).

    Atomic (``training.core.files``): a write that fails (a full disk) leaves the old label as it was and
    no temporary file behind; the OSError names the label.
    """
    json_path = Path(json_path)
    text = json.dumps(labelme_document(json_path, image_path, box_px, width, height), indent=2)
    try:
        atomic_write_text(json_path, text)
    except OSError as exc:  # named after the label, not the temporary file beside it
        raise OSError(exc.errno, exc.strerror or str(exc), str(json_path)) from exc


def _relative_image_path(image_path: Path, json_path: Path) -> str:
    try:
        return Path(os.path.relpath(image_path.resolve(), json_path.parent.resolve())).as_posix()
    except ValueError:  # on another drive (Windows): no relative path exists
        return image_path.resolve().as_posix()


def _fmt(value: float) -> str:
    if abs(value) >= 1e7:
        return f"{value:.3g}"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _describe(value: Any) -> str:
    """A JSON value as a message shows it: short, whatever its size, type or characters."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**15 else f"a {len(str(abs(value)))}-digit number"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return repr(value) if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short_json(value: Any) -> str:
    """A JSON value written out for a message, cut to 60 characters."""
    if isinstance(value, (dict, str)) or value is None:
        return _describe(value)
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        return _describe(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_json(json_path: Path) -> Any:
    """The parsed JSON of a label file; DataError naming it for anything that is not reasonable JSON
    (through :func:`training.core.inputs.read_json`: regular files only, size, depth and number length bounded)."""
    return read_json(json_path, max_bytes=MAX_LABEL_BYTES, error=DataError, what="label file")


def _check_claimed_size(json_path: Path, document: dict, width: int, height: int) -> None:
    claimed = []
    for key in ("imageWidth", "imageHeight"):
        value = document.get(key)
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if value is not None and not (_is_number(value) and whole and 0 <= value < 2**31):
            raise DataError(json_path, f'"{key}" should be a whole number of pixels, got {_describe(value)}')
        claimed.append(None if value is None else int(value))
    if claimed[0] in (None, width) and claimed[1] in (None, height):
        return
    shown = "x".join("?" if v is None else str(v) for v in claimed)
    raise DataError(
        json_path,
        f"labelled for a {shown} picture but the picture is {width}x{height} "
        "(was it resized or replaced after labelling?)",
    )


def _face_shapes(json_path: Path, shapes: list) -> list[dict]:
    """The shapes labelled "face"; DataError for a shape that is not what labelme writes."""
    faces = []
    for number, shape in enumerate(shapes, 1):
        if not isinstance(shape, dict):
            raise DataError(json_path, f"shape {number} should be an object with a label and points, "
                                       f"got {_describe(shape)}")
        label = shape.get("label", "")
        if not isinstance(label, str):
            raise DataError(json_path, f'shape {number}\'s "label" should be text, got {_describe(label)}')
        if label.strip().lower() == FACE_LABEL:
            faces.append(shape)
    return faces


def _rectangle_box(json_path: Path, shape: dict, width: int, height: int, which: str) -> tuple[float, ...]:
    """A "face" rectangle in pixels, sorted and clipped; DataError naming what is wrong with it."""
    points = shape.get("points")
    if not (isinstance(points, list) and len(points) == 2
            and all(isinstance(p, list) and len(p) == 2 for p in points)):
        raise DataError(json_path, f"the \"face\" rectangle{which} needs two [x, y] corner points, "
                                   f"got {_short_json(points)}")
    values = []
    for value in (points[0][0], points[0][1], points[1][0], points[1][1]):
        if not _is_number(value):
            raise DataError(json_path, f"the \"face\" rectangle{which} has a corner that is not a number: "
                                       f"{_describe(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise DataError(json_path, f"the \"face\" rectangle{which} has a corner too large for a number: "
                                       f"{_describe(value)}") from None
        if not math.isfinite(number):
            raise DataError(json_path, f"the \"face\" rectangle{which} has a non-numeric corner: {_describe(value)}")
        values.append(number)
    return checked_box(json_path, values, width, height, f"box{which}", "image")


def checked_box(path: Path, corners, width: int, height: int, what: str = "box",
                frame: str = "image") -> tuple[float, float, float, float]:
    """A box given by two corners in any order, sorted and clipped to the ``width`` x ``height`` picture;
    DataError naming ``path`` when it lies or reaches outside (beyond BOX_TOLERANCE_PX) or has no size.
    The one rule every label reader (labelme here, COCO/YOLO/VOC in training.data.formats) applies."""
    x1, y1, x2, y2 = ordered(corners)  # a rectangle may be dragged from any corner
    shown = f"[{_fmt(x1)}, {_fmt(y1)}, {_fmt(x2)}, {_fmt(y2)}]"
    tol = BOX_TOLERANCE_PX
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise DataError(path, f"{what} {shown} lies outside the {width}x{height} {frame}")
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        raise DataError(path, f"{what} {shown} reaches outside the {width}x{height} {frame}")
    x1, y1, x2, y2 = clipped((x1, y1, x2, y2), width, height)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise DataError(path, f"{what} {shown} has zero size ({_fmt(x2 - x1)}x{_fmt(y2 - y1)} px)")
    return x1, y1, x2, y2


def read_faces(json_path: Path, width: int, height: int) -> tuple[Box, ...]:
    """Every normalised face box of a labelme file, largest first (``()`` without a face); DataError on a bad label.

    ``width`` and ``height`` are the picture's real size: boxes are normalised by it, whatever
    size the JSON claims. Any odd content (wrong types, numbers too large for a float, deep nesting)
    is a DataError naming the file, never another exception.
    """
    json_path = Path(json_path)
    document = _read_json(json_path)
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list):
        raise DataError(json_path, "not a labelme file: it has no \"shapes\" list")
    _check_claimed_size(json_path, document, width, height)

    faces = _face_shapes(json_path, document["shapes"])
    if not faces:
        return ()
    rectangles = [s for s in faces if s.get("shape_type") == "rectangle"]
    if not rectangles:
        kind = faces[0].get("shape_type") or "polygon"  # labelme reads a missing shape_type as a polygon
        kind = kind if isinstance(kind, str) and kind.isidentifier() else _describe(kind)
        raise DataError(
            json_path,
            f"the \"face\" shape is a {kind}, not a rectangle: redraw it with labelme's Create Rectangle tool",
        )
    boxes = []
    for number, shape in enumerate(rectangles, 1):
        which = f" {number} of {len(rectangles)}" if len(rectangles) > 1 else ""
        boxes.append(_rectangle_box(json_path, shape, width, height, which))
    boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))  # stable: the first of equals stays first
    return tuple((x1 / width, y1 / height, x2 / width, y2 / height) for x1, y1, x2, y2 in boxes)


def several_faces_note(json_path: Path, boxes: tuple[Box, ...], width: int, height: int) -> Problem:
    """The warning a single-face model gives for a picture with several faces: which one it uses."""
    x1, y1, x2, y2 = boxes[0]
    return Problem(json_path, f"{len(boxes)} \"face\" rectangles: a single-face model finds one face, so the "
                              f"largest, [{_fmt(x1 * width)}, {_fmt(y1 * height)}, {_fmt(x2 * width)}, "
                              f"{_fmt(y2 * height)}], is used")


def read_label(
    json_path: Path,
    width: int,
    height: int,
    warn: Callable[[Problem], None] | None = None,
) -> Box:
    """The largest normalised face box of a labelme file (NO_BOX without a face); see :func:`read_faces`.

    With several "face" rectangles ``warn`` is told (:func:`several_faces_note`), naming the file.
    """
    boxes = read_faces(json_path, width, height)
    if not boxes:
        return NO_BOX
    if len(boxes) > 1 and warn is not None:
        warn(several_faces_note(Path(json_path), boxes, width, height))
    return boxes[0]


# --------------------------------------------------------------------------------------------- dataset


def split_of(stem: str, val_fraction: float = 0.15, test_fraction: float = 0.15) -> str:
    """The split a picture belongs to in a flat dataset, from a hash of its file stem.

    The hash puts each name at a fixed point in [0, 1), so adding pictures never moves old ones.
    """
    bucket = int.from_bytes(hashlib.sha1(stem.encode("utf-8")).digest()[:8], "big") / 2**64
    if bucket < test_fraction:
        return "test"
    if bucket < test_fraction + val_fraction:
        return "val"
    return "train"


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a training run: the ``config.json`` that every run writes first.

    Such a folder is never read as pictures or labels (``--out`` pointed into the dataset): its
    losses.png, pr_curve.png, prediction grids and config/metrics JSON are the run's, not the user's.
    """
    try:
        document = read_json(folder / "config.json", max_bytes=2**24)
    except ValueError:  # training.core.inputs.InputError: missing, a named pipe, not JSON...
        return False
    return isinstance(document, dict) and isinstance(document.get("config"), dict) and "shapes" not in document


def _visible_files(folder: Path) -> list[Path]:
    """The files of a folder that may be pictures or labels: not hidden; none in a run folder."""
    if not folder.is_dir() or is_run_folder(folder):
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


UNDECODABLE_NAME = ("its file name is not valid UTF-8 text (a name from another system's encoding): labels "
                    "cannot name it; rename the picture")


def _run_folder_note(folder: Path) -> Problem:
    return Problem(folder, "holds a training run (its config.json): none of its files is read as a picture or "
                           "a label; keep run folders (--out) outside the dataset")


def _find_pictures(
    images_dir: Path, labels_dir: Path, report: Callable[[Problem], None]
) -> tuple[dict[str, Path], dict[str, Path], int]:
    """One folder's pictures and label files by stem (the labels folder wins over a JSON beside the
    picture), and how many pictures there are; unsupported formats and repeated names are reported."""
    pictures: dict[str, Path] = {}
    picture_count = 0
    for path in _visible_files(images_dir):
        suffix = path.suffix.lower()
        if suffix in UNSUPPORTED_IMAGE_EXTENSIONS:
            report(Problem(path, f"unsupported picture format {suffix}: convert it to JPEG or PNG"))
        if suffix not in IMAGE_EXTENSIONS:
            continue
        picture_count += 1
        if has_undecodable_name(path.name):
            report(Problem(path, UNDECODABLE_NAME))
            continue
        if path.stem in pictures:
            report(Problem(path, f"another picture has the same name ({pictures[path.stem].name}); "
                                 "labels pair with pictures by name, so this one is skipped"))
            continue
        pictures[path.stem] = path

    labels: dict[str, Path] = {}
    for folder in dict.fromkeys((labels_dir, images_dir)):  # the labels folder wins over a JSON beside
        for path in _visible_files(folder):
            if path.suffix.lower() == ".json" and not has_undecodable_name(path.name):
                labels.setdefault(path.stem, path)
    return pictures, labels, picture_count


def _read_folder(
    images_dir: Path, labels_dir: Path, report: Callable[[Problem], None], warn: Callable[[Problem], None]
) -> tuple[list[Sample], int]:
    """Samples of one folder of pictures (labels in ``labels_dir`` or beside them); and how many pictures.

    Every picture's pixel data is checked (:func:`check_picture`), so training never meets a damaged one.
    """
    pictures, labels, picture_count = _find_pictures(images_dir, labels_dir, report)
    for folder in dict.fromkeys((images_dir, labels_dir)):
        if is_run_folder(folder):
            warn(_run_folder_note(folder))
    for stem, json_path in labels.items():
        if stem not in pictures:
            report(Problem(json_path, f"no picture for this label: expected {stem}.jpg (or .jpeg, .png, .bmp) "
                                      f"in {images_dir}"))

    samples = []
    for stem, image_path in pictures.items():
        label_path = labels.get(stem)
        try:
            width, height = check_picture(image_path)
            boxes = () if label_path is None else read_faces(label_path, width, height)
        except DataError as exc:
            problem = Problem(exc.path, exc.message)
        else:  # several faces: all kept (Dataset.several_faces_notes says what a single-face model uses)
            samples.append(Sample(image_path, label_path, bool(boxes), boxes[0] if boxes else NO_BOX, width, height,
                                  boxes))
            continue
        report(problem)  # outside the except: a strict DataError should not chain onto the first one
    return samples, picture_count


def detect_layout(root: Path) -> str:
    """"split", "flat" or "beside", from the folders present (a run folder named like a split is not one)."""
    if any((root / name).is_dir() and not is_run_folder(root / name) for name in SPLITS):
        return "split"
    if (root / "labels").is_dir():
        return "flat"
    return "beside"


def _layout_folders(root: Path, layout: str) -> list[tuple[str | None, Path, Path]]:
    """(split name or None, pictures folder, labels folder) of each folder of pictures in a layout."""
    if layout == "split":
        folders: list[tuple[str | None, Path, Path]] = []
        for name in SPLITS:
            folder = root / name
            images_dir = folder / "images" if (folder / "images").is_dir() else folder
            labels_dir = folder / "labels" if (folder / "labels").is_dir() else images_dir
            folders.append((name, images_dir, labels_dir))
        return folders
    images_dir = root / "images" if (root / "images").is_dir() else root
    labels_dir = root / "labels" if layout == "flat" else images_dir
    return [(None, images_dir, labels_dir)]


def _require_dataset_folder(root: Path) -> None:
    if not root.exists():
        raise DataError(root, "the dataset folder does not exist")
    if not root.is_dir():
        raise DataError(root, "not a folder: give the dataset folder that holds the pictures")


def _no_pictures_error(root: Path, layout: str) -> DataError:
    runs = [str(images) for _, images, _ in _layout_folders(root, layout) if is_run_folder(images)]
    hint = f" ({', '.join(runs)} holds a training run, and run folders are not read)" if runs else ""
    return DataError(
        root,
        f"no pictures found{hint}: expected train/val/test folders, images/ + labels/ folders, or "
        f"{', '.join(IMAGE_EXTENSIONS)} pictures with labelme .json files beside them",
    )


def label_path_for(image_path: Path) -> Path:
    """Where a new label for a picture goes: ``../labels/<stem>.json`` for a picture in an ``images``
    folder (the tutorial's layout), else beside the picture (labelme's default)."""
    image_path = Path(image_path)
    if image_path.parent.name == "images":
        return image_path.parent.parent / "labels" / f"{image_path.stem}.json"
    return image_path.with_suffix(".json")


def picture_label_paths(root: Path | str) -> tuple[list[tuple[Path, Path]], list[Problem]]:
    """Every picture of a dataset folder (any layout) with its label's path, without reading either.

    The label path is the JSON that :func:`load_dataset` pairs with the picture when there is one,
    else where a new label goes (:func:`label_path_for`), so whatever writes there is read back.
    Pictures that cannot be paired (a repeated name, an unsupported format) are returned as problems.
    Raises DataError for a missing folder or one without pictures.
    """
    root = Path(root)
    _require_dataset_folder(root)
    problems: list[Problem] = []
    pairs: list[tuple[Path, Path]] = []
    picture_count = 0
    layout = detect_layout(root)
    for _split, images_dir, labels_dir in _layout_folders(root, layout):
        pictures, labels, count = _find_pictures(images_dir, labels_dir, problems.append)
        picture_count += count
        pairs.extend((path, labels.get(stem) or label_path_for(path)) for stem, path in pictures.items())
    if picture_count == 0:
        raise _no_pictures_error(root, layout)
    return pairs, problems


def load_dataset(
    root: Path | str,
    *,
    strict: bool = False,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> Dataset:
    """Read and check every picture and label under ``root``.

    Bad files are skipped and listed in ``Dataset.problems``; with ``strict`` the first one raises
    :class:`DataError`. Every picture is checked down to its pixel data, so what is returned can be
    trained on. Files that are used but deserve a look (a run folder inside the dataset) are listed
    in ``Dataset.warnings``; a label with several faces is not one of them (every face is kept:
    ``Dataset.several_faces_notes`` is what a single-face model warns with). ``val_fraction`` and
    ``test_fraction`` only apply to flat and beside layouts.
    """
    root = Path(root)
    _require_dataset_folder(root)
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction + test_fraction must be in [0, 1), got {val_fraction} + {test_fraction}")

    problems: list[Problem] = []
    notes: list[Problem] = []

    def report(problem: Problem) -> None:
        if strict:
            raise DataError(problem.path, problem.message)
        problems.append(problem)

    layout = detect_layout(root)
    splits: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    picture_count = 0
    for split, images_dir, labels_dir in _layout_folders(root, layout):
        samples, count = _read_folder(images_dir, labels_dir, report, notes.append)
        picture_count += count
        if split is not None:
            splits[split] = samples
        else:
            for sample in samples:
                splits[split_of(sample.image_path.stem, val_fraction, test_fraction)].append(sample)
    if picture_count == 0:
        raise _no_pictures_error(root, layout)
    return Dataset(root=root, layout=layout, splits=splits, problems=problems, warnings=notes)
