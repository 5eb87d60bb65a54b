"""Fuzzing the format readers (issue 19): COCO, YOLO, Pascal VOC and WIDER FACE annotation files and the
model sidecar JSON, mutated at random from valid ones (a fixed seed, so a failure reproduces).

Every reading either works, with every picture inside the source folder, or ends with the reader's own
error naming a file of the source; never another exception, never a picture from outside.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from training.core.detection import MODEL_FINGERPRINT, ModelFileError, file_fingerprint, read_model_metadata
from training.core.inputs import parse_json
from training.data.dataset import DataError
from training.data.formats import read_dataset

SEED = 20270119
CASES = 120  # per reader
W, H = 64, 48

ODD_VALUES: list[Any] = [None, True, False, 0, -1, 1, 2, 7, 2**31, -(2**63), 10**30, 0.5, -0.0, 1e308, float("nan"),
                         float("inf"), "", "face", "Face", "a.jpg", "../outside/x.jpg", "/etc/hostname", "images/b.jpg",
                         "\udcff.jpg", "\x00", "x" * 300, "\u00b2", [], [1], [1, 2, 3, 4], [[1]], {}, {"id": 1}]


def odd_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 3 else 8)
    if kind < 8:
        return rng.choice(ODD_VALUES)
    if kind < 10:
        return [odd_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice(["id", "image_id", "file_name", "bbox", "category_id", "name", "width"]): odd_value(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def mutate_json(rng: random.Random, value: Any) -> Any:
    """A copy of a JSON value with one part replaced, removed, repeated or nested deeply."""
    value = json.loads(json.dumps(value))
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in list(node):
                paths.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for index in range(len(node)):
                paths.append((node, index))
                walk(node[index])

    walk(value)
    if not paths:
        return odd_value(rng)
    parent, key = rng.choice(paths)
    action = rng.randrange(5)
    if action == 0 and isinstance(parent, dict):
        del parent[key]
    elif action == 1 and isinstance(parent, list):
        parent.append(json.loads(json.dumps(parent[key])))  # a repeated entry: the same id twice
    elif action == 2:
        parent[key] = f"__deep_{rng.choice((3, 70, 5000))}__"  # written out by dump(): too deep for json.dumps
    else:
        parent[key] = odd_value(rng)
    return value


def dump(document: Any) -> str:
    """The document as JSON text, each ``"__deep_N__"`` written as a list nested N levels deep."""
    text = json.dumps(document)
    for depth in (3, 70, 5000):
        text = text.replace(f'"__deep_{depth}__"', "[" * depth + "1" + "]" * depth)
    return text


def text_damage(rng: random.Random, text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    action = rng.randrange(4)
    if action == 0:
        return data[: rng.randrange(len(data) + 1)]
    if action == 1:
        at = rng.randrange(len(data) + 1)
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8))) + data[at:]
    if action == 2:
        return data.replace(b"1", b"9" * rng.choice((5, 5000)), 1)
    return data


def pictures(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(names):
        image = np.random.default_rng(n).integers(0, 255, (H, W, 3), dtype=np.uint8)
        ok, encoded = cv2.imencode(".jpg", image)
        (folder / name).write_bytes(encoded.tobytes())


def check_reading(root: Path, fmt: str, shown: bytes) -> str:
    """Read ``root`` as ``fmt``: works with every picture inside, or a DataError naming a file of the source."""
    try:
        _, found = read_dataset(root, fmt)
    except DataError as exc:
        message = str(exc)
        assert "\n" not in message, (message, shown[:300])
        assert exc.path == root or root in exc.path.parents, (message, shown[:300])
        assert message.startswith(str(exc.path).encode("utf-8", "backslashreplace").decode()), message
        return "refused"
    outside = root.parent / "outside"
    for picture in found:
        resolved = picture.image.resolve()
        assert root.resolve() in resolved.parents and outside not in resolved.parents, (picture.image, shown[:300])
    return "read"


@pytest.fixture
def source(tmp_path) -> Path:
    pictures(tmp_path / "outside", ["x.jpg"])  # what a name climbing out of the source would reach
    return tmp_path / "src"


def _outcomes(results: list[str]) -> None:
    assert {"read", "refused"} <= set(results), results  # the corpus has both kinds


def test_fuzzed_coco_files(source):
    rng = random.Random(SEED)
    pictures(source / "images", ["a.jpg", "b.jpg"])
    valid = {"images": [{"id": 1, "file_name": "a.jpg", "width": W, "height": H},
                        {"id": 2, "file_name": "b.jpg", "width": W, "height": H}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 20]},
                             {"id": 2, "image_id": 2, "category_id": 1, "bbox": [30, 10, 12, 12]}],
             "categories": [{"id": 1, "name": "face"}]}
    path = source / "annotations" / "instances_default.json"
    path.parent.mkdir(parents=True)
    results = []
    for _ in range(CASES):
        document = valid
        for _ in range(rng.randint(1, 3)):
            document = mutate_json(rng, document)
        data = text_damage(rng, dump(document)) if rng.random() < 0.2 else dump(document).encode(
            "utf-8", "surrogatepass")
        path.write_bytes(data)
        results.append(check_reading(source, "coco", data))
    _outcomes(results)


YOLO_WORDS = ["0", "1", "3", "-1", "0.5", "0.2", "-0.2", "0", "1.5", "nan", "inf", "1e999", "\u00b2", "x", "0.25", "9" * 400]


def test_fuzzed_yolo_labels_and_class_lists(source):
    rng = random.Random(SEED + 1)
    pictures(source / "images", ["a.jpg", "b.jpg"])
    (source / "labels").mkdir()
    results = []
    for _ in range(CASES):
        for name in ("a", "b"):
            lines = []
            for _ in range(rng.randrange(4)):
                words = (["0", "0.5", "0.5", "0.2", "0.2"] if rng.random() < 0.5 else
                         [rng.choice(YOLO_WORDS) for _ in range(rng.choice((4, 5, 5, 5, 7)))])
                if rng.random() < 0.3:
                    words[rng.randrange(len(words))] = rng.choice(YOLO_WORDS)
                lines.append(" ".join(words))
            text = "\n".join(lines) + "\n"
            data = text_damage(rng, text) if rng.random() < 0.15 else text.encode()
            (source / "labels" / f"{name}.txt").write_bytes(data)
        for extra in ("data.yaml", "classes.txt"):
            (source / extra).unlink(missing_ok=True)
        choice = rng.randrange(4)
        if choice == 1:
            names = rng.choice(["names:\n  0: face\n", "names: [face, hand]\n", "names: {a: face}\n", "names: 7\n",
                                "names:\n" + "  - [" * 50 + "]" * 50 + "\n", "names: [face\n", "\udcff: 1\n"])
            (source / "data.yaml").write_bytes(names.encode("utf-8", "surrogatepass"))
        elif choice == 2:
            (source / "classes.txt").write_bytes(rng.choice([b"face\n", b"hand\nface\n", b"\xff\xfe", b""]))
        results.append(check_reading(source, "yolo", data))
    _outcomes(results)


VOC_TEMPLATE = ("<annotation><filename>{name}</filename><size><width>{w}</width><height>{h}</height></size>"
                "<object><name>{label}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
                "<ymax>{y2}</ymax></bndbox></object></annotation>")
VOC_VALUES = ["5", "25", "-5", "0", "64", "48", "1e999", "nan", "", "x", "face", "hand", "a.jpg", "../outside/x.jpg",
              "/etc/hostname", "<b>", "&amp;", "\u00b2"]


def test_fuzzed_voc_files(source):
    rng = random.Random(SEED + 2)
    pictures(source / "JPEGImages", ["a.jpg", "b.jpg"])
    (source / "Annotations").mkdir()
    results = []
    for _ in range(CASES):
        fields = {"name": "a.jpg", "w": str(W), "h": str(H), "label": "face", "x1": "5", "y1": "5", "x2": "25",
                  "y2": "25"}
        for key in rng.sample(list(fields), rng.randint(1, 3)):
            fields[key] = rng.choice(VOC_VALUES)
        text = VOC_TEMPLATE.format(**fields)
        data = text_damage(rng, text) if rng.random() < 0.25 else text.encode()
        (source / "Annotations" / "a.xml").write_bytes(data)
        lists = source / "ImageSets" / "Main"
        if rng.random() < 0.3:
            lists.mkdir(parents=True, exist_ok=True)
            (lists / "train.txt").write_bytes(rng.choice([b"a\nb\n", b"a\n", b"\xe9\n", b"a b c\n"]))
        elif lists.exists():
            (lists / "train.txt").unlink(missing_ok=True)
        results.append(check_reading(source, "voc", data))
    _outcomes(results)


def test_fuzzed_wider_annotation_files(source):
    rng = random.Random(SEED + 3)
    pictures(source / "WIDER_train" / "images" / "0--Parade", ["a.jpg", "b.jpg"])
    path = source / "wider_face_split" / "wider_face_train_bbx_gt.txt"
    path.parent.mkdir(parents=True)
    names = ["0--Parade/a.jpg", "0--Parade/b.jpg", "../../../outside/x.jpg", "/etc/hostname", "0--Parade/c.jpg", ""]
    numbers = ["0", "1", "2", "5", "-3", "20", "64", "1e999", "nan", "x", "9" * 400]
    results = []
    for _ in range(CASES):
        lines = []
        for _ in range(rng.randint(1, 3)):
            lines.append(rng.choice(names) if rng.random() < 0.4 else rng.choice(names[:2]))
            count = rng.choice(["1", "1", "2", "0", "x", "-1"])
            lines.append(count)
            for _ in range(rng.choice((0, 1, 1, 2))):
                box = ["5", "5", "20", "20", "0", "0", "0", "0", "0", "0"]
                if rng.random() < 0.5:
                    box[rng.randrange(10)] = rng.choice(numbers)
                lines.append(" ".join(box[: rng.choice((10, 10, 10, 9))]))
        text = "\n".join(lines) + "\n"
        data = text_damage(rng, text) if rng.random() < 0.2 else text.encode()
        path.write_bytes(data)
        results.append(check_reading(source, "wider", data))
    _outcomes(results)


def test_fuzzed_model_sidecars(tmp_path):
    """Every sidecar is read as metadata or refused with an error naming it; a fingerprint that does not
    match the model is always refused."""
    rng = random.Random(SEED + 4)
    model = tmp_path / "best.tflite"
    model.write_bytes(b"\x00\x00\x00\x00TFL3 a model")
    sidecar = tmp_path / "best.tflite.json"
    valid = {"score_threshold": 0.4, "epoch": 3, "format": "tflite", MODEL_FINGERPRINT: file_fingerprint(model)}
    results = []
    for _ in range(CASES):
        document = valid
        for _ in range(rng.randint(1, 2)):
            document = mutate_json(rng, document)
        data = (text_damage(rng, dump(document)) if rng.random() < 0.25
                else dump(document).encode("utf-8", "surrogatepass"))
        sidecar.write_bytes(data)
        try:
            metadata = read_model_metadata(model)
        except ModelFileError as exc:
            assert str(exc).startswith(f"{sidecar}: ") and "\n" not in str(exc), (str(exc), data[:300])
            results.append("refused")
            continue
        assert isinstance(metadata, dict) and MODEL_FINGERPRINT not in metadata, data[:300]
        recorded = parse_json(data.decode("utf-8-sig")).get(MODEL_FINGERPRINT)
        expected = valid[MODEL_FINGERPRINT]
        assert recorded is None or (recorded["bytes"], recorded["sha256"]) == (expected["bytes"], expected["sha256"]), \
            data[:300]  # a fingerprint of another file never passes
        results.append("read")
    _outcomes(results)
