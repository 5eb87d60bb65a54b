"""Multi-face training end to end: a real multiface model trained for a few epochs on small generated
pictures with 0-3 faces, judged by AP50 over every face (validation, best epoch, threshold, test split,
evaluate), resumed; and a single-face model naming the pictures with several faces."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from keras import ops

from training.data.dataset import load_dataset
from training.data.formats.labelme import write_labelme
from training.engine.trainer import RunResult, TrainConfig, train
from training.evaluation.metrics import AP_MIN_SCORE, FaceMatches, average_precision
from training.model.backbones import MAX_FACES

pytestmark = pytest.mark.slow  # trainings: minutes on 2 cores

SIZE = 96  # picture side in pixels
INPUT = 64  # the model's input: an 8x8 grid


def write_faces_dataset(root: Path, counts=(48, 16, 16), seed: int = 0) -> Path:
    """Pictures of 0 to 3 cartoon faces (a skin disc, two eyes, a mouth) on noise, none overlapping,
    one labelme rectangle each; a picture without a face has no label file (the tutorial's way)."""
    rng = np.random.default_rng(seed)
    for split, count in zip(("train", "val", "test"), counts, strict=True):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(count):
            image = (np.full((SIZE, SIZE, 3), 90) + rng.integers(0, 30, (SIZE, SIZE, 3))).astype(np.uint8)
            wanted, boxes = i % 4, []
            for _ in range(40):
                if len(boxes) == wanted:
                    break
                side = int(rng.integers(SIZE // 5, SIZE // 3))
                x, y = (int(v) for v in rng.integers(0, SIZE - side, 2))
                box = (x, y, x + side, y + side)
                if all(box[2] < o[0] or o[2] < box[0] or box[3] < o[1] or o[3] < box[1] for o in boxes):
                    boxes.append(box)
            for x1, y1, x2, y2 in boxes:
                cx, cy, r = (x1 + x2) // 2, (y1 + y2) // 2, (x2 - x1) // 2
                cv2.circle(image, (cx, cy), r, (120, 170, 230), -1)
                for dx in (-r // 3, r // 3):
                    cv2.circle(image, (cx + dx, cy - r // 4), max(1, r // 6), (20, 20, 20), -1)
                cv2.line(image, (cx - r // 3, cy + r // 3), (cx + r // 3, cy + r // 3), (30, 30, 120), max(1, r // 8))
            path = root / split / "images" / f"p{i:03d}.png"
            cv2.imwrite(str(path), image)
            if boxes:
                write_labelme(root / split / "labels" / f"p{i:03d}.json", path, boxes, SIZE, SIZE)
    return root


@dataclass
class Trained:
    data: Path
    run: RunResult
    events: list[dict]
    header: list[str]  # the first run's history.csv
    rows: list[dict]
    state: dict  # and its train_state/state.json
    resumed: RunResult
    resumed_events: list[dict]


EPOCHS = 4


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    base = tmp_path_factory.mktemp("multiface")
    data = write_faces_dataset(base / "data")
    config = TrainConfig(data=str(data), backbone="multiface", epochs=EPOCHS, input_size=INPUT, batch_size=8,
                         learning_rate=4e-3, out=str(base / "run"))
    events: list[dict] = []
    run = train(config, on_event=events.append)
    header, rows = history_rows(run.run_dir)
    state = json.loads((run.run_dir / "train_state" / "state.json").read_text())
    resumed_events: list[dict] = []
    shutil.copytree(run.run_dir, base / "resumed")  # the first run's files stay as it left them
    # A best F1 no epoch can beat: a resume that ranked a multi-face run's epochs by F1 would keep epoch 4
    # whatever epoch 5 does; by AP50 (what it must do) nothing changes.
    for path in (base / "resumed" / "train_state").rglob("state.json"):
        path.write_text(json.dumps({**json.loads(path.read_text()), "best_val_f1": 2.0}))
    resumed = train(TrainConfig(data=str(data), epochs=EPOCHS + 1, resume=str(base / "resumed")),
                    on_event=resumed_events.append)
    return Trained(data, run, events, header, rows, state, resumed, resumed_events)


def history_rows(run_dir: Path) -> tuple[list[str], list[dict]]:
    with (run_dir / "history.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_batches_carry_every_face_and_the_loss_is_the_multi_face_one(tmp_path):
    """compute_loss of a multi-face network is multi_face_losses' regress + 0.5 * class on every face,
    not the single-face grid loss on the largest."""
    from training.data.augment import make_batches
    from training.engine.trainer import FaceTrackerModel
    from training.model.build import build_model, grid_cell_boxes
    from training.model.losses import CLASS_LOSS_WEIGHT, grid_losses, multi_face_losses

    data = write_faces_dataset(tmp_path / "data", counts=(8, 1, 1))
    samples = load_dataset(data).require_split("train")
    x, targets = make_batches(samples, input_size=INPUT, batch_size=8, max_faces=MAX_FACES)[0]
    assert [np.asarray(t).shape for t in targets] == [(8, 1), (8, 4), (8, MAX_FACES, 4), (8, MAX_FACES)]
    assert np.asarray(targets[3]).sum(axis=1).tolist() == [s.face_count for s in samples]

    model = FaceTrackerModel(build_model("multiface", INPUT, weights=None))
    assert model.multi_face
    predicted = model(x)
    total = float(ops.convert_to_numpy(model.compute_loss(x, targets, predicted)))
    score_logits, cells = predicted  # the raw score map and every cell's decoded box (cell_maps_model)
    grid = int(score_logits.shape[1])
    box_map = model.network.get_layer("box_map").output  # the same decoding as the model's own
    assert box_map.shape[-1] == 4
    np.testing.assert_allclose(ops.convert_to_numpy(cells), ops.convert_to_numpy(
        grid_cell_boxes(keras.Model(model.network.inputs, box_map)(x), grid)), atol=1e-5)
    class_l, regress_l = multi_face_losses(targets[2], targets[3], score_logits, cells, grid)
    assert total == pytest.approx(float(regress_l + CLASS_LOSS_WEIGHT * class_l), rel=1e-5)
    single_class, single_regress, _ = grid_losses(targets[0], targets[1], score_logits, cells, grid)
    assert total != pytest.approx(float(single_regress + CLASS_LOSS_WEIGHT * single_class), rel=1e-3)
    # The logged IoU: the best cell's box against the face it overlaps most (not always the largest).
    from training.evaluation.metrics import box_iou

    cells = ops.convert_to_numpy(cells)
    best = cells[np.arange(8), np.argmax(ops.convert_to_numpy(score_logits).reshape(8, -1), axis=1)]
    faces, mask = np.asarray(targets[2]), np.asarray(targets[3])
    per_face = [max((box_iou(faces[i, k:k + 1], best[i:i + 1])[0] for k in range(MAX_FACES) if mask[i, k]),
                    default=0.0) for i in range(8)]
    has_face = np.asarray(targets[0])[:, 0] > 0
    assert float(model.iou_tracker.result()) == pytest.approx(np.mean(np.asarray(per_face)[has_face]), abs=1e-5)


def test_validation_ap50_every_epoch_and_the_best_epoch_by_it(trained):
    header, rows = trained.header, trained.rows
    assert "val_ap50" in header and len(rows) == EPOCHS
    ap50s = [float(row["val_ap50"]) for row in rows]
    assert all(0.0 <= ap <= 1.0 for ap in ap50s) and max(ap50s) > 0.2  # it learned to find faces
    epochs = [e for e in trained.events if e["event"] == "epoch"]
    assert [e["val_ap50"] for e in epochs] == pytest.approx(ap50s)

    metrics = trained.run.metrics
    best = max(range(EPOCHS), key=lambda i: (ap50s[i], float(rows[i]["val_iou"])))
    assert metrics["best_epoch"] == best + 1
    assert metrics["best_val_ap50"] == pytest.approx(ap50s[best])
    assert metrics["best_val_f1"] == pytest.approx(float(rows[best]["val_f1"]))
    state = trained.state
    assert state["best_val_ap50"] == pytest.approx(ap50s[best]) and state["best_epoch"] == best + 1


def test_the_stored_threshold_maximises_f1_over_every_validation_face(trained):
    """The threshold stored with best.keras is the best-F1 one over all faces, measured here afresh
    through the Detector on the validation pictures."""
    from training.evaluation.validator import predict_model
    from training.inference.detector import Detector

    with zipfile.ZipFile(trained.run.best_model) as archive:
        stored = json.loads(archive.read("facetracker.json"))
    best_row = trained.rows[trained.run.metrics["best_epoch"] - 1]
    assert stored["score_threshold"] == pytest.approx(float(best_row["threshold"]))
    assert stored["val_ap50"] == pytest.approx(float(best_row["val_ap50"]))

    detector = Detector.from_file(trained.run.best_model)
    assert detector.multi_face and detector.threshold == pytest.approx(stored["score_threshold"])
    matches = predict_model(detector, load_dataset(trained.data).require_split("val")).matches()
    best_threshold, best_f1 = matches.best_threshold()
    assert matches.counts(detector.threshold)["f1"] == pytest.approx(best_f1, abs=0.05)
    assert matches.counts(detector.threshold)["f1"] == pytest.approx(float(best_row["val_f1"]), abs=0.05)
    assert matches.average_precision() == pytest.approx(float(best_row["val_ap50"]), abs=0.05)


def test_the_test_split_is_measured_by_ap50_over_every_face(trained):
    from training.inference.detector import Detector

    metrics = trained.run.metrics
    test, classic = metrics["test"], metrics["test_classic"]
    samples = load_dataset(trained.data).require_split("test")
    assert test["multi_face"] and test["faces"] == sum(s.face_count for s in samples)
    assert test["faces"] > test["face_pictures"]  # several faces a picture: every one counts

    # AP50 afresh: every box the model gives above the lowest score, every labelled face in pixels.
    detector = Detector.from_file(trained.run.best_model, threshold=AP_MIN_SCORE)
    found, truths = [], []
    for sample in samples:
        image = cv2.imread(str(sample.image_path))
        found.append([(d.score, d.box) for d in detector.detect_all(image)])
        truths.append([(x1 * SIZE, y1 * SIZE, x2 * SIZE, y2 * SIZE) for x1, y1, x2, y2 in sample.boxes])
    assert test["ap50"] == pytest.approx(average_precision(found, truths), abs=1e-9)
    at_threshold = FaceMatches(found, truths).counts(metrics["score_threshold"])
    assert test["f1"] == pytest.approx(at_threshold["f1"]) and test["threshold"] == metrics["score_threshold"]

    assert classic["multi_face"] and "ap50" in classic and classic["faces"] == test["faces"]
    assert "AP50" in metrics["verdict"]
    saved = json.loads((trained.run.run_dir / "metrics.json").read_text())
    assert saved["test"]["ap50"] == pytest.approx(test["ap50"]) and saved["best_val_ap50"] is not None
    for name in ("test_predictions.jpg", "pr_curve.png"):
        assert cv2.imread(str(trained.run.run_dir / name)) is not None, name
    # A multi-face run names no picture for holding several faces: it learns every one.
    assert not [e for e in trained.events if e["event"] == "warning" and "rectangles" in e.get("message", "")]


def test_a_multi_face_run_resumes_with_its_measure(trained):
    start = trained.resumed_events[0]
    assert start["event"] == "start" and start["resumed_from_epoch"] == EPOCHS
    header, rows = history_rows(trained.resumed.run_dir)
    assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 2))
    assert all(r["val_ap50"] != "" for r in rows)
    ap50s = [float(r["val_ap50"]) for r in rows]
    best = max(range(len(rows)), key=lambda i: (ap50s[i], float(rows[i]["val_iou"])))
    assert trained.resumed.metrics["best_epoch"] == best + 1
    assert trained.resumed.metrics["best_val_ap50"] == pytest.approx(ap50s[best])
    state = json.loads((trained.resumed.run_dir / "train_state" / "state.json").read_text())
    assert state["best_val_ap50"] == pytest.approx(ap50s[best]) and state["best_epoch"] == best + 1
    assert "ap50" in trained.resumed.metrics["test"]


def test_evaluate_prints_ap50_for_a_multi_face_model_and_the_classic_finders(trained, capsys):
    from training.cli import main

    assert main(["evaluate", str(trained.run.best_model), str(trained.data)]) == 0
    out = capsys.readouterr().out
    assert f"AP50                    {trained.run.metrics['test']['ap50']:.3f}" in out
    assert "classic finder (every face it finds, same pictures): AP50 " in out
    assert main(["evaluate", str(trained.run.best_model), str(trained.data), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["ap50"] == pytest.approx(trained.run.metrics["test"]["ap50"])
    assert figures["classic"]["ap50"] == pytest.approx(trained.run.metrics["test_classic"]["ap50"])


def test_a_single_face_backbone_names_each_picture_with_several_faces(tmp_path):
    """The largest face of each such picture is what it trains on, and the warning says so (before any
    network is built: the data step alone)."""
    from training.engine.checkpoints import RunFolderLock
    from training.engine.trainer import _Training

    data = write_faces_dataset(tmp_path / "data", counts=(8, 4, 0))
    several = [s for split in ("train", "val") for s in load_dataset(data).require_split(split) if s.face_count > 1]
    for backbone, expected in (("grid", len(several)), ("multiface", 0)):
        events: list[dict] = []
        job = _Training(TrainConfig(data=str(data), backbone=backbone, out=str(tmp_path / backbone)), events.append,
                        None)
        with RunFolderLock() as lock:
            job.set_up(lock)
            job.build_data()
        notes = [e["message"] for e in events if e["event"] == "warning" and "rectangles" in e["message"]]
        assert len(notes) == expected, notes
        for note, sample in zip(notes, several, strict=False):
            assert str(sample.label_path) in note and "the largest" in note


def test_the_run_draws_every_face_of_the_test_pictures(trained):
    """test_predictions.jpg of a multi-face run is the every-face grid of its best model on the test split."""
    from training.evaluation.report import predictions_jpg
    from training.evaluation.validator import predict_model
    from training.inference.detector import Detector

    detector = Detector.from_file(trained.run.best_model)
    found = predict_model(detector, load_dataset(trained.data).require_split("test"))
    assert found.every_face
    expected = predictions_jpg(found, detector.threshold, title="best.keras on the test split")
    assert (trained.run.run_dir / "test_predictions.jpg").read_bytes() == expected


def test_the_every_face_grid_draws_each_face_and_box_worst_first(tmp_path):
    """Hand-made answers: the picture with a face missed and a false box comes first, and every labelled
    face of a picture (not only the largest) is outlined in the label colour."""
    from training.core.detection import Detection
    from training.evaluation.report import GAP, LEGEND_H, TILE_H, TILE_W, TRUE_BGR, predictions_jpg
    from training.evaluation.validator import Predictions, measure

    data = write_faces_dataset(tmp_path / "data", counts=(0, 0, 4))
    samples = load_dataset(data).require_split("test")  # p000: no face, p001..p003: 1, 2, 3 faces
    truths = [np.array([(x1 * SIZE, y1 * SIZE, x2 * SIZE, y2 * SIZE) for x1, y1, x2, y2 in s.boxes]).reshape(-1, 4)
              for s in samples]
    found = [[Detection(0.9, tuple(t + 3)) for t in faces] for faces in truths]  # found, a little off
    found[3] = found[3][:2] + [Detection(0.8, (0.0, 0.0, 10.0, 10.0))]  # p003: one face missed, one false box
    predictions = Predictions(found, truths, every_face=True, seconds=0.1, samples=samples)
    figures = measure(predictions, 0.5).as_dict()
    assert (figures["true_positives"], figures["false_positives"], figures["false_negatives"]) == (5, 1, 1)

    grid = cv2.imdecode(np.frombuffer(predictions_jpg(predictions, 0.5), np.uint8), cv2.IMREAD_COLOR)
    first = grid[LEGEND_H + GAP : LEGEND_H + GAP + TILE_H, GAP : GAP + TILE_W].astype(int)  # the worst picture
    scale = TILE_H / SIZE
    ox = (TILE_W - round(SIZE * scale)) // 2
    for x1, y1, _, y2 in truths[3]:  # p003's three faces, each outlined in blue on its left edge
        x = round(ox + x1 * scale)
        mid = round((y1 + y2) / 2 * scale)
        column = first[mid - 2 : mid + 3, x - 1 : x + 2].reshape(-1, 3)
        assert np.min(np.abs(column - np.array(TRUE_BGR)).sum(axis=1)) < 90, (x1, y1)


def test_predict_draws_and_lists_every_face_of_a_multi_face_model(trained, tmp_path, capsys):
    from training.cli import main
    from training.inference.detector import Detector

    pictures = sorted((trained.data / "test" / "images").glob("*.png"))[:4]
    assert main(["predict", str(trained.run.best_model), *map(str, pictures), "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    detector = Detector.from_file(trained.run.best_model)
    for picture, line in zip(pictures, lines, strict=False):
        faces = detector.detect_all(cv2.imread(str(picture)))
        assert line.startswith(f"{picture}: {len(faces)} face{'s' if len(faces) != 1 else ''}"), line
        assert line.count(" at (") == len(faces)
        assert (tmp_path / "out" / picture.name).is_file()
