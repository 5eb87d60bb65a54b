"""training.data.augment streaming: tf.data batches read from disk equal the in-memory ones, train under
keras fit epoch after epoch (also resumed, also under a distribution strategy), keep decoded pictures
in a disk cache (read back in later epochs, never stale, optional on a read-only dataset), and "auto"
picks by size."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from training.data import augment
from training.data.augment import (
    CACHE_CHOICES,
    DISK_CACHE_FOLDER,
    FaceBatches,
    StreamedBatches,
    cache_bytes,
    cache_plan,
    choose_cache,
    decode_for_batches,
    make_batches,
    read_cached_picture,
)
from training.data.dataset import DataError, Sample, load_dataset
from training.data.formats.labelme import write_labelme
from training.engine.settings import setting

SIZE = 48


def write_pictures(root: Path, count: int) -> list[Sample]:
    """``count`` pictures 160x120 with 0 to 3 white rectangles each (the faces) in ``root/train/images``;
    shrunk when cached."""
    folder = root / "train" / "images"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(count):
        image = np.full((120, 160, 3), 20, np.uint8)
        boxes = []
        for _ in range(i % 4):
            w, h = int(rng.integers(15, 45)), int(rng.integers(15, 35))
            x1, y1 = int(rng.integers(0, 160 - w)), int(rng.integers(0, 120 - h))
            image[y1 : y1 + h, x1 : x1 + w] = 255
            boxes.append((x1, y1, x1 + w, y1 + h))
        cv2.imwrite(str(folder / f"p{i}.png"), image)
        write_labelme(folder / f"p{i}.json", folder / f"p{i}.png", boxes or None, 160, 120)
    dataset = load_dataset(root)
    assert not dataset.problems
    return dataset.splits["train"]


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    """11 pictures with 0 to 3 faces each."""
    return write_pictures(tmp_path_factory.mktemp("stream"), 11)


def assert_same_batch(a, b) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    assert len(a[1]) == len(b[1])
    for left, right in zip(a[1], b[1], strict=True):
        assert left.dtype == right.dtype == np.float32
        np.testing.assert_array_equal(left, right)


@pytest.mark.parametrize(("augment_on", "max_faces"), [(False, 0), (True, 0), (False, 3), (True, 3)])
def test_streamed_batches_equal_the_in_memory_ones(samples, augment_on: bool, max_faces: int):
    options = dict(input_size=SIZE, batch_size=4, augment=augment_on, shuffle=True, seed=5, jitter=augment_on,
                   max_faces=max_faces)
    memory = make_batches(samples, **options)
    stream = make_batches(samples, cache="stream", **options)
    assert isinstance(memory, FaceBatches) and isinstance(stream, StreamedBatches)
    assert len(stream) == len(memory) == 3
    for _ in range(2):  # two epochs: a new order (and augmentation) each, the same on both sides
        for index in range(len(memory)):
            assert_same_batch(memory[index], stream[index])
        memory.on_epoch_end()
        stream.on_epoch_end()
    assert stream._stream is None  # nothing kept between epochs


def test_streamed_batches_out_of_order_and_set_epoch(samples):
    options = dict(input_size=SIZE, batch_size=3, augment=True, shuffle=True, seed=2, max_faces=2)
    memory = make_batches(samples, **options)
    stream = make_batches(samples, cache="stream", **options)
    memory.set_epoch(4)
    stream.set_epoch(4)
    for index in (2, 0, 1, 3, 1):
        assert_same_batch(memory[index], stream[index])
    with pytest.raises(IndexError):
        stream[len(stream)]
    # The bare tf.data pipeline of an epoch gives the same batches.
    for index, (x, labels) in enumerate(stream.dataset(4)):
        assert_same_batch(memory[index], (x.numpy(), tuple(t.numpy() for t in labels)))


def trained_batches(batches, start: int, epochs: int, strategy: bool = False) -> list[list[tuple]]:
    """Train a small model with keras fit from epoch ``start``; per epoch, the batches its steps got."""
    trained: list[tuple] = []

    class RecordingModel(keras.Model):
        def train_step(self, data):
            x, labels = data
            trained.append((x.numpy(), tuple(t.numpy() for t in labels)))
            return super().train_step(data)

    keras.utils.set_random_seed(0)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope() if strategy else contextlib.nullcontext():
        inputs = keras.Input((SIZE, SIZE, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
        model = RecordingModel(inputs, [keras.layers.Dense(1, activation="sigmoid")(pooled),
                                        keras.layers.Dense(4, activation="sigmoid")(pooled)])
        model.compile(optimizer="adam", loss=["binary_crossentropy", "mse"], run_eagerly=True)
    batches.set_epoch(start)  # what the trainer does when it resumes
    history = model.fit(batches, epochs=epochs, initial_epoch=start, verbose=0, shuffle=False)
    assert all(np.isfinite(history.history["loss"]))
    per_epoch = len(batches)
    assert len(trained) == (epochs - start) * per_epoch
    return [trained[i : i + per_epoch] for i in range(0, len(trained), per_epoch)]


@pytest.mark.parametrize("strategy", [False, True], ids=["plain", "one-device-strategy"])
def test_keras_fit_streams_each_epochs_own_order_and_resumes(samples, strategy: bool):
    """Under fit (and under a distribution strategy, where Keras opens an extra pass to build the model)
    the streamed batches are the in-memory ones, epoch by epoch, and a run resumed at epoch 2 goes on
    exactly as the straight run."""
    options = dict(input_size=SIZE, batch_size=4, augment=True, shuffle=True, seed=1)
    reference = trained_batches(make_batches(samples, **options), 0, 4)
    straight = trained_batches(make_batches(samples, cache="stream", **options), 0, 4, strategy)
    resumed = trained_batches(make_batches(samples, cache="stream", **options), 2, 4, strategy)
    for expected, got in zip(reference, straight, strict=True):
        for a, b in zip(expected, got, strict=True):
            assert_same_batch(a, b)
    for expected, got in zip(reference[2:], resumed, strict=True):
        for a, b in zip(expected, got, strict=True):
            assert_same_batch(a, b)
    firsts = [epoch[0][0] for epoch in reference]
    assert all(not np.array_equal(firsts[i], firsts[i + 1]) for i in range(3))  # each epoch its own batches


def assert_same_epoch(memory, stream) -> None:
    for index in range(len(memory)):
        assert_same_batch(memory[index], stream[index])
    memory.on_epoch_end()
    stream.on_epoch_end()


def cache_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.npy"))


def test_the_disk_cache_is_read_in_later_epochs_and_never_stale(tmp_path: Path):
    samples = write_pictures(tmp_path, 5)
    images = tmp_path / "train" / "images"
    options = dict(input_size=SIZE, batch_size=2, augment=True, shuffle=True, seed=3, jitter=True, max_faces=2)
    memory = make_batches(samples, **options)
    stream = make_batches(samples, cache="stream", **options)
    disk = stream.disk_cache
    assert stream.cache_reason == "streamed from disk, as asked; decoded pictures kept on disk in a " \
                                  ".facetracker_cache folder beside them"
    folder = images / DISK_CACHE_FOLDER / f"v1-short{2 * SIZE}"
    assert disk.folder(samples[0].image_path) == folder
    assert_same_epoch(memory, stream)  # the first epoch decodes every picture and writes its array
    assert (disk.decodes, disk.writes, disk.reads) == (5, 5, 0)
    stat = (images / "p1.png").stat()
    assert f"p1.png.{stat.st_size}-{stat.st_mtime_ns}.npy" in cache_files(folder) and len(cache_files(folder)) == 5
    np.testing.assert_array_equal(read_cached_picture(folder / f"p1.png.{stat.st_size}-{stat.st_mtime_ns}.npy"),
                                  decode_for_batches(images / "p1.png", SIZE, True))
    assert_same_epoch(memory, stream)  # the second reads the arrays: nothing decoded
    assert (disk.decodes, disk.writes, disk.reads) == (5, 5, 5)

    # An edited picture is decoded again (its old array deleted); a new run reads the others from disk.
    picture = cv2.imread(str(images / "p1.png"))
    cv2.imwrite(str(images / "p1.png"), 255 - picture)
    os.utime(images / "p1.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    memory = make_batches(samples, **options)
    memory.set_epoch(2)
    assert_same_epoch(memory, stream)
    assert (disk.decodes, disk.writes, disk.reads) == (6, 6, 9)
    assert len(cache_files(folder)) == 5 and f"p1.png.{stat.st_size}-{stat.st_mtime_ns}.npy" not in cache_files(folder)
    again = make_batches(samples, cache="stream", **options)
    again.set_epoch(3)
    memory.set_epoch(3)
    assert_same_epoch(memory, again)
    assert (again.disk_cache.decodes, again.disk_cache.reads) == (0, 5)

    # A damaged array (cut short by a crash, or not a picture) is decoded again; so is every picture for
    # another input size.
    damaged, other = (folder / name for name in cache_files(folder)[:2])
    damaged.write_bytes(damaged.read_bytes()[:-100])
    np.save(other, np.zeros((4, 4), np.float32))
    assert read_cached_picture(damaged) is None and read_cached_picture(other) is None
    again = make_batches(samples, cache="stream", **options)
    assert_same_epoch(make_batches(samples, **options), again)
    assert (again.disk_cache.decodes, again.disk_cache.reads) == (2, 3)
    bigger = dict(options, input_size=SIZE + 16, augment=False)
    assert_same_epoch(make_batches(samples, **bigger), make_batches(samples, cache="stream", **bigger))
    assert len(cache_files(images / DISK_CACHE_FOLDER / f"v1-input{SIZE + 16}")) == 5
    # Without the disk cache nothing is written.
    plain = make_batches(samples, cache="stream", disk_cache=False, **dict(options, input_size=SIZE + 32))
    assert plain.disk_cache is None and plain.cache_reason == "streamed from disk, as asked"
    assert_same_epoch(make_batches(samples, **dict(options, input_size=SIZE + 32)), plain)
    assert not (images / DISK_CACHE_FOLDER / f"v1-short{2 * (SIZE + 32)}").exists()


def test_a_dataset_that_cannot_be_written_streams_by_decoding(tmp_path: Path):
    samples = write_pictures(tmp_path, 4)
    images = tmp_path / "train" / "images"
    # Root writes to read-only folders anyway: a file where the cache folder would go shuts it as well.
    (images / DISK_CACHE_FOLDER).write_bytes(b"")
    before = sorted(images.iterdir())
    images.chmod(0o555)
    try:
        options = dict(input_size=SIZE, batch_size=3, augment=True, shuffle=True, seed=4)
        memory = make_batches(samples, **options)
        stream = make_batches(samples, cache="stream", **options)
        for _ in range(2):
            assert_same_epoch(memory, stream)
        disk = stream.disk_cache
        assert disk.unwritable == {images / DISK_CACHE_FOLDER / f"v1-short{2 * SIZE}"}
        assert (disk.decodes, disk.writes, disk.reads) == (8, 0, 0)  # one failed write, then none tried
    finally:
        images.chmod(0o755)
    assert sorted(images.iterdir()) == before  # nothing written, nothing left behind


def test_streaming_a_missing_picture_names_the_file(tmp_path: Path):
    gone = Sample(tmp_path / "gone.jpg", None, False, (0.0, 0.0, 0.0, 0.0), 64, 48)
    batches = make_batches([gone], input_size=SIZE, cache="stream")
    with pytest.raises(DataError, match="does not exist") as caught:
        batches[0]
    assert caught.value.path == tmp_path / "gone.jpg"


def test_cache_estimate_and_the_auto_choice(samples):
    big = Sample(Path("big.jpg"), None, True, (0.1, 0.1, 0.5, 0.5), 640, 480)
    # Training keeps 640x480 shrunk to a shorter side of 2 * 128 = 256: 341 x 256; validation the input.
    assert cache_bytes([big], 128, augment=True) == 341 * 256 * 3 + augment._ARRAY_OVERHEAD
    assert cache_bytes([big] * 10, 128, augment=False) == 10 * (128 * 128 * 3 + augment._ARRAY_OVERHEAD)
    needed = cache_bytes([big] * 1000, 128, augment=True)
    mode, reason = cache_plan([big] * 1000, 128, True, memory=4 * needed)
    assert mode == "memory" and "1000 decoded pictures take about 0.24 GB" in reason
    mode, reason = cache_plan([big] * 1000, 128, True, memory=4 * needed - 4)
    assert mode == "stream" and "streamed from disk" in reason and "0.24 GB" in reason
    # This machine holds the small test set easily; make_batches("auto") says what it chose and why.
    assert choose_cache(samples, SIZE, True) == "memory"
    auto = make_batches(samples, input_size=SIZE, augment=True, cache="auto")
    assert isinstance(auto, FaceBatches) and auto.cache == "memory" and "kept in memory" in auto.cache_reason
    assert augment.physical_memory() > 0
    with pytest.raises(ValueError, match="cache must be one of auto, memory, stream"):
        make_batches(samples, input_size=SIZE, cache="disk")
    assert setting("cache").choices == CACHE_CHOICES and setting("cache").default == "auto"
