"""Fuzzing the input side (issue 10): thousands of odd label files and hundreds of damaged pictures.

Generated with a fixed seed (so a failure reproduces; the failing file's content is in the message)
and pushed through ``read_label``, ``check_picture``/``load_image``, ``load_dataset``, the ``summary``
command and the training batches. Never a traceback, and every problem names its file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from training.cli import main
from training.data.dataset import DataError, Problem, grouped_problem_lines, load_dataset
from training.data.formats.labelme import labelme_document, read_label
from training.data.pictures import check_picture, image_size, load_image

SEED = 20261126
LABELS = 2000
PICTURES = 500
W, H = 64, 48
REPO = Path(__file__).resolve().parents[3]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------------- label files

KEYS = ["version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth", "label", "points",
        "shape_type", "group_id", "description", "x", ""]
TEXTS = ["face", "Face ", "FACE", "rectangle", "polygon", "circle", "", " ", "640", "NaN", "\udcff", "é\u202e",
         "\x00", "x" * 300, "1e400"]


def random_number(rng: random.Random) -> int | float:
    kind = rng.randrange(9)
    if kind == 0:
        return rng.randint(-5, 70)
    if kind == 1:
        return int("9" * rng.randint(16, 420)) * rng.choice((1, -1))  # beyond a float, or just beyond int64
    if kind == 2:
        return rng.choice((float("nan"), float("inf"), float("-inf")))
    if kind == 3:
        return rng.choice((1e308, -1e308, 5e-324, -0.0, 1e16, 2**53 + 1))
    if kind == 4:
        return rng.uniform(-10, 80)
    return rng.choice((0, 1, W, H, W + 1, H - 1, 0.5, W - 0.5, 2**31, -1))


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(10 if depth < 4 else 6)
    if kind in (0, 1):
        return random_number(rng)
    if kind == 2:
        return rng.choice(TEXTS)
    if kind == 3:
        return rng.choice((True, False, None))
    if kind == 4:
        return [random_number(rng), random_number(rng)]
    if kind == 5:
        return rng.choice(([], {}, [[]], [{}]))
    if kind in (6, 7):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def valid_document(rng: random.Random) -> dict:
    """A labelme document as the app writes it (sometimes more shapes, other labels and shape types)."""
    x1, y1 = rng.uniform(0, W - 2), rng.uniform(0, H - 2)
    box = (x1, y1, rng.uniform(x1 + 1, W), rng.uniform(y1 + 1, H))
    document = labelme_document("a.json", "a.jpg", box if rng.random() < 0.8 else None, W, H)
    for _ in range(rng.choice((0, 0, 0, 1, 2))):
        shape = json.loads(json.dumps(document["shapes"][0])) if document["shapes"] else {"label": "face"}
        shape["label"] = rng.choice(("face", "face", "hand", "Face"))
        shape["shape_type"] = rng.choice(("rectangle", "rectangle", "polygon", "point"))
        shape["points"] = [[rng.uniform(-2, W + 2), rng.uniform(-2, H + 2)] for _ in range(rng.choice((2, 2, 3)))]
        document["shapes"].append(shape)
    return document


def mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """The value with one node somewhere inside replaced, removed or re-typed."""
    if depth > 6 or not isinstance(value, (dict, list)) or not value or rng.random() < 0.25:
        return random_value(rng, depth)
    if isinstance(value, dict):
        key = rng.choice(list(value))
        choice = rng.randrange(4)
        if choice == 0:
            return {k: v for k, v in value.items() if k != key}
        if choice == 1:
            return {**value, rng.choice(KEYS): random_value(rng, depth + 1)}
        return {**value, key: mutate(rng, value[key], depth + 1)}
    index = rng.randrange(len(value))
    copy = list(value)
    choice = rng.randrange(4)
    if choice == 0:
        del copy[index]
    elif choice == 1:
        copy.insert(index, random_value(rng, depth + 1))
    else:
        copy[index] = mutate(rng, copy[index], depth + 1)
    return copy


def mangle_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        at = rng.randrange(len(data))
        kind = rng.randrange(5)
        if kind == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del data[at : at + rng.randint(1, 20)]
        elif kind == 2:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 3:
            data = data[:at]
        else:
            data[at:at] = rng.choice((b"NaN", b"-Infinity", b"1e999", b"9" * 500, b"[" * 50, b'"\\ud800"', b"\xff"))
    return bytes(data)


def odd_field(rng: random.Random) -> dict:
    """A valid document with one corner coordinate or size field replaced: where numbers get converted."""
    document = valid_document(rng)
    value = random_number(rng) if rng.random() < 0.7 else random_value(rng)
    if document["shapes"] and rng.random() < 0.7:
        document["shapes"][0]["points"][rng.randrange(2)][rng.randrange(2)] = value
    else:
        document[rng.choice(("imageWidth", "imageHeight"))] = value
    return document


def label_file_bytes(rng: random.Random, number: int) -> bytes:
    kind = number % 10
    if kind < 3:
        return json.dumps(mutate(rng, valid_document(rng))).encode()
    if kind == 3:
        return json.dumps(odd_field(rng)).encode()
    if kind == 4:
        return json.dumps(random_value(rng)).encode()
    if kind < 8:
        return mangle_bytes(rng, json.dumps(valid_document(rng), indent=rng.choice((None, 2))).encode())
    if kind == 8:
        return json.dumps(valid_document(rng)).encode()  # some must be right, or nothing is tested past the checks
    depth = rng.choice((50, 999, 5000, 200_000))
    return rng.choice((
        b"[" * depth + b"]" * depth,
        b'{"shapes": ' + b"[" * depth + b"]" * depth + b"}",
        b'{"shapes": [], "imageWidth": ' + b"7" * rng.choice((400, 5000)) + b"}",
        b"\xef\xbb\xbf" + json.dumps(valid_document(rng)).encode(),
        json.dumps(valid_document(rng)).encode("utf-16"),
        b"", b"   ", b"\x00", b"null", b"[]", b'"face"',
    ))


def write_label_corpus(folder: Path) -> list[tuple[Path, bytes]]:
    rng = random.Random(SEED)
    folder.mkdir(parents=True)
    corpus = []
    for number in range(LABELS):
        data = label_file_bytes(rng, number)
        path = folder / f"l{number:04d}.json"
        path.write_bytes(data)
        corpus.append((path, data))
    return corpus


def test_thousands_of_odd_label_files_never_crash_and_every_problem_names_its_file(tmp_path):
    corpus = write_label_corpus(tmp_path / "labels")
    outcomes = {"box": 0, "no face": 0, "problem": 0, "warned": 0}
    for path, data in corpus:
        warnings: list[Problem] = []
        try:
            box = read_label(path, W, H, warnings.append)
        except DataError as exc:
            assert exc.path == path and exc.message and str(exc).startswith(f"{path}: "), data[:300]
            outcomes["problem"] += 1
        except Exception as exc:  # the bug this test is for: say which file did it
            raise AssertionError(f"{type(exc).__name__} from {data[:300]!r}") from exc
        else:
            assert len(box) == 4 and all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in box), data[:300]
            if box == (0.0, 0.0, 0.0, 0.0):
                outcomes["no face"] += 1
            else:
                assert box[0] < box[2] and box[1] < box[3], data[:300]
                outcomes["box"] += 1
        assert all(w.path == path for w in warnings)
        outcomes["warned"] += bool(warnings)
    # The generator reaches every outcome, often.
    assert min(outcomes.values()) >= 10 and outcomes["problem"] >= LABELS // 3, outcomes


@pytest.fixture(scope="module")
def label_dataset(tmp_path_factory) -> tuple[Path, list[tuple[Path, bytes]]]:
    """A flat dataset: one picture per fuzzed label (hard links to one real JPEG: the labels are on test)."""
    root = tmp_path_factory.mktemp("fuzz") / "labels-dataset"
    corpus = write_label_corpus(root / "labels")
    (root / "images").mkdir()
    ok, encoded = cv2.imencode(".jpg", np.full((H, W, 3), 90, np.uint8))
    base = root / "base.jpg"
    base.write_bytes(encoded.tobytes())
    for path, _ in corpus:
        try:
            os.link(base, root / "images" / f"{path.stem}.jpg")
        except OSError:
            (root / "images" / f"{path.stem}.jpg").write_bytes(encoded.tobytes())
    base.unlink()
    return root, corpus


def test_the_dataset_and_summary_list_every_odd_label_by_name(label_dataset):
    root, corpus = label_dataset
    labels = {path for path, _ in corpus}
    dataset = load_dataset(root)
    used = {s.label_path for samples in dataset.splits.values() for s in samples}
    problems = {p.path for p in dataset.problems}
    assert problems <= labels and used <= labels
    assert used | problems == labels and not used & problems  # each label: used, or a problem naming it
    assert all(str(p).startswith(f"{p.path}: ") for p in dataset.problems + dataset.warnings)

    listing = root.parent / "problems.txt"
    code, out, err = run_cli(["summary", str(root), "--problems-file", str(listing)])
    assert code == 0 and err == ""
    # The summary groups problems of one kind and stays short; the file names every one of them.
    shown = out.split("Problems (", 1)[1].splitlines()[1:]
    shown = [line for line in shown if line.startswith("  ")]
    assert len(shown) <= 40 and all(line.startswith("  ") for line in shown)
    assert all(f"  {problem}" in out or f"{problem.message}, e.g. " in out or "more lines like these" in out
               for problem in dataset.problems)
    assert listing.read_text(encoding="utf-8").splitlines()[: len(dataset.problems)] == \
        [f"skipped {problem}" for problem in dataset.problems]
    code, out, err = run_cli(["summary", str(root), "--json"])
    assert code == 0 and json.loads(out)["problems"] == [str(p) for p in dataset.problems]
    code, out, err = run_cli(["summary", str(root), "--strict"])
    first = dataset.problems[0]
    assert (code, out) == (1, "") and err == f"facetracker-train summary: error: {first}\n"


def test_summary_of_the_odd_labels_in_a_real_process(label_dataset):
    """Printed by a real interpreter to a real pipe: odd characters in a message cannot break the output."""
    root, _ = label_dataset
    listing = root.parent / "every-problem.txt"
    done = subprocess.run([sys.executable, "-m", "training", "summary", str(root), "--problems-file", str(listing)],
                          capture_output=True, timeout=120, cwd=REPO,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONIOENCODING"})
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")[-2000:]
    dataset = load_dataset(root)
    grouped = grouped_problem_lines(dataset.problems) + grouped_problem_lines(dataset.warnings)
    assert done.stdout.count(b"\n  ") == len(grouped)
    assert len(listing.read_bytes().splitlines()) == len(dataset.problems) + len(dataset.warnings)


# ---------------------------------------------------------------------------------------- pictures


def seed_pictures() -> list[tuple[str, bytes]]:
    """Real pictures in every variant the readers meet: baseline, progressive, restart markers, grey and
    CMYK JPEGs, an EXIF-rotated JPEG, PNGs of every colour type and depth, BMPs, a WebP under .jpg."""
    from PIL import Image

    rng = np.random.default_rng(SEED)
    image = cv2.resize((rng.random((6, 8, 3)) * 255).astype(np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    seeds = [
        (".jpg", cv2.imencode(".jpg", image)[1].tobytes()),
        (".jpg", cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()),
        (".jpg", cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])[1].tobytes()),
        (".jpeg", cv2.imencode(".jpg", grey)[1].tobytes()),
        (".png", cv2.imencode(".png", image)[1].tobytes()),
        (".png", cv2.imencode(".png", grey)[1].tobytes()),
        (".png", cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_BGR2BGRA))[1].tobytes()),
        (".png", cv2.imencode(".png", image.astype(np.uint16) * 257)[1].tobytes()),
        (".bmp", cv2.imencode(".bmp", image)[1].tobytes()),
        (".bmp", cv2.imencode(".bmp", grey)[1].tobytes()),
        (".jpg", cv2.imencode(".webp", image)[1].tobytes()),
    ]
    pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    for mode, fmt, suffix, options in (("CMYK", "JPEG", ".jpg", {}), ("P", "PNG", ".png", {}),
                                       ("RGB", "PNG", ".png", {"interlace": 1}), ("L", "PNG", ".png", {"bits": 4})):
        buffer = io.BytesIO()
        pil.convert(mode).save(buffer, fmt, **options)
        seeds.append((suffix, buffer.getvalue()))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", exif=exif)
    seeds.append((".jpg", buffer.getvalue()))
    return seeds


def set_size(rng: random.Random, data: bytearray) -> None:
    """Rewrites the size in the header (JPEG SOF, PNG IHDR with or without a fixed CRC, BMP)."""
    size = rng.choice(((0, 0), (1, 1), (65535, 65535), (40_000, 40_000), (W * 3, H), (rng.randrange(1, 300),
                                                                                        rng.randrange(1, 300))))
    if data[:2] == b"\xff\xd8":
        sof = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
        if sof > 0:
            data[sof + 5 : sof + 9] = struct.pack(">HH", min(size[1], 65535), min(size[0], 65535))
    elif data[:4] == b"\x89PNG":
        data[16:24] = struct.pack(">II", *size)
        if rng.random() < 0.7:
            data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    elif data[:2] == b"BM":
        data[18:26] = struct.pack("<ii", min(size[0], 2**31 - 1), min(size[1], 2**31 - 1))


def damaged(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        if len(data) < 4:
            break
        at = rng.randrange(len(data))
        kind = rng.randrange(9)
        if kind == 0:
            data = data[:at]
        elif kind == 1:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 2:
            count = rng.randint(1, 64)
            data[at : at + count] = bytes(rng.randrange(256) for _ in range(count))
        elif kind == 3:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
        elif kind == 4:
            del data[at : at + rng.randint(1, 64)]
        elif kind == 5:
            set_size(rng, data)
        elif kind == 6:
            data[at:] = bytes(len(data) - at)
        elif kind == 7:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 100)))
        else:
            start = rng.randrange(len(data))
            data[at:at] = data[start : start + rng.randint(1, 200)]
    return bytes(data)


def write_picture_corpus(folder: Path) -> list[tuple[Path, bytes]]:
    rng = random.Random(SEED + 1)
    seeds = seed_pictures()
    folder.mkdir(parents=True)
    corpus = []
    for number in range(PICTURES):
        suffix, data = rng.choice(seeds)
        kind = number % 10  # 0: left intact, so that what passes is checked against what decodes
        if kind == 1:
            data = rng.choice((b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF", b"P6\n")) + bytes(
                rng.randrange(256) for _ in range(rng.randint(0, 300)))
        elif kind > 1:
            data = damaged(rng, data)
        if rng.random() < 0.1:
            suffix = rng.choice((".jpg", ".png", ".bmp"))  # the content decides, not the name
        path = folder / f"p{number:03d}{suffix}"
        path.write_bytes(data)
        corpus.append((path, data))
    return corpus


@pytest.fixture(scope="module")
def picture_dataset(tmp_path_factory) -> tuple[Path, list[tuple[Path, bytes]]]:
    root = tmp_path_factory.mktemp("fuzz") / "pictures-dataset"
    corpus = write_picture_corpus(root / "images")
    (root / "labels").mkdir()
    for path, _ in corpus[::2]:  # half labelled with a 1-pixel face in the corner (right for any size)
        (root / "labels" / f"{path.stem}.json").write_text(json.dumps(
            {"shapes": [{"label": "face", "shape_type": "rectangle", "points": [[0, 0], [1, 1]]}]}))
    return root, corpus


def test_hundreds_of_damaged_pictures_are_told_apart_before_training(picture_dataset):
    """What check_picture passes, load_image decodes at the size the header said; what it refuses,
    load_image refuses too. Either way only DataError naming the file, never another exception."""
    _, corpus = picture_dataset
    passed = 0
    for path, data in corpus:
        outcomes = []
        for read in (check_picture, load_image):
            try:
                outcomes.append(read(path))
            except DataError as exc:
                assert exc.path == path and exc.message, data[:64]
                outcomes.append(exc)
            except Exception as exc:
                raise AssertionError(f"{read.__name__}: {type(exc).__name__} on {path.name} "
                                     f"(seed {SEED}): {exc}") from exc
        size, image = outcomes
        assert isinstance(size, DataError) == isinstance(image, DataError), f"{path.name}: {size} / {image}"
        if not isinstance(size, DataError):
            passed += 1
            assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8, path.name
            assert image_size(path) == size
    assert 60 <= passed <= PICTURES - 150, passed  # both outcomes are reached, often


def test_the_data_loader_only_ever_sees_pictures_that_decode(picture_dataset):
    from training.data.augment import make_batches

    root, corpus = picture_dataset
    dataset = load_dataset(root)
    files = {path for path, _ in corpus} | set((root / "labels").iterdir())
    assert {p.path for p in dataset.problems} <= files
    assert all(str(p).startswith(f"{p.path}: ") for p in dataset.problems)
    samples = [s for name in ("train", "val", "test") for s in dataset.splits[name]]
    assert len(samples) + len({p.path for p in dataset.problems if p.path.parent.name == "images"}) == PICTURES
    for augment in (False, True):
        batches = make_batches(samples, input_size=32, batch_size=64, augment=augment, shuffle=augment, jitter=True)
        seen = 0
        for index in range(len(batches)):
            x, (classes, boxes) = batches[index]
            assert np.isfinite(x).all() and x.shape[1:] == (32, 32, 3)
            seen += len(x)
        assert seen == len(samples)
    code, out, err = run_cli(["summary", str(root)])
    assert code == 0 and out.count("\n  ") <= 3 + 40  # the problems grouped by kind: a readable summary
    assert all(f"  {problem}" in out or f"{problem.message}, e.g. " in out or "more lines like these" in out
               for problem in dataset.problems)
    code, out, err = run_cli(["summary", str(root), "--strict"])
    assert code == 1 and err == f"facetracker-train summary: error: {dataset.problems[0]}\n"
