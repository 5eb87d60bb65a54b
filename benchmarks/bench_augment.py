"""Augmented batches per second: our albumentations ``make_batches`` against Keras 3's box-aware layers.

Run on demand (about a minute on two CPU cores)::

    python benchmarks/bench_augment.py [--count 120] [--input-size 96] [--epochs 3] [--jitter]

``--jitter`` measures the grid models' pipeline (what the per-cell models, blazeface, multiface and grid, train with: zoom on
a face, affine jitter, grey, blur, noise, JPEG) instead of the tutorial's.

Both pipelines start from the same pictures, already decoded and shrunk (the cache ``make_batches``
keeps), and do the tutorial's work: a random crop resized to the model's input, flips and colour
changes, with the face box carried along. Besides speed, each is checked for *box correctness* on
pictures that are black except for a white rectangle exactly at the face box: after augmentation,
the box must still hold the white pixels (mean inside the box > 3x the mean outside it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from training.data.augment import CACHE_SCALE, make_batches  # noqa: E402
from training.data.dataset import load_dataset  # noqa: E402
from training.data.demo import make_demo_data  # noqa: E402
from training.data.formats.labelme import write_labelme  # noqa: E402


def box_correct(images: np.ndarray, classes: np.ndarray, boxes: np.ndarray) -> float:
    """Fraction of face samples whose box still covers the white rectangle."""
    size = images.shape[1]
    good = total = 0
    for image, has_face, box in zip(images, classes.reshape(-1), boxes.reshape(-1, 4), strict=True):
        if has_face < 0.5:
            continue
        x1, y1, x2, y2 = (int(round(v * size)) for v in box)
        if x2 - x1 < 2 or y2 - y1 < 2:
            total += 1
            continue
        gray = image.mean(axis=-1)
        inside = gray[y1:y2, x1:x2].mean()
        mask = np.ones_like(gray, bool)
        mask[y1:y2, x1:x2] = False
        outside = gray[mask].mean() if mask.any() else 0.0
        good += inside > 3 * outside + 1
        total += 1
    return good / max(total, 1)


def make_rectangle_data(folder: Path, count: int, width: int, height: int) -> None:
    """Black pictures with a white 'face' rectangle at the labelled box."""
    rng = np.random.default_rng(1)
    (folder / "images").mkdir(parents=True)
    for i in range(count):
        w, h = rng.uniform(0.2, 0.4) * width, rng.uniform(0.2, 0.4) * height
        x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        image = np.zeros((height, width, 3), np.uint8)
        cv2.rectangle(image, (round(x1), round(y1)), (round(x1 + w) - 1, round(y1 + h) - 1), (255, 255, 255), -1)
        path = folder / "images" / f"r{i:03d}.png"
        cv2.imwrite(str(path), image)
        write_labelme(folder / "images" / f"r{i:03d}.json", path, (round(x1), round(y1), round(x1 + w), round(y1 + h)),
                      width, height)


def bench_albumentations(samples, input_size: int, epochs: int, jitter: bool = False) -> tuple[float, float]:
    batches = make_batches(samples, input_size=input_size, batch_size=8, augment=True, shuffle=True, jitter=jitter)
    for i in range(len(batches)):  # first epoch fills the cache: decoding is not what we compare
        batches[i]
    start = time.perf_counter()
    for _ in range(epochs):
        batches.on_epoch_end()
        for i in range(len(batches)):
            batches[i]
    seconds = time.perf_counter() - start
    return epochs * len(samples) / seconds, seconds


def keras_pipeline(input_size: int, crop: tuple[int, int]):
    import keras

    fmt = {"bounding_box_format": "rel_xyxy"}
    return keras.layers.Pipeline(
        [
            keras.layers.RandomCrop(crop[0], crop[1], **fmt),
            keras.layers.Resizing(input_size, input_size, **fmt),
            keras.layers.RandomFlip("horizontal_and_vertical", **fmt),
            keras.layers.RandomBrightness(0.2, value_range=(0, 255), **fmt),
            keras.layers.RandomContrast(0.2, value_range=(0, 255), **fmt),
        ]
    )


def cached_arrays(samples, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The pictures as make_batches caches them (shorter side CACHE_SCALE * input_size), plus boxes."""
    images = []
    for sample in samples:
        image = cv2.imread(str(sample.image_path))
        scale = CACHE_SCALE * input_size / min(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    boxes = np.array([s.box for s in samples], np.float32)[:, None, :]
    return np.stack(images), boxes


def keras_dataset(images: np.ndarray, boxes: np.ndarray, input_size: int):
    import tensorflow as tf

    crop = (round(images.shape[1] * 0.94), round(images.shape[2] * 0.7))  # the tutorial's 450/480, 450/640
    pipeline = keras_pipeline(input_size, crop)

    def augment(image, box):
        data = pipeline({"images": tf.cast(image, tf.float32),
                         "bounding_boxes": {"boxes": box, "labels": tf.ones((1,), tf.int32)}})
        out_box = data["bounding_boxes"]["boxes"][0]
        has_face = tf.cast(tf.reduce_all(out_box[2:] > out_box[:2]), tf.float32)[None]
        return data["images"], (has_face, out_box)

    dataset = tf.data.Dataset.from_tensor_slices((images, boxes)).shuffle(len(images))
    return dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE).batch(8).prefetch(tf.data.AUTOTUNE)


def bench_keras(samples, input_size: int, epochs: int) -> tuple[float, float]:
    images, boxes = cached_arrays(samples, input_size)
    dataset = keras_dataset(images, boxes, input_size)
    for _ in dataset:  # trace the graph once
        pass
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in dataset:
            pass
    seconds = time.perf_counter() - start
    return epochs * len(samples) / seconds, seconds


def correctness(samples, input_size: int, jitter: bool = False) -> tuple[float, float]:
    batches = make_batches(samples, input_size=input_size, batch_size=len(samples), augment=True, jitter=jitter)
    x, (classes, boxes) = batches[0]
    ours = box_correct(x, classes, boxes)
    images, raw_boxes = cached_arrays(samples, input_size)
    x, (classes, boxes) = next(iter(keras_dataset(images, raw_boxes, input_size).unbatch().batch(len(samples))))
    return ours, box_correct(np.asarray(x), np.asarray(classes), np.asarray(boxes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--jitter", action="store_true", help="the grid models' pipeline, not the tutorial's")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        demo = make_demo_data(Path(tmp) / "demo", count=args.count)
        samples = load_dataset(demo).splits["train"]
        make_rectangle_data(Path(tmp) / "rects", 64, 640, 480)
        rect_samples = [s for split in load_dataset(Path(tmp) / "rects").splits.values() for s in split]

        ours, ours_s = bench_albumentations(samples, args.input_size, args.epochs, args.jitter)
        print(f"albumentations make_batches{' (jitter)' if args.jitter else ''}: {ours:8.0f} images/s  ({args.epochs} epochs of {len(samples)} in {ours_s:.2f} s)")
        theirs, theirs_s = bench_keras(samples, args.input_size, args.epochs)
        print(f"keras layers + tf.data     : {theirs:8.0f} images/s  ({args.epochs} epochs of {len(samples)} in {theirs_s:.2f} s)")
        ours_ok, theirs_ok = correctness(rect_samples, args.input_size, args.jitter)
        print(f"box still on the white rectangle: albumentations {ours_ok:.0%}, keras layers {theirs_ok:.0%}")
        faster = "albumentations" if ours >= theirs else "keras layers"
        print(f"=> {faster} is {max(ours, theirs) / min(ours, theirs):.1f}x faster; "
              f"box correctness {ours_ok:.0%} (albumentations) vs {theirs_ok:.0%} (keras)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
