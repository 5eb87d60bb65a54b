"""Pictures: which files are pictures, and reading one safely (``load_image``, ``image_size``,
``check_picture``).

A picture's size is read from its header before anything is decoded (a few hundred bytes can declare
40000x40000 pixels), and its pixel data is checked (JPEG scan data, PNG chunk CRCs and compressed data,
a file's end where its format says it should be), so a damaged picture is a :class:`DataError` naming
it, never an OpenCV exception or a half-grey picture in the middle of an epoch.

No TensorFlow here: the desktop app reads pictures without loading it.
"""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import simplejpeg
from PIL import BmpImagePlugin, Image, JpegImagePlugin, PngImagePlugin

from training.core.inputs import read_bytes
from training.data.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
UNSUPPORTED_IMAGE_EXTENSIONS = (".webp", ".gif", ".tif", ".tiff", ".heic", ".avif")
# A picture's pixel count is checked from its header before it is decoded: 100 megapixels is well above
# a 48-megapixel phone photo (8000x6000); a larger header is a damaged file or a decompression bomb.
MAX_PIXELS = 100_000_000
MAX_PICTURE_BYTES = 1 * 2**30  # a 100-megapixel PNG of noise is about 300 MB; more is no picture of ours


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
