"""Picture headers read with Pillow (``training.data.pictures.image_size``), and the checks of a file's end that a
header alone cannot make: the JPEG end-of-image marker, the PNG IEND chunk, the BMP's declared size."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from training.data.dataset import DataError
from training.data.pictures import check_picture, image_size, load_image

W, H = 96, 64


def jpeg_with_thumbnail() -> bytes:
    """A JPEG whose EXIF block carries a thumbnail: a whole small JPEG, end-of-image marker included,
    before the picture's own scan data."""
    rng = np.random.default_rng(1)
    rgb = cv2.resize((rng.random((4, 6, 3)) * 255).astype(np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    thumbnail = io.BytesIO()
    Image.fromarray(rgb).resize((24, 16)).save(thumbnail, "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 8  # shown turned by 90 degrees
    tiff = exif.tobytes()  # "Exif\0\0" + TIFF data, without a thumbnail yet
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", exif=tiff)
    data = buffer.getvalue()
    assert data.find(b"\xff\xd9") == len(data) - 2
    # Put the thumbnail's bytes inside the APP1 segment (after the EXIF data): a reader that looks for
    # the end-of-image marker from the start of the file meets the thumbnail's first.
    app1 = data.find(b"\xff\xe1")
    (length,) = struct.unpack(">H", data[app1 + 2 : app1 + 4])
    grown = data[app1 + 4 : app1 + 2 + length] + thumbnail.getvalue()
    return data[:app1] + b"\xff\xe1" + struct.pack(">H", len(grown) + 2) + grown + data[app1 + 2 + length :]


def test_a_jpeg_is_sized_as_shown_and_its_end_is_checked(tmp_path: Path):
    data = jpeg_with_thumbnail()
    whole = tmp_path / "whole.jpg"
    whole.write_bytes(data)
    assert image_size(whole) == check_picture(whole) == (H, W)  # turned by its EXIF orientation
    assert load_image(whole).shape[:2] == (W, H)

    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) - 200])  # the thumbnail's end marker is still in the file
    with pytest.raises(DataError, match="truncated JPEG: the file ends before the end of the image data"):
        image_size(cut)
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(data + b"\0" * 300 + b"camera maker's trailer")  # after the end marker: harmless
    assert image_size(padded) == (H, W)
    header_only = tmp_path / "header.jpg"
    header_only.write_bytes(data[: data.rfind(b"\xff\xda")])  # up to the picture's own scan
    with pytest.raises(DataError, match="truncated JPEG: the file ends before the image data"):
        image_size(header_only)


def test_a_damaged_jpeg_header_names_the_file(tmp_path: Path):
    data = bytearray(cv2.imencode(".jpg", np.zeros((H, W, 3), np.uint8))[1].tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 0, 0)
    path = tmp_path / "zero.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt JPEG: its header cannot be read") as caught:
        image_size(path)
    assert caught.value.path == path


def test_png_and_bmp_ends_and_header_checksums(tmp_path: Path):
    png = cv2.imencode(".png", np.zeros((H, W, 3), np.uint8))[1].tobytes()
    path = tmp_path / "p.png"
    path.write_bytes(png)
    assert image_size(path) == (W, H)
    path.write_bytes(png[:-12])  # no IEND
    with pytest.raises(DataError, match="truncated PNG: the file ends before its IEND chunk"):
        image_size(path)
    damaged = bytearray(png)
    damaged[29:33] = struct.pack(">I", zlib.crc32(bytes(damaged[12:29])) ^ 1)  # the IHDR checksum
    path.write_bytes(bytes(damaged))
    for read in (image_size, check_picture):  # the same words from the header read and the whole check
        with pytest.raises(DataError, match="corrupt PNG: its IHDR chunk fails its checksum"):
            read(path)

    bmp = cv2.imencode(".bmp", np.zeros((H, W, 3), np.uint8))[1].tobytes()
    path = tmp_path / "p.bmp"
    path.write_bytes(bmp)
    assert image_size(path) == (W, H)
    path.write_bytes(bmp[:-100])
    with pytest.raises(DataError, match=f"truncated BMP: the header says {len(bmp)} bytes, the file has"):
        image_size(path)
