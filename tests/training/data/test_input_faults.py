"""Issue 10, the input side: nothing lost and no traceback when labels and pictures are odd or writes fail.

Real files, real decoders, real write failures (a file-size limit set on a child process makes the
kernel fail a write half-way, EFBIG, exactly as a full disk does with ENOSPC), a real (tiny) model and
a real one-epoch training.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.cli import main
from training.core.files import TEMP_PREFIX
from training.data.dataset import DataError, Problem, load_dataset
from training.data.formats.labelme import read_label, write_labelme
from training.data.pictures import MAX_PIXELS, check_picture, image_size, load_image

REPO = Path(__file__).resolve().parents[3]
W, H = 64, 48


# ------------------------------------------------------------------------------------------ helpers


def picture(path: Path, width: int = W, height: int = H, seed: int = 0) -> Path:
    """A real picture with structure (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    image = cv2.resize((rng.random((max(2, height // 8), max(2, width // 8), 3)) * 255).astype(np.uint8),
                       (width, height), interpolation=cv2.INTER_CUBIC)
    cv2.rectangle(image, (width // 4, height // 4), (width // 2, height // 2), (255, 0, 0), -1)
    ok, encoded = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def labelled(folder: Path, stem: str, box, seed: int = 0) -> Path:
    """A picture in ``folder/images`` with its label in ``folder/labels`` (the tutorial's layout)."""
    image = picture(folder / "images" / f"{stem}.jpg", seed=seed)
    write_labelme(folder / "labels" / f"{stem}.json", image, box, W, H)
    return image


def base_dataset(root: Path) -> Path:
    """A good split dataset: faces and no-face pictures in every split."""
    for split, count in (("train", 8), ("val", 3), ("test", 3)):
        for i in range(count):
            labelled(root / split, f"{split}{i}", (8 + i, 6, 40, 30 + i % 5) if i % 3 else None, seed=i)
    return root


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def debris(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX) or p.name.endswith(".tmp")]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, colour: int = 2, depth: int = 8, rows: bytes = b"\0" * 1000) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height``: what a decompression bomb looks like."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows, 9))
            + png_chunk(b"IEND", b""))


# ------------------------------------------------------------------------ 1. writes that fail half-way

needs_rlimit = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")


def run_with_file_size_limit(code: str, limit: int) -> subprocess.CompletedProcess:
    """Runs ``code`` in a child whose writes fail past ``limit`` bytes per file (EFBIG, like a full disk)."""
    prelude = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process\n"
        f"def limit():\n    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
    )
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


@needs_rlimit
def test_a_label_save_that_fails_half_way_keeps_the_old_label(tmp_path):
    image = picture(tmp_path / "images" / "a.jpg")
    label = tmp_path / "labels" / "a.json"
    write_labelme(label, image, (10, 10, 40, 30), W, H)
    before = label.read_bytes()
    done = run_with_file_size_limit(
        "from training.data.formats.labelme import write_labelme\n"
        "limit()\n"
        "try:\n"
        f"    write_labelme({str(label)!r}, {str(image)!r}, (1.5, 2.5, 33.25, 44.75), {W}, {H})\n"
        "except OSError as exc:\n"
        "    print('OSError', exc.errno, exc)\n",
        limit=100,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"OSError {errno.EFBIG}") and str(label) in done.stdout, done.stdout
    assert label.read_bytes() == before  # byte for byte: the failed save touched nothing
    assert debris(tmp_path) == []


@needs_rlimit
def test_a_collect_picture_that_fails_half_way_leaves_no_empty_or_half_jpeg(tmp_path):
    target = tmp_path / "images" / "shot.jpg"
    target.parent.mkdir()
    done = run_with_file_size_limit(
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from desktop.collect_tab import save_jpeg\n"
        "frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)\n"
        "limit()\n"
        "try:\n"
        f"    save_jpeg(frame, Path({str(target)!r}))\n"
        "except OSError as exc:\n"
        "    print('OSError', exc)\n",
        limit=4096,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OSError") and str(target) in done.stdout, done.stdout
    assert list(target.parent.iterdir()) == []  # no 0-byte or half picture, no temporary file


@needs_rlimit
def test_a_suggested_label_that_fails_half_way_keeps_the_old_one(tmp_path):
    image = picture(tmp_path / "a.jpg")
    label = tmp_path / "a.json"
    write_labelme(label, image, None, W, H)
    before = label.read_bytes()
    code = (
        "from pathlib import Path\n"
        "from training.inference.autolabel import SuggestionMark, write_suggested_label\n"
        "limit()\n"
        "for overwrite, path in ((True, {label!r}), (False, {new!r})):\n"
        "    try:\n"
        "        write_suggested_label(Path(path), Path({image!r}), (1, 2, 30, 40), 64, 48,\n"
        "                              SuggestionMark('MTCNN', 0.99), overwrite=overwrite)\n"
        "    except OSError as exc:\n"
        "        print('OSError', exc.errno)\n"
    ).format(label=str(label), new=str(tmp_path / "new.json"), image=str(image))
    done = run_with_file_size_limit(code, limit=200)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["OSError", str(errno.EFBIG)] * 2
    assert label.read_bytes() == before
    assert not (tmp_path / "new.json").exists()
    assert debris(tmp_path) == []


def test_suggested_label_is_never_written_over_a_label_that_appeared(tmp_path):
    from training.inference.autolabel import SuggestionMark, write_suggested_label

    image = picture(tmp_path / "a.jpg")
    label = tmp_path / "a.json"
    mark = SuggestionMark("MTCNN", 0.9)
    assert write_suggested_label(label, image, (1, 2, 30, 40), W, H, mark) is True
    first = label.read_bytes()
    assert write_suggested_label(label, image, None, W, H, mark) is False
    assert label.read_bytes() == first
    assert read_label(label, W, H) != (0.0, 0.0, 0.0, 0.0)
    assert debris(tmp_path) == []


# -------------------------------------------------------------------------- 2. odd label files


def _label(shapes, **fields) -> str:
    return json.dumps({"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": "x.jpg", "imageData": None,
                       "imageHeight": H, "imageWidth": W, **fields})


def _face(points, **fields) -> dict:
    return {"label": "face", "points": points, "shape_type": "rectangle", "flags": {}, **fields}


HUGE = "1" + "0" * 399  # 400 digits: json reads it as an int, float() overflows

ODD_LABELS = {
    # name: (label file text, what the problem must say)
    "400-digit-coordinate": (_label([_face([[1, 2], [30, 40]])]).replace("30", HUGE, 1),
                             'the "face" rectangle has a corner too large for a number: a 400-digit number'),
    "deeply-nested": ("[" * 100_000 + "]" * 100_000, "its JSON is nested too deeply"),
    "width-as-text": (_label([_face([[1, 2], [30, 40]])], imageWidth=str(W)),
                      f'"imageWidth" should be a whole number of pixels, got "{W}"'),
    "height-400-digits": (_label([], imageHeight=10**400), '"imageHeight" should be a whole number of pixels, '
                                                           "got a 401-digit number"),
    "width-infinity": (_label([]).replace(f'"imageWidth": {W}', '"imageWidth": Infinity'),
                       '"imageWidth" should be a whole number of pixels, got Infinity'),
    "width-true": (_label([], imageWidth=True), '"imageWidth" should be a whole number of pixels, got true'),
    "nan-corner": (_label([_face([[1, 2], [30, 40]])]).replace("30", "NaN", 1),
                   'the "face" rectangle has a non-numeric corner: NaN'),
    "corner-as-text": (_label([_face([[1, "2"], [30, 40]])]),
                       'the "face" rectangle has a corner that is not a number: "2"'),
    "corner-true": (_label([_face([[1, True], [30, 40]])]), 'the "face" rectangle has a corner that is not a number: true'),
    "three-numbers-a-corner": (_label([_face([[1, 2, 3], [30, 40]])]),
                               'needs two [x, y] corner points, got [[1, 2, 3], [30, 40]]'),
    "points-not-a-list": (_label([_face({"x": 1})]), 'needs two [x, y] corner points, got an object'),
    "shape-not-an-object": (_label(["face"]), 'shape 1 should be an object with a label and points, got "face"'),
    "label-a-number": (_label([{"label": 7, "points": [], "shape_type": "rectangle"}]),
                       'shape 1\'s "label" should be text, got 7'),
    "shapes-null": (_label(None), 'not a labelme file: it has no "shapes" list'),
    "shape-type-odd-text": (_label([{"label": "face", "points": [[1, 2]], "shape_type": "\udcff\n"}]),
                            'the "face" shape is a "\\udcff\\n", not a rectangle'),
    "not-utf8": (None, "not valid JSON: the file is not UTF-8 text"),
}


def write_odd_label(path: Path, text: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is None:
        path.write_bytes(b'{"shapes": ["\xff\xfe"]}')
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")


@pytest.mark.parametrize(("text", "message"), ODD_LABELS.values(), ids=ODD_LABELS.keys())
def test_an_odd_label_is_a_listed_problem_naming_the_file(tmp_path, text, message):
    root = base_dataset(tmp_path / "data")
    image = picture(root / "train" / "images" / "odd.jpg")
    label = root / "train" / "labels" / "odd.json"
    write_odd_label(label, text)

    with pytest.raises(DataError) as caught:
        read_label(label, W, H)
    assert caught.value.path == label and message in caught.value.message
    assert "but the picture is" not in caught.value.message

    dataset = load_dataset(root)
    assert [str(p) for p in dataset.problems] == [f"{label}: {caught.value.message}"]
    assert image not in [s.image_path for s in dataset.splits["train"]]
    with pytest.raises(DataError) as strict:
        load_dataset(root, strict=True)
    assert strict.value.path == label

    code, out, err = run_cli(["summary", str(root)])
    assert code == 0 and err == "" and f"  {label}: {caught.value.message}" in out
    code, out, err = run_cli(["summary", str(root), "--json"])
    assert code == 0 and json.loads(out)["problems"] == [str(p) for p in dataset.problems]
    code, out, err = run_cli(["summary", str(root), "--strict"])
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [f"facetracker-train summary: error: {label}: {caught.value.message}"]


def test_several_face_rectangles_are_every_face_and_the_largest_for_a_single_face_model(tmp_path):
    root = base_dataset(tmp_path / "data")
    picture(root / "train" / "images" / "two.jpg")
    label = root / "train" / "labels" / "two.json"
    label.write_text(_label([_face([[1, 1], [11, 11]]), _face([[40, 30], [20, 10]]), _face([[2, 2], [5, 5]])]))
    warnings: list[Problem] = []
    box = read_label(label, W, H, warnings.append)
    assert box == pytest.approx((20 / W, 10 / H, 40 / W, 30 / H))  # the second one, the largest: not the first
    assert [str(w) for w in warnings] == [
        f'{label}: 3 "face" rectangles: a single-face model finds one face, so the largest, [20, 10, 40, 30], is used']
    dataset = load_dataset(root, strict=True)  # every face kept: neither a problem nor a dataset warning
    assert dataset.warnings == [] and dataset.problems == []
    sample = next(s for s in dataset.splits["train"] if s.image_path.stem == "two")
    assert sample.face_count == 3 and sample.box == pytest.approx(box)
    assert dataset.several_faces_notes() == warnings  # what the trainer of a single-face model warns with
    code, out, _ = run_cli(["summary", str(root)])
    assert code == 0 and "Warnings" not in out
    assert "1 picture shows several faces (" in out
    # One bad rectangle among them spoils the label: which one is said.
    label.write_text(_label([_face([[1, 1], [11, 11]]), _face([[100, 90], [120, 95]])]))
    with pytest.raises(DataError, match=r"box 2 of 2 \[100, 90, 120, 95\] lies outside the 64x48 image"):
        read_label(label, W, H)


# ------------------------------------------------------------------------------- 3. odd pictures


def _garbled_jpeg(path: Path) -> None:
    """A JPEG with 200 random bytes in its scan data: OpenCV decodes it without an error, into garbage.

    (JPEG has no checksum: about half of such garbles decode without a word from libjpeg either,
    anywhere. This one is one that libjpeg notices.)
    """
    picture(path, 320, 240, seed=5)
    data = bytearray(path.read_bytes())
    start = data.find(b"\xff\xda") + 600
    data[start : start + 200] = np.random.default_rng(0).integers(0, 256, 200, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    assert cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_COLOR) is not None  # the old path


def _png_bad_checksum(path: Path) -> None:
    picture(path)
    data = bytearray(path.read_bytes())
    start = data.find(b"IDAT") + 20
    data[start : start + 8] = bytes(8)
    path.write_bytes(bytes(data))


def _png_bad_pixels_good_checksum(path: Path) -> None:
    """Damaged compressed pixels inside a chunk whose CRC was recomputed: only inflating finds it."""
    picture(path)
    data = path.read_bytes()
    start = data.find(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[start : start + 4])
    body = bytearray(data[start + 8 : start + 8 + length])
    body[10 : 10 + 16] = b"\xff" * 16
    path.write_bytes(data[:start] + png_chunk(b"IDAT", bytes(body)) + data[start + 12 + length :])


def _png_short_pixels(path: Path) -> None:
    path.write_bytes(png_declaring(W, H, rows=b"\0" * 100))


def _png_bomb(path: Path) -> None:
    path.write_bytes(png_declaring(40_000, 40_000))
    assert len(path.read_bytes()) < 500


def _jpeg_bomb(path: Path) -> None:
    picture(path)
    data = bytearray(path.read_bytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    path.write_bytes(bytes(data))


ODD_PICTURES = {
    "garbled-jpeg-scan": (".jpg", _garbled_jpeg, "corrupt JPEG: its image data is damaged ("),
    "png-bad-checksum": (".png", _png_bad_checksum, "corrupt PNG: its IDAT chunk fails its checksum"),
    "png-damaged-pixels": (".png", _png_bad_pixels_good_checksum, "corrupt PNG: its compressed pixel data is damaged"),
    "png-pixels-short": (".png", _png_short_pixels, "corrupt PNG: its pixel data stops short of the 64x48 picture"),
    "png-40000x40000": (".png", _png_bomb, "the picture is 40000x40000 (1600 megapixels), more than the "
                                           "100-megapixel limit"),
    "jpeg-60000x60000": (".jpg", _jpeg_bomb, "the picture is 60000x60000 (3600 megapixels), more than the "
                                             "100-megapixel limit"),
}


@pytest.mark.parametrize(("suffix", "make", "message"), ODD_PICTURES.values(), ids=ODD_PICTURES.keys())
def test_a_damaged_picture_is_a_listed_problem_before_training(tmp_path, suffix, make, message):
    root = base_dataset(tmp_path / "data")
    bad = root / "train" / "images" / f"odd{suffix}"
    make(bad)
    write_labelme(root / "train" / "labels" / "odd.json", bad, (10, 10, 30, 30), W, H)

    for read in (check_picture, load_image):
        with pytest.raises(DataError) as caught:
            read(bad)
        assert caught.value.path == bad and message in caught.value.message
    dataset = load_dataset(root)
    assert [p.path for p in dataset.problems] == [bad] and message in dataset.problems[0].message
    code, out, err = run_cli(["summary", str(root), "--strict"])
    assert code == 1 and out == "" and err.startswith(f"facetracker-train summary: error: {bad}: {message}")
    assert len(err.strip().splitlines()) == 1


def test_the_pixel_limit_is_well_above_a_48_megapixel_photo(tmp_path):
    assert MAX_PIXELS >= 2 * 8000 * 6000
    big = tmp_path / "big.png"
    row = b"\0" + b"\x55" * (8000 // 8)  # 1-bit grey: an 8000x6000 PNG that is quick to check
    big.write_bytes(png_declaring(8000, 6000, colour=0, depth=1, rows=row * 6000))
    assert check_picture(big) == (8000, 6000)
    assert load_image(big).shape == (6000, 8000, 3)
    over = tmp_path / "over.png"
    over.write_bytes(png_declaring(12_000, 9_000, colour=0, depth=1))
    with pytest.raises(DataError, match="108 megapixels"):
        image_size(over)


# --------------------------------------------------------- 4. pictures without labels, one-class data


def test_pictures_without_a_label_are_counted_as_no_face_in_every_summary(tmp_path):
    root = base_dataset(tmp_path / "data")
    for i in range(3):
        picture(root / "train" / "images" / f"bare{i}.jpg")
    dataset = load_dataset(root)
    assert dataset.unlabelled() == 3
    bare = [s for s in dataset.splits["train"] if s.label_path is None]
    assert len(bare) == 3 and not any(s.has_face for s in bare)
    assert "\n3 pictures without a label file, counted as no face\n" in dataset.summary_text()
    code, out, _ = run_cli(["summary", str(root)])
    assert "3 pictures without a label file, counted as no face" in out
    code, out, _ = run_cli(["summary", str(root), "--json"])
    assert json.loads(out)["unlabelled"] == 3 and json.loads(out)["cannot_train"] is None


@pytest.mark.parametrize("kind", ["no-face-at-all", "no-picture-without-a-face"])
def test_a_one_class_dataset_is_refused_with_a_clear_message(tmp_path, kind):
    root = tmp_path / "data"
    for split, count in (("train", 5), ("val", 2)):
        for i in range(count):
            if kind == "no-face-at-all":
                picture(root / split / "images" / f"{split}{i}.jpg")  # no labels: no face, by convention
            else:
                labelled(root / split, f"{split}{i}", (5, 5, 30, 30))
    dataset = load_dataset(root)
    expected = ("none of the 5 training pictures has a face labelled, 5 of them without a label file"
                if kind == "no-face-at-all" else "all 5 training pictures show a face and none is without")
    assert expected in dataset.training_refusal()
    with pytest.raises(DataError, match="cannot train on this dataset: " + expected) as caught:
        dataset.require_trainable()
    assert caught.value.path == root
    code, out, _ = run_cli(["summary", str(root)])
    assert code == 0 and f"Cannot train: {expected}" in out
    # Training refuses it before building anything, with the reason and the dataset's name.
    code, _, err = run_cli([str(root), "--out", str(tmp_path / "run"), "--epochs", "1", "--progress", "none"])
    assert code == 1 and expected in err and str(root) in err
    assert not (tmp_path / "run" / "last.keras").exists()
    load_dataset(base_dataset(tmp_path / "good")).require_trainable()  # both kinds: accepted


# ------------------------------------------------------------------ 5. a run folder inside a dataset


def _fake_run(folder: Path) -> None:
    """What a run writes first (config.json) and the pictures it adds (losses.png and others)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"config": {"data": "x"}, "weights_used": "none"}))
    (folder / "metrics.json").write_text(json.dumps({"stop_reason": "done"}))
    picture(folder / "losses.png", 200, 100)
    picture(folder / "pr_curve.png", 200, 100)


def test_a_run_folder_is_never_read_as_training_pictures(tmp_path):
    # Labelme's layout (JSON beside each picture); the run was sent to a folder named like a split.
    root = tmp_path / "data"
    for i in range(10):
        image = picture(root / f"p{i}.jpg", seed=i)
        write_labelme(root / f"p{i}.json", image, (5, 5, 30, 30) if i % 3 else None, W, H)
    before = load_dataset(root)
    _fake_run(root / "train")
    after = load_dataset(root)
    assert after.layout == "beside" and after.splits == before.splits and after.problems == []
    assert [w.path for w in after.warnings] == []  # not a picture folder of this layout: nothing to say

    # The run sent into the pictures folder itself: none of its files is read, and the summary says why.
    flat = tmp_path / "flat"
    for i in range(6):
        labelled(flat, f"p{i}", (5, 5, 30, 30) if i % 2 else None, seed=i)
    _fake_run(flat / "images")
    with pytest.raises(DataError, match=r"no pictures found \(.*images holds a training run"):
        load_dataset(flat)
    _fake_run(flat / "labels")
    shutil.rmtree(flat / "images")
    for i in range(6):
        picture(flat / "images" / f"p{i}.jpg", seed=i)
    dataset = load_dataset(flat)
    assert all(s.label_path is None for samples in dataset.splits.values() for s in samples)
    assert [str(w) for w in dataset.warnings] == [
        f"{flat / 'labels'}: holds a training run (its config.json): none of its files is read as a picture or "
        "a label; keep run folders (--out) outside the dataset"]
    assert not any(p.path.name in ("losses.png", "config.json", "metrics.json") for p in dataset.problems)


# ------------------------------------------- 6. the commands and the training on a dataset with odd files


def odd_dataset(root: Path) -> tuple[Path, list[Path]]:
    """A good dataset plus one of each odd label and picture, in train and test; returns the odd files."""
    base_dataset(root)
    odd: list[Path] = []
    for n, key in enumerate(("400-digit-coordinate", "deeply-nested", "width-as-text")):
        split = ("train", "test")[n % 2]
        picture(root / split / "images" / f"label{n}.jpg")
        write_odd_label(root / split / "labels" / f"label{n}.json", ODD_LABELS[key][0])
        odd.append(root / split / "labels" / f"label{n}.json")
    for n, key in enumerate(("garbled-jpeg-scan", "png-bad-checksum", "png-40000x40000")):
        suffix, make, _ = ODD_PICTURES[key]
        split = ("train", "test")[n % 2]
        make(root / split / "images" / f"picture{n}{suffix}")
        odd.append(root / split / "images" / f"picture{n}{suffix}")
    return root, sorted(odd)


def skipped_paths(stderr: str) -> list[Path]:
    """The files a command said it skipped (other lines, such as library warnings, are left out)."""
    return sorted(Path(line.removeprefix("skipped ").split(": ")[0]) for line in stderr.splitlines()
                  if line.startswith("skipped "))



def test_summary_in_a_real_process_lists_every_odd_file_without_a_traceback(tmp_path):
    root, odd = odd_dataset(tmp_path / "data")
    for extra in ("--json", "", "--strict"):
        done = subprocess.run([sys.executable, "-m", "training", "summary", str(root), *extra.split()],
                              capture_output=True, text=True, timeout=120, cwd=REPO,
                              env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        assert "Traceback" not in done.stderr
        if extra == "--strict":
            assert done.returncode == 1 and any(str(path) in done.stderr for path in odd)
        else:
            assert done.returncode == 0, done.stderr
            assert all(str(path) in done.stdout for path in odd)


def test_evaluate_skips_and_lists_odd_files_and_strict_stops(tmp_path, tiny_model_file):
    root, odd = odd_dataset(tmp_path / "data")
    code, out, err = run_cli(["evaluate", str(tiny_model_file), str(root), "--json"])
    assert code == 0, err
    report = json.loads(out)
    assert report["images"] == 3 and sorted(Path(p.split(": ")[0]) for p in report["skipped"]) == odd
    assert skipped_paths(err) == odd
    code, out, err = run_cli(["evaluate", str(tiny_model_file), str(root), "--strict"])
    assert code == 1 and len(err.strip().splitlines()) == 1 and any(str(p) in err for p in odd)


def test_preview_skips_and_lists_odd_files(tmp_path):
    root, odd = odd_dataset(tmp_path / "data")
    out_png = tmp_path / "grid.png"
    code, out, err = run_cli(["preview", str(root), "--out", str(out_png), "--count", "4", "--input-size", "32"])
    assert code == 0, err
    assert cv2.imread(str(out_png)) is not None and debris(tmp_path) == []
    assert skipped_paths(err) == odd
    code, _, err = run_cli(["preview", str(root), "--out", str(out_png), "--strict"])
    assert code == 1 and len(err.strip().splitlines()) == 1


def test_predict_goes_on_past_bad_pictures_and_fails_at_the_end(tmp_path, tiny_model_file):
    folder = tmp_path / "photos"
    picture(folder / "a.jpg")
    _garbled_jpeg(folder / "b.jpg")
    _png_bomb(folder / "c.png")
    picture(folder / "d.png")
    _png_bad_checksum(folder / "e.png")
    picture(folder / "f.jpg", seed=3)
    out_dir = tmp_path / "drawn"
    code, out, err = run_cli(["predict", str(tiny_model_file), str(folder), "--out", str(out_dir)])
    assert code == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.jpg", "d.png", "f.jpg"]  # everything after b too
    assert [line.split(": ")[1] for line in err.splitlines() if line.startswith("facetracker-train")] == [
        f"skipped {folder / name}" for name in ("b.jpg", "c.png", "e.png")]
    assert "Traceback" not in err
    lines = out.strip().splitlines()
    assert lines[-2:] == ["3 of 6 pictures could not be read (named above on stderr); 3 drawn.",
                          f"Results saved to {out_dir}"]
    assert [line.split(": ")[0] for line in lines[:-2]] == [str(folder / n) for n in ("a.jpg", "d.png", "f.jpg")]

    strict_dir = tmp_path / "strict"
    code, out, err = run_cli(["predict", str(tiny_model_file), str(folder), "--out", str(strict_dir), "--strict"])
    assert code == 1 and [p.name for p in strict_dir.iterdir()] == ["a.jpg"]
    assert [line for line in err.splitlines() if line.startswith("facetracker-train")] == [
        f"facetracker-train predict: error: {folder / 'b.jpg'}: {load_error(folder / 'b.jpg')}"]

    # Drawing into the pictures' own folder would replace them: each is refused, none is touched.
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, out, err = run_cli(["predict", str(tiny_model_file), str(folder / "a.jpg"), "--out", str(folder)])
    assert code == 1 and "would replace the picture itself" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def load_error(path: Path) -> str:
    try:
        load_image(path)
    except DataError as exc:
        return exc.message
    raise AssertionError(f"{path} loaded")


@pytest.mark.slow
def test_training_skips_and_names_odd_files_or_stops_at_the_first_with_strict(tmp_path):
    from training.engine.trainer import TrainConfig, train

    root, odd = odd_dataset(tmp_path / "data")
    events: list[dict] = []
    config = TrainConfig(data=str(root), out=str(tmp_path / "run"), epochs=1, batch_size=4, backbone="tiny",
                         input_size=32, augment=False, patience=0, weights="none")
    result = train(config, on_event=events.append)
    assert (result.run_dir / "last.keras").is_file()
    skipped = sorted(Path(e["message"].removeprefix("skipped ").split(": ")[0]) for e in events
                     if e.get("event") == "warning" and e["message"].startswith("skipped "))
    assert skipped == odd
    start = next(e for e in events if e.get("event") == "start")
    assert start["train_images"] == 8
    with pytest.raises(DataError) as caught:
        train(TrainConfig(data=str(root), out=str(tmp_path / "strict"), epochs=1, batch_size=4, backbone="tiny",
                          input_size=32, augment=False, weights="none", strict=True))
    assert caught.value.path in odd


# ------------------------------------------------------------------------------ 7. the app's tabs


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def test_label_tab_lists_an_odd_label_and_a_failed_save_keeps_the_old_one(qtbot, settings, tmp_path, monkeypatch):
    import training.core.files
    from desktop.label_tab import CLASSIC, FACE, UNLABELLED, LabelTab

    root = tmp_path / "data"
    labelled(root, "a_face", (8, 6, 40, 30))
    picture(root / "images" / "b_odd.jpg")
    odd = root / "labels" / "b_odd.json"
    write_odd_label(odd, ODD_LABELS["400-digit-coordinate"][0])
    labelled(root, "c_two", None)
    (root / "labels" / "c_two.json").write_text(_label([_face([[1, 1], [5, 5]]), _face([[10, 10], [40, 40]])]))

    tab = LabelTab(settings)
    qtbot.addWidget(tab)
    tab.set_engine(CLASSIC)  # no MTCNN to load for the suggestions of the unlabelled picture
    tab.set_dataset(root)
    qtbot.waitUntil(lambda: len(tab.entries) == 3, timeout=10_000)
    problems = tab.problems_view.toPlainText()
    assert f"{odd}: {ODD_LABELS['400-digit-coordinate'][1]}" in problems
    assert "c_two.json" not in problems  # two faces are two faces (the tab draws both), not a warning
    entry = tab.entries[1]
    assert entry.status == UNLABELLED and entry.label_path == odd and "too large for a number" in entry.note
    assert "int too large" not in tab.status_label.text()

    tab._show(0)
    assert tab.current_entry().status == FACE
    label = root / "labels" / "a_face.json"
    before = label.read_bytes()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(training.core.files.os, "fsync", no_space)
    tab.mark_no_face()
    monkeypatch.undo()
    assert tab.status_label.text() == f"{label}: cannot write the label: {os.strerror(errno.ENOSPC)}"
    assert label.read_bytes() == before and debris(root) == []
    assert tab.current_entry().status == FACE and tab.index == 0
    tab.mark_no_face()
    assert json.loads(label.read_text())["shapes"] == [] and debris(root) == []
    tab.shutdown()


def test_train_tab_summary_names_odd_files_and_refuses_a_one_class_dataset(qtbot, settings, tmp_path):
    from desktop.train_tab import TrainTab

    root, odd = odd_dataset(tmp_path / "data")
    tab = TrainTab(settings)
    qtbot.addWidget(tab)
    tab.set_dataset(root)
    qtbot.waitUntil(lambda: "Problems (" in tab.summary_view.toPlainText(), timeout=20_000)
    text = tab.summary_view.toPlainText()
    assert all(f"  {path}: " in text for path in odd)
    assert "without a label file, counted as no face" in text

    faceless = tmp_path / "faceless"
    for split in ("train", "val"):
        for i in range(3):
            picture(faceless / split / "images" / f"{i}.jpg")
    tab.set_dataset(faceless)
    qtbot.waitUntil(lambda: "Cannot train: none of the 3 training pictures" in tab.summary_view.toPlainText(),
                    timeout=20_000)
    assert not tab.dataset_trainable() and not tab.start_button.isEnabled()
    tab.shutdown()
