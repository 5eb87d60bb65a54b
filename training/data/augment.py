"""Batches for training and validation, with the tutorial's augmentations applied on the fly.

The tutorial wrote 60 augmented copies of every picture to disk. Here each picture is decoded once,
kept in memory at about twice the model's input size, and augmented afresh every epoch, so the
model never sees the same copy twice and nothing is written to disk.

Augmentation (albumentations, boxes in its normalised ``x1, y1, x2, y2`` format) follows the
tutorial: a random crop, horizontal and vertical flips, brightness/contrast, gamma and RGB shifts.
The crop is relative (up to 15 % off each side, 10 % off the top and bottom) rather than the
tutorial's fixed 450x450 pixels, so any picture size works, and the crop is resized to the model's
square input the way inference resizes a whole frame. When the crop leaves less than
``MIN_VISIBILITY`` of the face, the sample becomes a no-face sample, as in the tutorial.
Validation batches are not augmented: the whole picture resized, exactly as at inference.

The grid models' pipeline (``jitter``) also covers what a webcam shows (issue 18): faces from far away
to selfie-sized (:class:`ZoomOnFace` zooms in on a face, up to ``ZOOM_IN_MAX`` times; ``A.Affine``
zooms in and out), grey pictures, defocus and motion blur, sensor noise and JPEG quality 30-95. Every
geometric step moves the boxes exactly as the pixels (crops on whole pixels, symmetric blur kernels).

For the multi-face model (``max_faces``) every face moves with the picture and the batches carry
them all, largest first. A dataset larger than memory streams from disk instead
(``cache="stream"``: a ``tf.data`` pipeline decoding and augmenting in parallel, each picture's
decoded array kept on disk after its first read: :class:`DiskCache`), giving the same batches as the
in-memory cache; ``cache="auto"`` picks by the estimated size (:func:`cache_plan`).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import queue
import random
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations checks PyPI on import otherwise

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.augmentations.crops.transforms import BaseCrop  # noqa: E402

from training.core.files import atomic_path, atomic_write_bytes, remove_stale_temporaries  # noqa: E402
from training.core.preprocess import box_to_pixels, preprocess_frame  # noqa: E402
from training.data.dataset import NO_BOX, Sample  # noqa: E402
from training.data.pictures import load_image  # noqa: E402

CACHE_SCALE = 2.0  # cached pictures keep a shorter side of CACHE_SCALE * input_size pixels
PREFETCH_BATCHES = 2  # streamed batches made ahead of training (bounded: what an abandoned pass wastes)
MIN_VISIBILITY = 0.3  # a face cropped to less than this fraction of its area is no longer a face
# The tutorial flips vertically half the time. A webcam never shows an upside-down face, but measured
# on the demo data (tiny model, 1100 steps) it did not hurt: validation IoU 0.65 with it, 0.60 without.
# So we keep the tutorial's choice.
VERTICAL_FLIP_P = 0.5
# The grid recipe's zoom on a face (ZoomOnFace): how often, how far, and how wide a face may become (a share
# of the picture's width: 0.5 is a 320 px face in a 640x480 frame, a user close to the camera).
ZOOM_IN_P = 0.35
ZOOM_IN_MAX = 2.5  # the cache keeps pictures at CACHE_SCALE x the input, so this zoom stays about that sharp
ZOOM_IN_FACE_WIDTH = 0.5
JPEG_QUALITY = (30, 95)  # a cheap webcam's JPEG, as the real-face demo data has


class ZoomOnFace(BaseCrop):
    """Zoom in on one face: a crop of the picture's own shape, ``1/zoom`` of its sides, that holds a face
    (one drawn at random) whole, so faces become as big as a user's close to the camera. Pictures without
    a face are zoomed the same way, so a zoomed look never tells a face. Whole-pixel crops, so the boxes
    stay exact (albumentations moves them)."""

    class InitSchema(BaseCrop.InitSchema):
        zoom: tuple[float, float]
        max_face_width: float

    def __init__(self, zoom: tuple[float, float] = (1.0, ZOOM_IN_MAX), max_face_width: float = ZOOM_IN_FACE_WIDTH,
                 p: float = 1.0):
        super().__init__(p=p)
        self.zoom = zoom
        self.max_face_width = max_face_width

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict[str, tuple[int, int, int, int]]:
        height, width = params["shape"][:2]
        boxes = data.get("bboxes", [])
        zoom = self.py_random.uniform(*self.zoom)
        face = None
        if len(boxes):
            x1, y1, x2, y2 = (float(v) for v in np.asarray(boxes[self.py_random.randrange(len(boxes))][:4])
                              * [width, height, width, height])
            face = (x1, y1, x2, y2)
            # Never wider than max_face_width of the picture, and always whole inside the crop.
            zoom = max(1.0, min(zoom, self.max_face_width * width / max(x2 - x1, 1e-6),
                                width / max(x2 - x1, 1e-6), height / max(y2 - y1, 1e-6)))
        crop_w, crop_h = max(1, min(width, round(width / zoom))), max(1, min(height, round(height / zoom)))
        x0 = self._start(width, crop_w, None if face is None else (face[0], face[2]))
        y0 = self._start(height, crop_h, None if face is None else (face[1], face[3]))
        return {"crop_coords": (x0, y0, x0 + crop_w, y0 + crop_h)}

    def _start(self, side: int, crop: int, span: tuple[float, float] | None) -> int:
        """Where a crop of ``crop`` pixels starts on a side of ``side``: anywhere, or so that it holds ``span``."""
        lo, hi = 0, side - crop
        if span is not None:
            lo, hi = max(lo, math.ceil(span[1]) - crop), min(hi, math.floor(span[0]))
            if lo > hi:  # a face too big for the crop (rounding): centre it
                return int(np.clip(round((span[0] + span[1] - crop) / 2), 0, side - crop))
        return self.py_random.randint(lo, hi)


def build_augmenter(input_size: int, jitter: bool = False) -> A.Compose:
    """The albumentations pipeline: crop to ``input_size`` square first, so colour work runs on few pixels.

    ``jitter`` (the grid recipe) zooms in on a face now and then (:class:`ZoomOnFace`), moves, scales
    and slightly turns the whole picture, so every face is seen from far away to selfie-sized at many
    places, adds what a cheap webcam does (grey, blur, noise, JPEG) and drops the vertical flip (a
    webcam never shows an upside-down face); without it, the tutorial's pipeline.
    """
    geometry: list = []
    if jitter:
        geometry.append(ZoomOnFace(p=ZOOM_IN_P))
        geometry.append(A.Affine(scale=(0.6, 1.3), translate_percent={"x": (-0.2, 0.2), "y": (-0.2, 0.2)},
                                 rotate=(-8, 8), keep_ratio=True, border_mode=cv2.BORDER_CONSTANT, fill=0, p=0.8))
    geometry += [
        A.RandomCropFromBorders(crop_left=0.15, crop_right=0.15, crop_top=0.1, crop_bottom=0.1, p=1.0),
        A.Resize(input_size, input_size, interpolation=cv2.INTER_LINEAR, area_for_downscale="image"),
        A.HorizontalFlip(p=0.5),
    ]
    if not jitter:
        geometry.append(A.VerticalFlip(p=VERTICAL_FLIP_P))
    colour = [
        A.RandomBrightnessContrast(p=0.5 if jitter else 0.2),
        A.RandomGamma(p=0.3 if jitter else 0.2),
        A.RGBShift(p=0.2),
    ]
    if jitter:
        # Faces a user's camera will see in other light, colour and sharpness. Measured on real faces
        # (10 CPU-minutes each): mean IoU 0.61 -> 0.67 on new pictures of the training people and
        # 0.52 -> 0.55 on people never seen; F1 0.83 -> 0.78 and 0.65 -> 0.67. Then widened to a cheap
        # webcam's range (issue 18): more grey, motion blur (centred: the face does not move), sensor
        # noise of a webcam (sigma 2.5-20 of 255, not albumentations' default 50-110) and JPEG 30-95.
        colour += [A.ToGray(p=0.15),
                   A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 5), allow_shifted=False)],
                           p=0.25),
                   A.HueSaturationValue(p=0.3), A.Downscale(scale_range=(0.5, 0.9), p=0.2), A.CLAHE(p=0.1),
                   # Last, as in a camera: sensor noise (after CLAHE, which would multiply it), then JPEG.
                   A.GaussNoise(std_range=(0.01, 0.08), p=0.3), A.ImageCompression(quality_range=JPEG_QUALITY, p=0.4)]
    return A.Compose(
        geometry + colour,
        bbox_params=A.BboxParams(
            format="albumentations", label_fields=["labels"], min_visibility=MIN_VISIBILITY, clip=True
        ),
    )


def _largest_first(boxes: np.ndarray) -> np.ndarray:
    """Boxes (n, 4) ordered by area, largest first (ties keep their order)."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[np.argsort(-areas, kind="stable")]


def decode_for_batches(path: Path | str, input_size: int, augment: bool) -> np.ndarray:
    """A picture as batches start from: for augmentation, BGR with its shorter side shrunk to
    ``CACHE_SCALE * input_size`` (never enlarged); without, the final model input as uint8 (exact:
    whole values). The one decode both the in-memory and the streamed batches use."""
    image = load_image(path)
    if not augment:
        return preprocess_frame(image, input_size).astype(np.uint8)
    height, width = image.shape[:2]
    scale = CACHE_SCALE * input_size / min(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


DISK_CACHE_FOLDER = ".facetracker_cache"  # hidden: the dataset scan never reads it as pictures
DISK_CACHE_FORMAT = 1  # part of the cache's key: raise it when what decode_for_batches makes changes


_NPY_HEADER = re.compile(r"\{'descr': '\|u1', 'fortran_order': False, 'shape': \((\d+), (\d+), 3\), \}\s*")


def read_cached_picture(path: Path | str) -> np.ndarray | None:
    """A decoded picture from a disk-cache file (an .npy array), or None if it cannot be read or is not
    a picture (missing, cut short by a crash, damaged): the caller decodes the picture again.

    The header is matched here rather than by ``np.load``, which parses it with ``ast.literal_eval``:
    CPython 3.11 can fail that ("AST constructor recursion depth mismatch") when tf.data's threads and
    the main thread parse at once, and it stopped a streamed epoch."""
    try:
        with open(path, "rb") as handle:
            data = bytearray(handle.read())
    except OSError:
        return None
    if data[:6] != b"\x93NUMPY" or len(data) < 10:
        return None
    length_bytes, start = (2, 10) if data[6] == 1 else (4, 12)
    length = int.from_bytes(data[8:8 + length_bytes], "little")
    match = _NPY_HEADER.fullmatch(data[start:start + length].decode("latin-1"))
    if match is None:
        return None
    height, width = int(match.group(1)), int(match.group(2))
    body = memoryview(data)[start + length:]
    if height < 1 or width < 1 or len(body) != height * width * 3:
        return None
    return np.frombuffer(body, np.uint8).reshape(height, width, 3)


def write_cached_picture(path: Path | str, image: np.ndarray) -> None:
    """Write a decoded picture as an .npy file atomically (a reader sees the whole array or none); OSError
    if the folder cannot be written."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(image), allow_pickle=False)


class DiskCache:
    """Decoded pictures kept on disk, so that a streamed epoch after the first reads arrays instead of
    decoding and shrinking every picture again (Ultralytics' ``cache="disk"``).

    The first time a picture is read it is decoded (and checked) as always, and the result is written
    as an .npy file in a hidden ``.facetracker_cache/<key>/`` folder beside it: the key names what the
    array is (``v1-short256``: shrunk to a shorter side of 256 pixels for augmentation;
    ``v1-input128``: the 128x128 model input for validation), and the file's name carries the picture's
    size and modification time, so an edited picture or another input size never reads a stale array
    (the stale file is deleted when its replacement is written). A folder that cannot be written (a
    read-only dataset) is remembered and its pictures are decoded every time, as without a cache. The
    folders can be deleted at any time.
    """

    def __init__(self, input_size: int, augment: bool):
        self.input_size, self.augment = int(input_size), bool(augment)
        kind = f"short{round(CACHE_SCALE * self.input_size)}" if self.augment else f"input{self.input_size}"
        self.key = f"v{DISK_CACHE_FORMAT}-{kind}"
        self.reads = self.writes = self.decodes = 0  # what the cache did (tests and benchmarks look)
        self.unwritable: set[Path] = set()  # cache folders that could not be written: decoded every time
        self._lock = threading.Lock()
        self._listed: dict[Path, dict[str, set[str]]] = {}  # cache folder -> picture name -> its cache files

    def folder(self, picture: Path | str) -> Path:
        """The cache folder of a picture: ``.facetracker_cache/<key>`` in the picture's folder."""
        return Path(picture).parent / DISK_CACHE_FOLDER / self.key

    def picture(self, path: Path | str) -> np.ndarray:
        """The picture as :func:`decode_for_batches` makes it: from its cache file when one is current,
        else decoded (DataError naming the file, as always) and written to the cache."""
        path = Path(path)
        try:
            stat = path.stat()
        except OSError:
            return self._decode(path)  # gone or unreadable: the decode says so, naming the file
        folder = self.folder(path)
        name = f"{path.name}.{stat.st_size}-{stat.st_mtime_ns}.npy"
        known = self._known(folder, path.name)
        if name in known:
            image = read_cached_picture(folder / name)
            if image is not None and (self.augment or image.shape == (self.input_size, self.input_size, 3)):
                with self._lock:
                    self.reads += 1
                return image
        image = self._decode(path)
        if folder not in self.unwritable:
            self._write(folder, path.name, name, image, known)
        return image

    def _decode(self, path: Path) -> np.ndarray:
        with self._lock:
            self.decodes += 1
        return decode_for_batches(path, self.input_size, self.augment)

    def _known(self, folder: Path, picture_name: str) -> set[str]:
        """The cache files of a picture, from one listing of its cache folder (not a file check per read)."""
        with self._lock:
            listed = self._listed.get(folder)
            if listed is None:
                listed = self._listed[folder] = {}
                with contextlib.suppress(OSError):
                    remove_stale_temporaries(folder)  # what a killed run's half-written files left
                    for entry in os.scandir(folder):
                        parts = entry.name.rsplit(".", 2)
                        if len(parts) == 3 and parts[2] == "npy":
                            listed.setdefault(parts[0], set()).add(entry.name)
            return listed.setdefault(picture_name, set())

    def _write(self, folder: Path, picture_name: str, name: str, image: np.ndarray, known: set[str]) -> None:
        try:
            write_cached_picture(folder / name, image)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # not a temporary file another run cleaned up: the folder is shut
                with self._lock:
                    self.unwritable.add(folder)
            return
        with self._lock:
            self.writes += 1
            stale = known - {name}
            known.clear()
            known.add(name)
        for old in stale:  # the picture changed: its old array would never be read again
            with contextlib.suppress(OSError):
                (folder / old).unlink()


class _Batches(keras.utils.PyDataset):
    """What the in-memory and the streamed batches share: the order of an epoch and the item function.

    Both give the same batches for the same seed and epoch because both call :meth:`targets`; they
    differ only in where the decoded picture comes from (a cache, or the file each time).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        *,
        input_size: int,
        batch_size: int = 8,
        augment: bool = False,
        shuffle: bool = False,
        seed: int = 0,
        jitter: bool = False,
        max_faces: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not samples:
            raise ValueError("no samples to make batches from")
        if input_size < 8:
            raise ValueError(f"input_size must be at least 8 pixels, got {input_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if max_faces < 0:
            raise ValueError(f"max_faces must be 0 (one box per picture) or more, got {max_faces}")
        self.samples = list(samples)
        self.input_size = int(input_size)
        self.batch_size = int(batch_size)
        self.augment = augment
        self.shuffle = shuffle
        self.seed = int(seed)
        self.jitter = bool(jitter)
        self.max_faces = int(max_faces)
        self.epoch = 0
        self.cache = "memory"
        self.cache_reason = "in memory, as asked"
        # Augmenters lent to one call at a time (their random state is set per call). Not one per thread:
        # tf.data calls Python from threads whose thread-local data does not outlive the call, and
        # building an augmenter (~16 ms) per call cost about as much as augmenting a batch of 8.
        self._augmenters: queue.SimpleQueue = queue.SimpleQueue()
        self._order = self._make_order()

    def __len__(self) -> int:
        return math.ceil(len(self.samples) / self.batch_size)

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        """Jump to an epoch's order and augmentations (for resuming a run reproducibly)."""
        self.epoch = int(epoch)
        self._order = self._make_order()

    def _make_order(self, epoch: int | None = None) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.samples))
        epoch = self.epoch if epoch is None else epoch
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.samples))

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")

    def item(self, sample_index: int, epoch: int) -> tuple[np.ndarray, bool, np.ndarray]:
        """One model input (S, S, 3) RGB float32, whether it shows a face, and its (largest) box; same for
        same args."""
        x, faces = self.faces_item(sample_index, epoch)
        if len(faces) == 0:
            return x, False, np.asarray(NO_BOX, np.float32)
        return x, True, faces[0]

    def faces_item(self, sample_index: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """One model input and its faces (n, 4) float32, largest first (by area after augmentation).

        With ``max_faces`` 0 only the sample's largest face goes through augmentation, exactly as the
        single-face batches always did; otherwise every face does, and those cropped below
        ``MIN_VISIBILITY`` are dropped.
        """
        sample = self.samples[sample_index]
        picture = self._picture(sample_index)
        if not sample.has_face:
            boxes = np.zeros((0, 4), np.float32)
        elif self.max_faces:
            boxes = np.asarray(sample.boxes, np.float32).reshape(-1, 4)
        else:
            boxes = np.array([sample.box], np.float32)
        if not self.augment:
            return picture.astype(np.float32), _largest_first(boxes)
        try:
            augmenter = self._augmenters.get_nowait()
        except queue.Empty:
            augmenter = build_augmenter(self.input_size, self.jitter)
        try:
            state = np.random.SeedSequence([self.seed, epoch, sample_index])
            augmenter.set_random_state(np.random.default_rng(state), random.Random(int(state.generate_state(1)[0])))
            result = augmenter(image=picture, bboxes=boxes, labels=[1] * len(boxes))
        finally:
            self._augmenters.put(augmenter)
        x = preprocess_frame(result["image"], self.input_size)
        faces = np.clip(np.asarray(result["bboxes"], np.float32).reshape(-1, 4), 0.0, 1.0)
        return x, _largest_first(faces)

    def targets(self, sample_index: int, epoch: int) -> tuple[np.ndarray, ...]:
        """One row of a batch: ``x, class (1,), box (4,)`` and with ``max_faces`` K also ``faces (K, 4),
        face_mask (K,)`` (the K largest faces, zero-padded), all float32."""
        x, faces = self.faces_item(sample_index, epoch)
        has_face = len(faces) > 0
        row = (x, np.array([float(has_face)], np.float32),
               faces[0] if has_face else np.asarray(NO_BOX, np.float32))
        if not self.max_faces:
            return row
        kept = faces[: self.max_faces]
        padded = np.zeros((self.max_faces, 4), np.float32)
        padded[: len(kept)] = kept
        mask = np.zeros(self.max_faces, np.float32)
        mask[: len(kept)] = 1.0
        return (*row, padded, mask)

    def _picture(self, sample_index: int) -> np.ndarray:
        """The decoded picture: the final input (uint8) for validation, shrunk BGR for augmentation."""
        return decode_for_batches(self.samples[sample_index].image_path, self.input_size, self.augment)


class FaceBatches(_Batches):
    """``(x, (class, box))`` batches of samples, every picture decoded once and kept in memory; see
    :func:`make_batches`."""

    def __init__(self, samples: Sequence[Sample], **kwargs):
        super().__init__(samples, **kwargs)
        self._cache: dict[int, np.ndarray] = {}

    def __getitem__(self, index: int):
        self._check_index(index)
        chosen = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        rows = [self.targets(int(sample_index), self.epoch) for sample_index in chosen]
        x, *labels = (np.stack(column) for column in zip(*rows, strict=True))
        return x, tuple(labels)

    def _picture(self, sample_index: int) -> np.ndarray:
        """Decode once: later epochs augment the kept copy."""
        image = self._cache.get(sample_index)
        if image is None:
            image = self._cache[sample_index] = super()._picture(sample_index)
        return image


class StreamedBatches(_Batches):
    """The same batches as :class:`FaceBatches`, read from disk every epoch through a ``tf.data``
    pipeline (batches made in parallel, in order, and prefetched), so a dataset larger than memory
    trains: nothing is kept in memory but the batches in flight. With ``disk_cache`` (the default)
    every picture is decoded once and its decoded array kept on disk (:class:`DiskCache`), so later
    epochs read arrays instead of decoding. Each ``tf.data`` call into Python makes a whole batch
    (batches are made in parallel), not one picture: fewer calls, less overhead per picture.

    Keras gets a PyDataset, not the bare ``tf.data.Dataset`` (:meth:`dataset`), on purpose: the epoch
    then follows Keras's own ``on_epoch_end`` calls, as for the in-memory batches, rather than how
    often something opens an iterator (Keras opens an extra one to build a model made under a
    distribution strategy, which would shift every later epoch's order). One pipeline serves an
    epoch asked for in order (as the trainer's ``fit(shuffle=False)`` does); a batch asked for out of
    order is made alone, so nothing read ahead is thrown away.
    """

    def __init__(self, samples: Sequence[Sample], *, disk_cache: bool = True, **kwargs):
        kwargs.update(workers=1, use_multiprocessing=False)  # the parallel work happens inside tf.data
        super().__init__(samples, **kwargs)
        self.cache, self.cache_reason = "stream", "streamed from disk, as asked"
        self.disk_cache = DiskCache(self.input_size, self.augment) if disk_cache else None
        self._lock = threading.Lock()
        self._stream = None
        self._next: tuple[int, int] | None = None  # (epoch, batch) the open pipeline gives next
        self._failure: BaseException | None = None

    def __getitem__(self, index: int):
        import tensorflow as tf

        self._check_index(index)
        with self._lock:
            in_order = self._next == (self.epoch, index)
            if not (in_order and self._stream is not None):
                self._stream = None
                if index == 0 or in_order:  # an epoch (or a run of batches) starts: read ahead from here
                    self._stream = iter(self.dataset(self.epoch, first_batch=index))
            # Out of order (Keras's fit(shuffle=True) asks at random): that batch alone, nothing read ahead.
            stream = self._stream or iter(self.dataset(self.epoch, first_batch=index, batches=1))
            self._failure = None
            try:
                x, labels = next(stream)
            except tf.errors.OpError:
                self._stream = None
                if self._failure is not None:  # the item function's own error, naming the file
                    raise self._failure from None
                raise
            self._next = (self.epoch, index + 1)
            if index + 1 == len(self):
                self._stream = None  # the epoch is over: let its buffers go
            return x.numpy(), tuple(label.numpy() for label in labels)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self._stream = None

    def _picture(self, sample_index: int) -> np.ndarray:
        """From the disk cache when there is one (decoded and written there the first time)."""
        if self.disk_cache is None:
            return super()._picture(sample_index)
        return self.disk_cache.picture(self.samples[sample_index].image_path)

    def dataset(self, epoch: int | None = None, first_batch: int = 0, batches: int | None = None):
        """An epoch's batches (default: the current epoch's) as a ``tf.data.Dataset``, from batch
        ``first_batch`` on (``batches`` of them, default all): what :meth:`__getitem__` reads."""
        import tensorflow as tf

        epoch = self.epoch if epoch is None else int(epoch)
        end = None if batches is None else (first_batch + batches) * self.batch_size
        order = self._make_order(epoch)[first_batch * self.batch_size : end].astype(np.int64)
        size, faces = self.input_size, self.max_faces
        shapes = [(size, size, 3), (1,), (4,)] + ([(faces, 4), (faces,)] if faces else [])

        def load(sample_indices) -> tuple[np.ndarray, ...]:
            try:
                rows = [self.targets(int(sample_index), epoch) for sample_index in sample_indices]
                return tuple(np.stack(column) for column in zip(*rows, strict=True))
            except Exception as exc:
                self._failure = exc
                raise

        def to_tensors(sample_indices):
            columns = tf.numpy_function(load, [sample_indices], [tf.float32] * len(shapes))
            for tensor, shape in zip(columns, shapes, strict=True):
                tensor.set_shape((None, *shape))
            return columns[0], tuple(columns[1:])

        options = tf.data.Options()
        options.deterministic = True
        return (tf.data.Dataset.from_tensor_slices(order)
                .batch(self.batch_size)
                .map(to_tensors, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .prefetch(PREFETCH_BATCHES)
                .with_options(options))


CACHE_CHOICES = ("auto", "memory", "stream")
MEMORY_SHARE = 0.25  # "auto" keeps the pictures in memory when they take at most this share of the RAM
FALLBACK_MEMORY = 4 * 1024**3  # bytes assumed where the machine's memory cannot be read: a small laptop's
_ARRAY_OVERHEAD = 200  # bytes per kept picture beyond its pixels (the array object, the dict entry)


def physical_memory() -> int | None:
    """The machine's physical memory in bytes (os.sysconf on Linux and macOS, the Win32 API on
    Windows), or None where it cannot be read."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and page_size > 0:
            return int(pages) * int(page_size)
    except (AttributeError, ValueError, OSError):
        pass
    if sys.platform == "win32":
        import ctypes

        class _MemoryStatus(ctypes.Structure):
            _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total", ctypes.c_ulonglong),
                        ("available", ctypes.c_ulonglong), ("total_page", ctypes.c_ulonglong),
                        ("available_page", ctypes.c_ulonglong), ("total_virtual", ctypes.c_ulonglong),
                        ("available_virtual", ctypes.c_ulonglong), ("extended", ctypes.c_ulonglong)]

        status = _MemoryStatus()
        status.length = ctypes.sizeof(_MemoryStatus)
        try:
            if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
                return int(status.total)
        except (AttributeError, OSError):
            pass
    return None


def cache_bytes(samples: Sequence[Sample], input_size: int, augment: bool) -> int:
    """What keeping every decoded picture in memory takes, from the samples' sizes (nothing is read):
    the model input for validation, the picture shrunk to ``CACHE_SCALE * input_size`` for training."""
    total = 0
    for sample in samples:
        if augment and sample.width > 0 and sample.height > 0:
            width, height = sample.width, sample.height
            scale = CACHE_SCALE * input_size / min(width, height)
            if scale < 1:
                width, height = max(1, round(width * scale)), max(1, round(height * scale))
        else:
            side = round(CACHE_SCALE * input_size) if augment else input_size  # size unknown: assume a square
            width = height = side
        total += width * height * 3 + _ARRAY_OVERHEAD
    return total


def _gigabytes(count: int) -> str:
    return f"{count / 1024**3:.2f} GB"


def cache_plan(samples: Sequence[Sample], input_size: int, augment: bool,
               memory: int | None = None) -> tuple[str, str]:
    """("memory" or "stream", why): memory when the decoded pictures fit in ``MEMORY_SHARE`` of the
    machine's memory (``memory`` bytes; default: read from the machine), else stream from disk."""
    needed = cache_bytes(samples, input_size, augment)
    known = memory if memory is not None else physical_memory()
    total = known if known else FALLBACK_MEMORY
    budget = int(total * MEMORY_SHARE)
    where = f"{_gigabytes(total)} of memory" + ("" if known else " assumed (the machine's could not be read)")
    pictures = f"{len(samples)} decoded pictures take about {_gigabytes(needed)}"
    if needed <= budget:
        return "memory", f"kept in memory: {pictures}, within a quarter of {where}"
    return "stream", f"streamed from disk: {pictures}, more than a quarter of {where}"


def choose_cache(samples: Sequence[Sample], input_size: int, augment: bool) -> str:
    """What ``cache="auto"`` picks: "memory" when the decoded pictures fit (see :func:`cache_plan`,
    which also says why), else "stream"."""
    return cache_plan(samples, input_size, augment)[0]


def make_batches(
    samples: list[Sample],
    *,
    input_size: int,
    batch_size: int = 8,
    augment: bool = False,
    shuffle: bool = False,
    seed: int = 0,
    jitter: bool = False,
    max_faces: int = 0,
    cache: str = "memory",
    disk_cache: bool = True,
) -> keras.utils.PyDataset:
    """Batches ``(x (B,S,S,3) RGB 0..255, (class (B,1), box (B,4)))`` in the model's output order.

    No-face samples carry the box ``[0, 0, 0, 0]``. Deterministic for a seed; with ``shuffle`` the
    order changes every epoch, and with ``augment`` so do the augmentations (``jitter``: see
    :func:`build_augmenter`). ``max_faces`` K > 0 adds every face: ``faces (B,K,4)``, largest first,
    zero-padded, and ``face_mask (B,K)`` (1.0 for a face). ``cache``: "memory" decodes every picture
    once and keeps it, "stream" reads it from disk every epoch through ``tf.data`` (the same batches),
    "auto" keeps them when they fit (:func:`cache_plan`; the returned batches' ``cache_reason`` says why).
    Streamed pictures are decoded once and kept on disk as arrays unless ``disk_cache`` is False
    (:class:`DiskCache`).
    """
    if cache not in CACHE_CHOICES:
        raise ValueError(f"cache must be one of {', '.join(CACHE_CHOICES)}, got {cache!r}")
    reason = f"{'kept in memory' if cache == 'memory' else 'streamed from disk'}, as asked"
    if cache == "auto":
        cache, reason = cache_plan(samples, input_size, augment)
    options = dict(input_size=input_size, batch_size=batch_size, augment=augment, shuffle=shuffle, seed=seed,
                   jitter=jitter, max_faces=max_faces)
    if cache == "stream":
        batches = StreamedBatches(samples, disk_cache=disk_cache, **options)
        if disk_cache:
            reason += f"; decoded pictures kept on disk in a {DISK_CACHE_FOLDER} folder beside them"
    else:
        batches = FaceBatches(samples, **options)
    batches.cache, batches.cache_reason = cache, reason
    return batches


def write_preview(
    samples: Sequence[Sample],
    out_png: Path | str,
    *,
    input_size: int = 120,
    count: int = 16,
    seed: int = 0,
) -> Path:
    """A PNG grid of ``count`` augmented model inputs with their boxes drawn: what the model sees.

    Tiles are ``input_size`` square with 2-pixel gaps, ``ceil(sqrt(count))`` per row.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    batches = FaceBatches(samples, input_size=input_size, augment=True, seed=seed)
    order = np.random.default_rng(seed).permutation(len(batches.samples))
    gap = 2
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full((rows * input_size + (rows + 1) * gap, columns * input_size + (columns + 1) * gap, 3),
                   48, np.uint8)
    for i in range(count):
        # Repeats of a picture (count > samples) come from later "epochs": other augmentations.
        x, has_face, box = batches.item(int(order[i % len(order)]), epoch=i // len(order))
        tile = np.ascontiguousarray(cv2.cvtColor(x.astype(np.uint8), cv2.COLOR_RGB2BGR))
        if has_face:
            x1, y1, x2, y2 = (round(v) for v in box_to_pixels(box, input_size - 1, input_size - 1))
            cv2.rectangle(tile, (x1, y1), (x2, y2), (0, 255, 0), 1)
        else:
            cv2.putText(tile, "no face", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 255), 1, cv2.LINE_AA)
        top = gap + (i // columns) * (input_size + gap)
        left = gap + (i % columns) * (input_size + gap)
        grid[top : top + input_size, left : left + input_size] = tile
    out_png = Path(out_png)
    ok, encoded = cv2.imencode(".png", grid)
    if not ok:
        raise OSError(f"{out_png}: could not encode the preview PNG")
    atomic_write_bytes(out_png, encoded.tobytes())  # whole or not at all; creates the folder
    return out_png
