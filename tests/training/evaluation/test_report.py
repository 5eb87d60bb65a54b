"""Result pictures: the numbers behind them worked out by hand, the drawn pixels, the evaluate command, a real
training run that writes them (and survives failing to), and the Train tab that shows them."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QObject, QSettings, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from test_evaluate import _colour_model  # a model whose score and box are known for every colour

from desktop.train_tab import TrainTab
from training.cli import main
from training.data.dataset import load_dataset
from training.data.formats.labelme import write_labelme
from training.engine.trainer import TrainConfig, train
from training.evaluation.evaluate import evaluate_model
from training.evaluation.metrics import average_precision
from training.evaluation.report import (
    CAPTION_H,
    GAP,
    LEGEND_H,
    PRED_BGR,
    TILE_H,
    TILE_W,
    TRUE_BGR,
    outcomes,
    pr_curve_png,
    worst_first,
    write_result_pictures,
)
from training.evaluation.validator import predict_model
from training.inference.detector import Detector

HIGH, LOW = 230, 40  # red: score 0.902 or 0.157
# (red, green, has face, label box); the predicted box is [0, 0, .5, .5] of the frame at green 0, [.5, 0, 1, .5] at 255
CASES = [
    (HIGH, 0, True, (0.0, 0.0, 0.5, 0.5)),  # 0 hit, IoU 1
    (HIGH, 0, True, (0.0, 0.0, 0.5, 0.4)),  # 1 hit, IoU 0.8
    (HIGH, 0, True, (0.25, 0.0, 0.75, 0.5)),  # 2 box off, IoU 1/3
    (HIGH, 0, False, (0.0, 0.0, 0.0, 0.0)),  # 3 false alarm
    (LOW, 0, True, (0.0, 0.0, 0.5, 0.5)),  # 4 missed (a right box, too low a score)
    (LOW, 255, True, (0.0, 0.0, 0.5, 0.5)),  # 5 missed, IoU 0
    (LOW, 0, False, (0.0, 0.0, 0.0, 0.0)),  # 6 right
    (LOW, 0, False, (0.0, 0.0, 0.0, 0.0)),  # 7 right
]
WIDTH, HEIGHT = 240, 180


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory):
    """The cases as a labelled dataset (test split; val holds a copy for --split val), and the model saved."""
    root = tmp_path_factory.mktemp("colours")
    for split in ("test", "val"):
        for i, (red, green, has_face, box) in enumerate(CASES):
            image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
            image[:] = (0, green, red)  # BGR
            path = root / "data" / split / "images" / f"case_{i}.png"  # lossless: the colour is exact
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), image)
            pixels = (box[0] * WIDTH, box[1] * HEIGHT, box[2] * WIDTH, box[3] * HEIGHT) if has_face else None
            write_labelme(root / "data" / split / "labels" / f"case_{i}.json", path, pixels, WIDTH, HEIGHT)
    _colour_model().save(root / "colour.keras")
    return root / "data", root / "colour.keras"


@pytest.fixture(scope="module")
def predictions(colour_data):
    data, model = colour_data
    samples = sorted(load_dataset(data).require_split("test"), key=lambda s: s.image_path.name)
    return predict_model(Detector.from_file(model), samples)


def test_outcomes_and_worst_first_order(predictions):
    assert outcomes(predictions, 0.5) == ["hit", "hit", "box off", "false alarm", "missed", "missed", "right", "right"]
    # IoU 0 first (a false alarm at 0.90 is a surer mistake than a miss at 0.16), then 1/3, 0.8, then IoU 1
    # (the rightly empty pictures, less sure of themselves at 0.16, before the hit at 0.90).
    assert worst_first(predictions, 0.5) == [3, 4, 5, 2, 1, 6, 7, 0]
    assert outcomes(predictions, 0.1)[4] == "hit"  # a lower threshold turns the miss with a right box into a hit


def test_precision_recall_sweep_and_average_precision(predictions):
    matches = predictions.matches()
    sweep = matches.sweep(extra=np.linspace(0.0, 1.0, 201))  # what pr_curve.png draws
    at = {round(float(t), 3): (p, r) for t, p, r in zip(sweep["threshold"], sweep["precision"], sweep["recall"],
                                                        strict=True)}
    # below 0.157 every picture is a detection: TP 0, 1, 4; FP 2, 3, 5, 6, 7; FN 2, 5
    assert at[0.1] == pytest.approx((3 / 8, 3 / 5))
    # between the two scores: TP 0, 1; FP 2, 3; FN 2, 4, 5
    assert at[0.5] == pytest.approx((2 / 4, 2 / 5))
    assert at[0.95] == (0.0, 0.0)
    assert matches.average_precision() == pytest.approx(0.4 * 0.5 + 0.2 * 3 / 8)
    # where precision rises with recall, the area counts the best precision at that recall or beyond: one box
    # a picture, five faces; best first: false, face, false, face, face, false, false, false, face
    # -> (recall, precision) 0.2 @ 1/2, 0.2 @ 1/3, 0.4 @ 2/4, 0.6 @ 3/5, 0.6 @ 3/8, 0.8 @ 4/9
    box, off = (0, 0, 10, 10), (20, 20, 30, 30)
    zigzag = [[(0.9, off)], [(0.8, box)], [(0.7, off)], [(0.6, box)], [(0.5, box)], [(0.4, off)], [(0.3, off)],
              [(0.2, off)], [(0.1, box)]]
    truths = [[], [box], [], [box], [box], [], [], [], [box, box]]
    assert average_precision(zigzag, truths) == pytest.approx(0.2 * 0.6 + 0.2 * 0.6 + 0.2 * 0.6 + 0.2 * 4 / 9)
    assert set(np.round(sweep["f1"], 6)) == {0.0, round(2 * 0.5 * 0.4 / 0.9, 6), round(2 * 0.375 * 0.6 / 0.975, 6)}


def _near(region: np.ndarray, bgr: tuple[int, int, int], tolerance: int = 60) -> int:
    return int(np.sum(np.all(np.abs(region.astype(int) - bgr) < tolerance, axis=-1)))


def test_pictures_show_true_and_predicted_boxes_worst_first(colour_data, tmp_path):
    data, model = colour_data
    samples = load_dataset(data).require_split("test")
    paths = write_result_pictures(Detector.from_file(model), samples, tmp_path / "out", threshold=0.5)
    assert paths == {"predictions": tmp_path / "out" / "test_predictions.jpg",
                     "pr_curve": tmp_path / "out" / "pr_curve.png"}
    grid = cv2.imread(str(paths["predictions"]))
    columns, rows = 4, 2
    assert grid.shape[:2] == (LEGEND_H + rows * (TILE_H + CAPTION_H + GAP) + GAP, columns * TILE_W + (columns + 1) * GAP)

    def tile(n: int) -> np.ndarray:
        row, column = divmod(n, columns)
        y, x = LEGEND_H + GAP + row * (TILE_H + CAPTION_H + GAP), GAP + column * (TILE_W + GAP)
        return grid[y : y + TILE_H, x : x + TILE_W]

    # first tile: case 3, the false alarm: a predicted box and its score tag, no true box
    assert _near(tile(0), PRED_BGR) > 200 and _near(tile(0), TRUE_BGR) == 0
    # second: case 4, missed: the true box, and the below-threshold prediction (dashed, thinner: fewer pixels)
    assert _near(tile(1), TRUE_BGR) > 200 and 50 < _near(tile(1), PRED_BGR) < _near(tile(0), PRED_BGR)
    # last: case 0, the perfect hit: both boxes drawn (the predicted one over the true one, on the same place)
    assert _near(tile(7), PRED_BGR) > 200
    # the legend shows both colours
    assert _near(grid[:LEGEND_H], TRUE_BGR) > 20 and _near(grid[:LEGEND_H], PRED_BGR) > 20

    png = paths["pr_curve"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape[1] > 800
    predictions = predict_model(Detector.from_file(model), samples)
    assert pr_curve_png(predictions, 0.5) != pr_curve_png(predictions, 0.1)  # the marked threshold moves


def test_evaluate_writes_the_pictures_for_any_split(colour_data, tmp_path, capsys):
    data, model = colour_data
    out = tmp_path / "pictures"
    assert main(["evaluate", str(model), str(data), "--split", "val", "--json", "--pictures", str(out)]) == 0
    captured = capsys.readouterr()
    figures = json.loads(captured.out)  # the pictures' note goes to stderr: stdout stays JSON
    assert figures["split"] == "val" and str(out) in captured.err
    assert (out / "val_predictions.jpg").is_file() and (out / "pr_curve.png").is_file()
    assert cv2.imread(str(out / "val_predictions.jpg")) is not None

    assert main(["evaluate", str(model), str(data), "--threshold", "0.1", "--pictures", str(out)]) == 0
    assert f"Results saved to {out}" in capsys.readouterr().out
    assert (out / "test_predictions.jpg").is_file()



def _tiny_run(data, out, events: list) -> object:
    config = TrainConfig(data=str(data), out=str(out), epochs=2, backbone="tiny", input_size=48, augment=False,
                         patience=0, seed=0)
    return train(config, on_event=events.append)


@pytest.mark.slow
def test_a_training_run_draws_its_test_pictures(demo_dataset, tmp_path):
    result = _tiny_run(demo_dataset, tmp_path / "run", [])
    grid = cv2.imread(str(result.run_dir / "test_predictions.jpg"))
    test = load_dataset(demo_dataset).require_split("test")
    assert grid is not None and grid.shape[0] > LEGEND_H + TILE_H
    assert (result.run_dir / "pr_curve.png").read_bytes()[:4] == b"\x89PNG"
    # the pictures' figures are the run's own test figures
    figures = evaluate_model(Detector.from_file(result.best_model), test)
    assert result.metrics["test"]["f1"] == pytest.approx(figures["f1"])


@pytest.mark.slow
def test_a_picture_that_cannot_be_written_does_not_fail_the_run(demo_dataset, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "test_predictions.jpg").mkdir(parents=True)  # a folder where the picture should go
    (run_dir / "config.json").write_text('{"config": {}}')  # in a run folder (--out refuses a folder of other files)
    events: list[dict] = []
    result = _tiny_run(demo_dataset, run_dir, events)
    assert result.metrics["test"] is not None and (run_dir / "metrics.json").is_file()
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any("could not draw the result pictures" in m and "test_predictions.jpg" in m for m in warnings), warnings
    assert events[-1]["event"] == "end"


def test_train_tab_shows_the_pictures_when_a_run_ends_and_opens_them(qtbot, tmp_path, colour_data):
    data, model = colour_data
    run_dir = tmp_path / "run"
    write_result_pictures(Detector.from_file(model), load_dataset(data).require_split("test"), run_dir)
    tab = TrainTab(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(tab)
    tab.resize(1200, 900)
    tab.show()
    qtbot.waitExposed(tab)
    pictures = tab.result_pictures
    assert not pictures.isVisible()

    tab.process.succeeded.emit({"event": "end", "run_dir": str(run_dir), "best_model": str(model),
                                "metrics": {"epochs_completed": 2}, "stopped": False})
    assert pictures.isVisible()
    for name in ("test_predictions.jpg", "pr_curve.png"):
        button = pictures.buttons[name]
        assert button.isVisible() and not button.icon().isNull() and button.iconSize().height() == pictures.THUMB_HEIGHT

    opened: list[QUrl] = []

    class Viewer(QObject):  # Qt's own hook for "open this file": what the system viewer would be given
        @Slot(QUrl)
        def open(self, url: QUrl) -> None:
            opened.append(url)

    viewer = Viewer()
    QDesktopServices.setUrlHandler("file", viewer, "open")
    try:
        pictures.buttons["pr_curve.png"].click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [url.toLocalFile() for url in opened] == [str(run_dir / "pr_curve.png")]

    (run_dir / "pr_curve.png").unlink()
    pictures.show_run(run_dir)  # only what is there
    assert pictures.isVisible() and not pictures.buttons["pr_curve.png"].isVisible()
