"""training.data.augment: batch shapes, boxes that follow the picture through augmentation, determinism, preview."""

from __future__ import annotations

import math
import random
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest

from training.core.preprocess import preprocess_frame
from training.data import augment
from training.data.augment import CACHE_SCALE, make_batches, write_preview
from training.data.dataset import DataError, Sample, load_dataset
from training.data.formats.labelme import write_labelme
from training.data.pictures import load_image

SIZE = 48


def white_rectangle_picture(folder: Path, stem: str, box_px, width: int = 160, height: int = 120) -> None:
    """A dark picture, white exactly inside the labelled box: the box must keep covering the white."""
    image = np.full((height, width, 3), 20, np.uint8)
    if box_px is not None:
        x1, y1, x2, y2 = box_px
        image[y1:y2, x1:x2] = 255
    cv2.imwrite(str(folder / f"{stem}.png"), image)
    write_labelme(folder / f"{stem}.json", folder / f"{stem}.png", box_px, width, height)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    """10 faces of varied size and place (one against the left edge), 3 no-face pictures."""
    folder = tmp_path_factory.mktemp("rects") / "train" / "images"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(9):
        w, h = int(rng.integers(30, 70)), int(rng.integers(25, 55))
        x1, y1 = int(rng.integers(0, 160 - w)), int(rng.integers(0, 120 - h))
        white_rectangle_picture(folder, f"face{i}", (x1, y1, x1 + w, y1 + h))
    white_rectangle_picture(folder, "face_edge", (0, 40, 12, 70))  # often cropped away
    for i in range(3):
        white_rectangle_picture(folder, f"none{i}", None)
    dataset = load_dataset(folder.parents[1])
    assert not dataset.problems
    return dataset.splits["train"]


def bright_box_checks(x: np.ndarray, classes: np.ndarray, boxes: np.ndarray) -> None:
    for image, has_face, box in zip(x, classes[:, 0], boxes, strict=True):
        gray = image.mean(axis=-1)
        if has_face == 0:
            assert tuple(box) == (0, 0, 0, 0)
            continue
        x1, y1, x2, y2 = (int(round(v * SIZE)) for v in box)
        inside = gray[y1:y2, x1:x2].mean()
        outside_mask = np.ones_like(gray, bool)
        outside_mask[y1:y2, x1:x2] = False
        outside = gray[outside_mask].mean() if outside_mask.any() else 0.0
        assert inside > 150 and inside > 3 * outside, (box, inside, outside)


@pytest.mark.parametrize("augment_on", [False, True], ids=["plain", "augmented"])
def test_batches_have_the_contract_shapes_dtypes_and_ranges(samples, augment_on: bool):
    batches = make_batches(samples, input_size=SIZE, batch_size=4, augment=augment_on)
    assert len(batches) == math.ceil(len(samples) / 4) == 4
    sizes = []
    for index in range(len(batches)):
        x, labels = batches[index]
        assert isinstance(labels, tuple) and len(labels) == 2
        classes, boxes = labels
        assert x.dtype == classes.dtype == boxes.dtype == np.float32
        assert x.shape[1:] == (SIZE, SIZE, 3) and classes.shape == (len(x), 1) and boxes.shape == (len(x), 4)
        assert 0 <= x.min() and x.max() <= 255
        assert set(np.unique(classes)) <= {0.0, 1.0}
        assert np.all((boxes >= 0) & (boxes <= 1))
        faces = classes[:, 0] == 1
        assert np.all(boxes[faces, 2] > boxes[faces, 0]) and np.all(boxes[faces, 3] > boxes[faces, 1])
        assert np.all(boxes[~faces] == 0)
        sizes.append(len(x))
    assert sizes == [4, 4, 4, 1]
    with pytest.raises(IndexError):
        batches[len(batches)]


def test_validation_batches_are_exactly_what_inference_sees(samples):
    x, (classes, boxes) = make_batches(samples, input_size=SIZE, batch_size=len(samples))[0]
    expected = np.stack([preprocess_frame(load_image(s.image_path), SIZE) for s in samples])
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(classes[:, 0], [float(s.has_face) for s in samples])
    np.testing.assert_allclose(boxes, [s.box for s in samples])
    bright_box_checks(x, classes, boxes)


def test_augmented_boxes_still_cover_the_bright_region(samples):
    batches = make_batches(samples, input_size=SIZE, batch_size=len(samples), augment=True, shuffle=True)
    lost = 0
    for _ in range(8):
        x, (classes, boxes) = batches[0]
        bright_box_checks(x, classes, boxes)
        lost += int(sum(s.has_face for s in samples) - classes.sum())
        batches.on_epoch_end()
    assert lost > 0  # the edge face is sometimes cropped away, and becomes a no-face sample


def test_flips_happen_on_both_axes_independently(samples):
    corner = next(s for s in samples if s.has_face and s.box[2] < 0.5 and s.box[3] < 0.5)
    batches = make_batches([corner], input_size=SIZE, augment=True)
    seen = {}
    for epoch in range(200):
        _, has_face, box = batches.item(0, epoch)
        assert has_face
        key = (box[0] + box[2] > 1, box[1] + box[3] > 1)  # (flipped left-right, flipped upside down)
        seen[key] = seen.get(key, 0) + 1
    assert set(seen) == {(False, False), (False, True), (True, False), (True, True)}
    assert all(25 <= n <= 75 for n in seen.values()), seen  # ~50 each when both flips are p=0.5 and independent


def test_same_seed_same_batches_other_seed_other_batches(samples):
    def epochs(seed: int):
        batches = make_batches(samples, input_size=SIZE, batch_size=5, augment=True, shuffle=True, seed=seed)
        result = []
        for _ in range(2):
            result.append([batches[i] for i in range(len(batches))])
            batches.on_epoch_end()
        return result

    first, again, other = epochs(3), epochs(3), epochs(4)
    for epoch_a, epoch_b in zip(first, again, strict=True):
        for (xa, (ca, ba)), (xb, (cb, bb)) in zip(epoch_a, epoch_b, strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ca, cb)
            np.testing.assert_array_equal(ba, bb)
    assert not np.array_equal(first[0][0][0], other[0][0][0])
    assert not np.array_equal(first[0][0][0], first[1][0][0])  # a new epoch is a new order and new augmentations


def test_shuffle_is_a_new_permutation_each_epoch_and_set_epoch_replays_it(samples):
    batches = make_batches(samples, input_size=SIZE, batch_size=len(samples), shuffle=True, seed=1)
    plain = make_batches(samples, input_size=SIZE, batch_size=len(samples))
    reference = {tuple(b): i for i, b in enumerate(plain[0][1][1].round(6).tolist()) if any(b)}

    def face_order():
        boxes = batches[0][1][1].round(6).tolist()
        return [reference[tuple(b)] for b in boxes if any(b)]

    order0 = face_order()
    batches.on_epoch_end()
    order1 = face_order()
    assert sorted(order0) == sorted(order1) == sorted(reference.values())
    assert order0 != order1
    batches.set_epoch(0)
    assert face_order() == order0


def test_pictures_are_decoded_once_and_cached_small(samples, monkeypatch):
    decoded = []

    def counting_load_image(path):
        decoded.append(path)
        return load_image(path)

    monkeypatch.setattr(augment, "load_image", counting_load_image)
    batches = make_batches(samples, input_size=SIZE, batch_size=4, augment=True)
    for _ in range(3):
        for index in range(len(batches)):
            batches[index]
        batches.on_epoch_end()
    assert sorted(decoded) == sorted(s.image_path for s in samples)
    cached = batches._cache[0]
    assert min(cached.shape[:2]) == round(CACHE_SCALE * SIZE)  # 120 px pictures shrink to 96


def test_missing_picture_at_batch_time_names_the_file(tmp_path: Path):
    gone = Sample(tmp_path / "gone.jpg", None, False, (0.0, 0.0, 0.0, 0.0), 64, 48)
    batches = make_batches([gone], input_size=SIZE)
    with pytest.raises(DataError, match="does not exist") as caught:
        batches[0]
    assert caught.value.path == tmp_path / "gone.jpg"


def test_no_samples_is_a_clear_error():
    with pytest.raises(ValueError, match="no samples"):
        make_batches([], input_size=SIZE)


def test_preview_is_a_png_grid_with_boxes_drawn(samples, tmp_path: Path):
    out = write_preview(samples, tmp_path / "sub" / "preview.png", input_size=40, count=5, seed=2)
    assert out == tmp_path / "sub" / "preview.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = cv2.imread(str(out))
    assert grid.shape == (2 * 40 + 3 * 2, 3 * 40 + 4 * 2, 3)  # 3 columns x 2 rows, 2 px gaps
    green = (grid[:, :, 1] == 255) & (grid[:, :, 0] == 0) & (grid[:, :, 2] == 0)
    assert green.sum() > 40  # box outlines
    again = write_preview(samples, tmp_path / "again.png", input_size=40, count=5, seed=2)
    np.testing.assert_array_equal(cv2.imread(str(again)), grid)
    big = cv2.imread(str(write_preview(samples, tmp_path / "big.png", input_size=20, count=30)))
    assert big.shape == (5 * 20 + 6 * 2, 6 * 20 + 7 * 2, 3)  # more tiles than pictures: repeats, re-augmented


@pytest.fixture(scope="module")
def crowd(tmp_path_factory) -> list[Sample]:
    """Pictures 200x150 with 2 to 4 white rectangles apart from each other, the last one's smallest face
    against the left edge (often cropped away)."""
    folder = tmp_path_factory.mktemp("crowd") / "train" / "images"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    cells = [(10, 10), (110, 10), (10, 80), (110, 80)]  # each face inside its own 80x60 cell
    for i in range(6):
        image = np.full((150, 200, 3), 20, np.uint8)
        boxes = []
        for cx, cy in cells[: 2 + i % 3]:
            w, h = int(rng.integers(25, 70)), int(rng.integers(20, 55))
            x1, y1 = cx + int(rng.integers(0, 80 - w)), cy + int(rng.integers(0, 60 - h))
            boxes.append((x1, y1, x1 + w, y1 + h))
        if i == 5:
            boxes[-1] = (0, 100, 10, 118)
        for x1, y1, x2, y2 in boxes:
            image[y1:y2, x1:x2] = 255
        cv2.imwrite(str(folder / f"crowd{i}.png"), image)
        write_labelme(folder / f"crowd{i}.json", folder / f"crowd{i}.png", boxes, 200, 150)
    dataset = load_dataset(folder.parents[1])
    assert not dataset.problems and all(s.face_count >= 2 for s in dataset.splits["train"])
    return dataset.splits["train"]


def face_rows_checks(x, classes, boxes, faces, mask) -> None:
    """Every face left is bright inside, largest first, zero-padded after the real ones; class and box agree."""
    areas = (faces[..., 2] - faces[..., 0]) * (faces[..., 3] - faces[..., 1])
    for image, has_face, box, row, row_mask, row_areas in zip(x, classes[:, 0], boxes, faces, mask, areas,
                                                               strict=True):
        count = int(row_mask.sum())
        np.testing.assert_array_equal(row_mask, [1.0] * count + [0.0] * (len(row_mask) - count))
        assert np.all(row[count:] == 0)
        assert np.all(np.diff(row_areas[:count]) <= 0)  # largest first
        assert has_face == float(count > 0)
        np.testing.assert_array_equal(box, row[0] if count else [0, 0, 0, 0])
        gray = image.mean(axis=-1)
        for face in row[:count]:
            x1, y1, x2, y2 = (int(round(v * SIZE)) for v in face)
            assert x2 > x1 and y2 > y1 and gray[y1:y2, x1:x2].mean() > 100, face  # turned a little: corners


@pytest.mark.parametrize("augment_on", [False, True], ids=["plain", "augmented"])
def test_every_face_moves_with_the_picture_largest_first(crowd, augment_on: bool):
    batches = make_batches(crowd, input_size=SIZE, batch_size=len(crowd), augment=augment_on, shuffle=True,
                           jitter=True, max_faces=4)
    counts = []
    for _ in range(6 if augment_on else 1):
        x, labels = batches[0]
        assert len(labels) == 4
        classes, boxes, faces, mask = labels
        assert faces.shape == (len(crowd), 4, 4) and mask.shape == (len(crowd), 4)
        assert faces.dtype == mask.dtype == np.float32
        face_rows_checks(x, classes, boxes, faces, mask)
        counts.append(mask.sum())
        batches.on_epoch_end()
    labelled = sum(s.face_count for s in crowd)
    if augment_on:
        assert min(counts) < labelled  # faces cropped below MIN_VISIBILITY are dropped ...
        assert max(counts) >= labelled - 2  # ... not all of them
    else:
        assert counts == [labelled]


def test_more_faces_than_max_faces_keeps_the_largest(crowd):
    four = next(s for s in crowd if s.face_count == 4)
    x, (classes, boxes, faces, mask) = make_batches([four], input_size=SIZE, max_faces=2)[0]
    np.testing.assert_allclose(faces[0], four.boxes[:2])
    np.testing.assert_array_equal(mask[0], [1.0, 1.0])
    np.testing.assert_allclose(boxes[0], four.box)
    # max_faces 0: today's single-face batches, the largest face only.
    x0, labels = make_batches([four], input_size=SIZE)[0]
    assert len(labels) == 2
    np.testing.assert_array_equal(x0, x)
    np.testing.assert_allclose(labels[1][0], four.box)


def test_an_edge_face_cropped_away_leaves_the_others(crowd):
    edge = crowd[5]
    assert edge.boxes[-1][0] == 0  # the small face against the left edge
    batches = make_batches([edge], input_size=SIZE, augment=True, max_faces=4)
    seen = set()
    for epoch in range(40):
        rows = batches.targets(0, epoch)
        seen.add(int(rows[4].sum()))
        assert rows[1][0] == 1.0  # the big faces stay: still a picture with a face
    assert {edge.face_count - 1, edge.face_count} <= seen


@pytest.mark.parametrize("jitter", [False, True])
def test_single_face_pictures_are_the_same_in_both_modes(samples, jitter: bool):
    options = dict(input_size=SIZE, batch_size=5, augment=True, shuffle=True, seed=4, jitter=jitter)
    single = make_batches(samples, **options)
    multi = make_batches(samples, max_faces=3, **options)
    for _ in range(2):
        for index in range(len(single)):
            x, (classes, boxes) = single[index]
            x_multi, (classes_multi, boxes_multi, faces, mask) = multi[index]
            np.testing.assert_array_equal(x, x_multi)
            np.testing.assert_array_equal(classes, classes_multi)
            np.testing.assert_array_equal(boxes, boxes_multi)
            np.testing.assert_array_equal(faces[:, 0], boxes)
            np.testing.assert_array_equal(mask[:, 0], classes[:, 0])
            assert np.all(mask[:, 1:] == 0)
        single.on_epoch_end()
        multi.on_epoch_end()


def _geometry_only(*transforms) -> A.Compose:
    """Some of the pipeline's steps alone, with its box settings: to see where the pixels and the boxes go."""
    return A.Compose(list(transforms), bbox_params=A.BboxParams(
        format="albumentations", label_fields=["labels"], min_visibility=augment.MIN_VISIBILITY, clip=True))


def test_zoom_on_face_keeps_the_face_whole_and_its_box_exact(samples):
    """The zoom is a whole-pixel crop of the picture's shape holding the face: the white pixels are exactly
    the box afterwards, however far it zoomed, and the face grows up to ZOOM_IN_FACE_WIDTH of the width."""
    zoom = _geometry_only(augment.ZoomOnFace(p=1.0))
    growth = []
    for sample in (s for s in samples if s.has_face):
        image = load_image(sample.image_path)
        for draw in range(25):
            zoom.set_random_state(np.random.default_rng(draw), random.Random(draw))
            result = zoom(image=image, bboxes=np.array([sample.box], np.float32), labels=[1])
            out = result["image"]
            h, w = out.shape[:2]
            assert abs(w / h - image.shape[1] / image.shape[0]) < 0.05  # the picture's shape: no stretched face
            (x1, y1, x2, y2), = np.asarray(result["bboxes"]) * [w, h, w, h]
            ys, xs = np.nonzero(out[:, :, 0] > 128)
            np.testing.assert_allclose([x1, y1, x2, y2], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=1e-3)
            growth.append((x2 - x1) / w / (sample.box[2] - sample.box[0]))
            assert (x2 - x1) / w <= max(augment.ZOOM_IN_FACE_WIDTH, sample.box[2] - sample.box[0]) + 1e-6
    assert min(growth) >= 1 - 1e-6 and max(growth) > 1.8, (min(growth), max(growth))


def test_zoom_on_face_zooms_no_face_pictures_too(samples):
    zoom = _geometry_only(augment.ZoomOnFace(p=1.0))
    empty = next(s for s in samples if not s.has_face)
    image = load_image(empty.image_path)
    sizes = set()
    for draw in range(20):
        zoom.set_random_state(np.random.default_rng(draw), random.Random(draw))
        result = zoom(image=image, bboxes=np.zeros((0, 4), np.float32), labels=[])
        sizes.add(result["image"].shape[:2])
        assert len(result["bboxes"]) == 0
    assert len(sizes) > 5 and min(h for h, _ in sizes) < image.shape[0] / 1.8  # a zoomed look is no clue to a face


def test_jitter_shows_faces_much_larger_and_smaller_with_boxes_on_them(samples):
    """The grid recipe sees every face from far away to close up, and the boxes stay on the faces."""
    batches = make_batches(samples, input_size=SIZE, batch_size=len(samples), augment=True, shuffle=False,
                           jitter=True)
    original = {i: s.box[2] - s.box[0] for i, s in enumerate(samples) if s.has_face}
    ratios = []
    for _ in range(30):
        x, (classes, boxes) = batches[0]
        for image, has_face, box in zip(x, classes[:, 0], boxes, strict=True):  # darkened, blurred, noisy, turned
            if has_face:
                gray = image.mean(axis=-1)
                x1, y1, x2, y2 = (int(round(v * SIZE)) for v in box)
                outside = np.ones_like(gray, bool)
                outside[y1:y2, x1:x2] = False
                inside, background = gray[y1:y2, x1:x2].mean(), np.median(gray[outside])
                assert inside > 70 and inside > 2 * background, (box, inside, background)
        ratios += [(boxes[i, 2] - boxes[i, 0]) / width for i, width in original.items() if classes[i, 0]]
        batches.on_epoch_end()
    assert max(ratios) > 2.0 and min(ratios) < 0.75, (min(ratios), max(ratios))
    assert np.mean(np.array(ratios) > 1.5) > 0.1  # zooming in is common, not a rare accident


def test_jitter_adds_a_cheap_webcams_grey_blur_noise_and_jpeg_and_the_tutorial_pipeline_stays():
    jitter = {type(t).__name__: t for t in augment.build_augmenter(SIZE, jitter=True).transforms}
    blurs = {type(t).__name__: t for t in jitter["OneOf"].transforms}
    assert {"ZoomOnFace", "Affine", "ToGray", "GaussNoise", "ImageCompression"} <= set(jitter)
    assert {"GaussianBlur", "MotionBlur"} <= set(blurs) and blurs["MotionBlur"].allow_shifted is False  # centred
    assert tuple(jitter["ImageCompression"].quality_range) == augment.JPEG_QUALITY == (30, 95)
    assert jitter["GaussNoise"].std_range[1] <= 0.1  # a webcam's grain, not snow
    affine = jitter["Affine"]
    assert affine.scale["x"][0] < 0.7 and affine.scale["x"][1] > 1.2  # out and in
    tutorial = [type(t).__name__ for t in augment.build_augmenter(SIZE, jitter=False).transforms]
    assert tutorial == ["RandomCropFromBorders", "Resize", "HorizontalFlip", "VerticalFlip",
                        "RandomBrightnessContrast", "RandomGamma", "RGBShift"]


def test_jitter_makes_colour_pictures_grey_now_and_then(tmp_path: Path):
    folder = tmp_path / "train" / "images"
    folder.mkdir(parents=True)
    image = np.zeros((120, 160, 3), np.uint8)
    image[..., 0], image[..., 2] = 200, 40  # strongly blue
    image[40:80, 50:100] = (60, 160, 230)  # an orange face
    cv2.imwrite(str(folder / "colour.png"), image)
    write_labelme(folder / "colour.json", folder / "colour.png", (50, 40, 100, 80), 160, 120)
    batches = make_batches(load_dataset(tmp_path).splits["train"], input_size=SIZE, augment=True, jitter=True)
    grey = [np.ptp(batches.item(0, epoch)[0], axis=-1).max() < 1 for epoch in range(200)]
    assert 0.07 < np.mean(grey) < 0.3, np.mean(grey)
