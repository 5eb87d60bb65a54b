"""Pictures of a model's result, as Ultralytics users get them: where it goes wrong, and how the threshold trades.

* ``test_predictions.jpg`` (``<split>_predictions.jpg``): a grid of labelled pictures, the true box
  in blue and the predicted box with its score in orange (dashed when the score is below the
  threshold, i.e. the model says "no face"), worst first: missed faces, false alarms and badly placed
  boxes lead, so the first row shows what to fix. A caption under each picture says what happened.
* ``pr_curve.png``: precision against recall as the score threshold sweeps from 1 to 0 (left), and
  precision, recall and F1 against the threshold (right), with the model's own threshold marked.

The numbers come from :mod:`training.evaluation.validator` (one pass of the detector over the pictures,
matched once: the TP/FP/FN rules ``evaluate`` reports), so a picture never disagrees with
``facetracker-train evaluate``. Every run folder gets both for its test split
(:func:`write_run_pictures`, which never fails a run); ``facetracker-train evaluate --pictures DIR``
draws them for any model and split.

For a multi-face model both show every face: the grid draws every labelled face and every box kept
at the threshold (worst first: the most faces missed and false boxes), and the curve is over every
face (:class:`training.evaluation.metrics.FaceMatches`, the AP50 that ``evaluate`` reports).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from training.core.files import atomic_write_bytes
from training.data.dataset import Sample
from training.data.pictures import load_image
from training.evaluation.validator import Predictions, measure, predict_model

PREDICTIONS_SUFFIX = "_predictions.jpg"
PR_CURVE_NAME = "pr_curve.png"
RUN_SPLIT = "test"
GRID_COLUMNS = 4
GRID_PICTURES = 16
TILE_W, TILE_H, CAPTION_H, GAP, LEGEND_H = 288, 216, 38, 6, 58
TRUE_BGR = (235, 150, 30)  # blue: the label
PRED_BGR = (0, 140, 255)  # orange: the prediction (blue/orange stay apart for colour-blind eyes)
RIGHT_BGR, WRONG_BGR = (90, 200, 90), (80, 80, 255)
BACKGROUND_BGR, TEXT_BGR = (38, 38, 38), (235, 235, 235)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def predictions_name(split: str) -> str:
    """``test_predictions.jpg`` for the test split, ``val_predictions.jpg`` for val, ..."""
    return f"{split}{PREDICTIONS_SUFFIX}"


# ---------------------------------------------------------------------------------------------- numbers


def _per_picture(predictions: Predictions, threshold: float, iou_threshold: float) -> dict[str, np.ndarray]:
    """Per picture: faces, faces found and false boxes at ``threshold``, the most confident false box, and
    its best box's score (0 without one)."""
    matches = predictions.matches(iou_threshold)
    images = predictions.images
    kept = matches.scores > threshold
    wrong = kept & ~matches.true_positive
    worst_false = np.zeros(images)
    np.maximum.at(worst_false, matches.picture[wrong], matches.scores[wrong])
    top_score = np.zeros(images)
    np.maximum.at(top_score, matches.picture, matches.scores)
    return {"faces": matches.faces_per_picture,
            "found": np.bincount(matches.picture[kept & matches.true_positive], minlength=images),
            "false": np.bincount(matches.picture[wrong], minlength=images),
            "worst_false": worst_false, "score": top_score}


def outcomes(predictions: Predictions, threshold: float, iou_threshold: float = 0.5) -> list[str]:
    """What happened on each picture, in the words the captions use. One box a picture (a single-face
    model): ``hit``, ``box off`` (a face found in the wrong place), ``missed``, ``false alarm`` or
    ``right`` (no face, none reported). Every face: how many faces were found, missed and boxed falsely."""
    counts = _per_picture(predictions, threshold, iou_threshold)
    result = []
    for faces, found, false in zip(counts["faces"], counts["found"], counts["false"], strict=True):
        if not predictions.every_face:
            result.append(("hit" if found else "box off" if false else "missed") if faces
                          else "false alarm" if false else "right")
        elif faces:
            plural = "s" if faces != 1 else ""
            result.append(f"{found} of {faces} face{plural} found"
                          + (f", {false} false box{'es' if false != 1 else ''}" if false else ""))
        else:
            result.append(f"no face, {false} false box{'es' if false != 1 else ''}" if false else "no face, none reported")
    return result


def worst_first(predictions: Predictions, threshold: float, iou_threshold: float = 0.5) -> list[int]:
    """Picture indices, worst first. One box a picture: worst IoU first (a missed face or a false alarm counts
    as IoU 0, a rightly empty picture as 1), among equals the more confident mistake first. Every face: the
    most faces missed plus false boxes first, then the most confident false box."""
    counts = _per_picture(predictions, threshold, iou_threshold)
    if predictions.every_face:
        errors = counts["faces"] - counts["found"] + counts["false"]
        return [int(i) for i in np.lexsort((-counts["worst_false"], -errors))]
    has_face, score = counts["faces"] > 0, counts["score"]
    detected = score > threshold
    effective = np.where(has_face, np.where(detected, predictions.top_ious(iou_threshold), 0.0),
                         np.where(detected, 0.0, 1.0))
    wrongness = np.where(has_face, 1.0 - score, score)
    return [int(i) for i in np.lexsort((-wrongness, effective))]


# ---------------------------------------------------------------------------------------------- pr_curve.png


def pr_curve_png(predictions: Predictions, threshold: float, iou_threshold: float = 0.5, title: str = "") -> bytes:
    """``pr_curve.png`` as bytes (matplotlib's Agg canvas: no display, no pyplot state): precision and recall
    over the faces (one a picture for a single-face model) at every threshold, and the AP."""
    matches = predictions.matches(iou_threshold)
    sweep = matches.sweep(extra=np.linspace(0.0, 1.0, 201))
    faces = (f"{matches.faces} faces (every face counts)" if predictions.every_face
             else f"{int(np.sum(matches.faces_per_picture > 0))} with a face")
    heading = f"{title}{'  -  ' if title else ''}{predictions.images} pictures, {faces}"
    return _pr_figure(sweep, matches.counts(threshold), matches.average_precision(), threshold, iou_threshold,
                      heading)


def _pr_figure(sweep: dict[str, np.ndarray], chosen: dict, ap: float, threshold: float, iou_threshold: float,
               heading: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.6))
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)

    keep = sweep["detected"] > 0
    order = np.argsort(-sweep["threshold"][keep], kind="stable")  # the path the threshold takes, from 1 down
    left.plot(sweep["recall"][keep][order], sweep["precision"][keep][order], color="#1f77b4", linewidth=2,
              label=f"face  AP@{iou_threshold:g} {ap:.3f}")
    left.plot([chosen["recall"]], [chosen["precision"]], marker="o", markersize=9, color="#ff8c00", linestyle="none",
              label=f"threshold {threshold:.2f}: P {chosen['precision']:.2f}, R {chosen['recall']:.2f}")
    left.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
             title=f"Precision-recall (box right at IoU >= {iou_threshold:g})")
    left.grid(alpha=0.3)
    left.legend(loc="best")

    t = sweep["threshold"]
    right.plot(t, sweep["precision"], color="#1f77b4", label="precision")
    right.plot(t, sweep["recall"], color="#2ca02c", label="recall")
    right.plot(t, sweep["f1"], color="#444444", linewidth=2, label="F1")
    right.axvline(threshold, color="#ff8c00", linestyle="--", linewidth=1.5,
                  label=f"the model's threshold {threshold:.2f} (F1 {chosen['f1']:.2f})")
    right.set(xlabel="score threshold (face when the score is above it)", xlim=(0, 1), ylim=(0, 1.02),
              title="Precision, recall and F1 over the score threshold")
    right.grid(alpha=0.3)
    right.legend(loc="best")
    figure.suptitle(heading, fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- predictions grid


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], colour=TEXT_BGR, scale: float = 0.45) -> None:
    cv2.putText(canvas, text, origin, FONT, scale, colour, 1, cv2.LINE_AA)


def _fit_text(text: str, width: int, scale: float = 0.45) -> str:
    """``text`` shortened with ".." at the front until it fits ``width`` pixels (file names keep their end)."""
    while len(text) > 4 and cv2.getTextSize(text, FONT, scale, 1)[0][0] > width:
        text = ".." + text[3:]
    return text


def _dashed_rectangle(canvas: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], colour, thickness: int,
                      dash: int = 7) -> None:
    (x1, y1), (x2, y2) = p1, p2
    for a, b, fixed, horizontal in ((x1, x2, y1, True), (x1, x2, y2, True), (y1, y2, x1, False), (y1, y2, x2, False)):
        for start in range(min(a, b), max(a, b), 2 * dash):
            end = min(start + dash, max(a, b))
            if horizontal:
                cv2.line(canvas, (start, fixed), (end, fixed), colour, thickness, cv2.LINE_AA)
            else:
                cv2.line(canvas, (fixed, start), (fixed, end), colour, thickness, cv2.LINE_AA)


def _score_tag(canvas: np.ndarray, text: str, x: int, y: int) -> None:
    """The score on a filled orange tag above the box's corner (inside the tile)."""
    (w, h), base = cv2.getTextSize(text, FONT, 0.45, 1)
    x = int(np.clip(x, 0, canvas.shape[1] - w - 4))
    y = int(np.clip(y, h + base + 2, canvas.shape[0]))
    cv2.rectangle(canvas, (x, y - h - base - 2), (x + w + 4, y), PRED_BGR, -1)
    cv2.putText(canvas, text, (x + 2, y - base), FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)


def _tile(sample: Sample, image: np.ndarray, truths: np.ndarray, boxes: list[tuple[float, np.ndarray, bool, int]],
          caption: str, wrong: bool) -> np.ndarray:
    """One picture letterboxed into the tile: every labelled face (blue), every box given (orange, with its
    score; ``(score, box, kept, thickness)``, dashed when not kept), and its caption strip below."""
    tile, corners = _letterboxed(image)
    for truth in truths:
        cv2.rectangle(tile, *corners(truth), TRUE_BGR, 2, cv2.LINE_AA)
    for score, box, kept, thickness in boxes:
        p1, p2 = corners(box)
        if kept:
            cv2.rectangle(tile, p1, p2, PRED_BGR, thickness, cv2.LINE_AA)
        else:
            _dashed_rectangle(tile, p1, p2, PRED_BGR, 1)
        _score_tag(tile, f"{score:.2f}", p1[0], p1[1] - 1)
    _text(tile, _fit_text(sample.image_path.name, TILE_W - 8), (4, TILE_H + 15))
    _text(tile, _fit_text(caption, TILE_W - 8), (4, TILE_H + 32), WRONG_BGR if wrong else RIGHT_BGR)
    return tile


def _letterboxed(image: np.ndarray) -> tuple[np.ndarray, Callable]:
    """A tile with ``image`` letterboxed into it (caption strip left empty), and the function that takes a
    box in the picture's pixels to the tile's two corners."""
    tile = np.full((TILE_H + CAPTION_H, TILE_W, 3), BACKGROUND_BGR, np.uint8)
    height, width = image.shape[:2]
    scale = min(TILE_W / width, TILE_H / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    ox, oy = (TILE_W - new_w) // 2, (TILE_H - new_h) // 2
    tile[oy : oy + new_h, ox : ox + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)

    def corners(values) -> tuple[tuple[int, int], tuple[int, int]]:
        x1, y1, x2, y2 = (float(v) for v in values)
        return ((round(ox + min(x1, x2) * scale), round(oy + min(y1, y2) * scale)),
                (round(ox + max(x1, x2) * scale), round(oy + max(y1, y2) * scale)))

    return tile, corners


def _legend(width: int, threshold: float, iou_threshold: float, heading: str, every_face: bool = False) -> np.ndarray:
    strip = np.full((LEGEND_H, width, 3), BACKGROUND_BGR, np.uint8)
    _text(strip, _fit_text(heading, width - 16, 0.5), (8, 20), scale=0.5)
    x, y = 8, 44
    cv2.rectangle(strip, (x, y - 11), (x + 22, y + 3), TRUE_BGR, 2)
    _text(strip, "true face", (x + 30, y))
    x += 30 + cv2.getTextSize("true face", FONT, 0.45, 1)[0][0] + 24
    cv2.rectangle(strip, (x, y - 11), (x + 22, y + 3), PRED_BGR, 2)
    label = (f"every box scoring above {threshold:.2f}, with its score" if every_face
             else f"predicted, with its score (face when above {threshold:.2f})")
    _text(strip, label, (x + 30, y))
    x += 30 + cv2.getTextSize(label, FONT, 0.45, 1)[0][0] + 24
    if every_face:
        cv2.rectangle(strip, (x, y - 11), (x + 22, y + 3), PRED_BGR, 1)
    else:
        _dashed_rectangle(strip, (x, y - 11), (x + 22, y + 3), PRED_BGR, 1, dash=4)
    label = (f"thin: on no face   |   found: IoU >= {iou_threshold:g}, one box a face" if every_face
             else f"below it: 'no face'   |   hit: IoU >= {iou_threshold:g}")
    _text(strip, _fit_text(label, max(40, width - x - 36)), (x + 30, y))
    return strip


def predictions_jpg(predictions: Predictions, threshold: float, iou_threshold: float = 0.5,
                    count: int = GRID_PICTURES, title: str = "") -> bytes:
    """``test_predictions.jpg`` as JPEG bytes: up to ``count`` pictures, worst first (see the module). A
    single-face model's box is drawn whatever its score (dashed below the threshold); a multi-face model's
    boxes kept at the threshold (thin when on no face)."""
    matches = predictions.matches(iou_threshold)
    kinds = outcomes(predictions, threshold, iou_threshold)
    top_ious = predictions.top_ious(iou_threshold)
    kept = matches.scores > threshold
    counts = _per_picture(predictions, threshold, iou_threshold)
    errors = counts["faces"] - counts["found"] + counts["false"]
    tiles = []
    for index in worst_first(predictions, threshold, iou_threshold)[:count]:
        sample = predictions.samples[index]
        mine = np.flatnonzero(matches.picture == index)
        if predictions.every_face:
            boxes = [(float(matches.scores[k]), matches.boxes[k], True, 2 if matches.true_positive[k] else 1)
                     for k in mine if kept[k]]
            wrong = bool(errors[index])
            caption = kinds[index]
        else:
            boxes = [(float(matches.scores[k]), matches.boxes[k], bool(kept[k]), 2) for k in mine[:1]]
            score, iou = (float(matches.scores[mine[0]]) if len(mine) else 0.0), float(top_ious[index])
            detail = {"hit": f"IoU {iou:.2f}", "box off": f"IoU {iou:.2f}",
                      "missed": f"score {score:.2f}, IoU {iou:.2f}", "false alarm": f"score {score:.2f}",
                      "right": f"no face, score {score:.2f}"}[kinds[index]]
            wrong = kinds[index] in ("box off", "missed", "false alarm")
            caption = f"{kinds[index]}: {detail}"
        tiles.append(_tile(sample, load_image(sample.image_path), predictions.truths[index], boxes, caption, wrong))
    columns = min(GRID_COLUMNS, len(tiles))
    figures = measure(predictions, threshold, iou_threshold)
    shown = f"{title}{': ' if title else ''}{len(tiles)} of {predictions.images} pictures, worst first"
    if predictions.every_face:
        heading = (f"{shown}   AP50 {figures.ap:.2f}, F1 {figures.f1:.2f} over {figures.faces} faces "
                   f"({figures.false_negatives} missed, {figures.false_positives} false boxes)")
    else:
        wrong_count = sum(kind in ("box off", "missed", "false alarm") for kind in kinds)
        heading = f"{shown} ({wrong_count} wrong)   F1 {figures.f1:.2f}, mean IoU {figures.mean_iou:.2f}"
    return _grid_jpg(tiles, _legend(columns * TILE_W + (columns + 1) * GAP, threshold, iou_threshold, heading,
                                    every_face=predictions.every_face))


def _grid_jpg(tiles: list[np.ndarray], legend: np.ndarray) -> bytes:
    """The tiles in rows of GRID_COLUMNS under the legend strip, as JPEG bytes."""
    columns = min(GRID_COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    width = columns * TILE_W + (columns + 1) * GAP
    grid = np.full((LEGEND_H + rows * (TILE_H + CAPTION_H + GAP) + GAP, width, 3), (20, 20, 20), np.uint8)
    for n, tile in enumerate(tiles):
        row, column = divmod(n, columns)
        y = LEGEND_H + GAP + row * (TILE_H + CAPTION_H + GAP)
        x = GAP + column * (TILE_W + GAP)
        grid[y : y + tile.shape[0], x : x + TILE_W] = tile
    grid[:LEGEND_H] = legend
    ok, encoded = cv2.imencode(".jpg", grid, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise OSError("could not encode the predictions grid as JPEG")
    return encoded.tobytes()


# ---------------------------------------------------------------------------------------------- files


def write_result_pictures(
    detector,
    samples: Sequence[Sample],
    out_dir: str | Path,
    *,
    split: str = RUN_SPLIT,
    threshold: float | None = None,
    iou_threshold: float = 0.5,
    title: str = "",
) -> dict[str, Path]:
    """Run ``detector`` (a :class:`training.inference.detector.Detector`) once over ``samples`` and write
    ``<split>_predictions.jpg`` and ``pr_curve.png`` into ``out_dir`` (created; each file atomic).

    ``threshold`` defaults to the detector's own (stored with the model). Returns the two paths by kind
    (``"predictions"``, ``"pr_curve"``).

    Raises:
        ValueError: no samples.
        training.data.dataset.DataError: a picture cannot be read.
        OSError: the folder cannot be written.
    """
    threshold = float(detector.threshold if threshold is None else threshold)
    heading = title or f"{split} split"
    predictions = predict_model(detector, samples)  # a multi-face model: every face, every box
    grid = predictions_jpg(predictions, threshold, iou_threshold, title=heading)
    curve = pr_curve_png(predictions, threshold, iou_threshold, title=heading)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"predictions": out_dir / predictions_name(split), "pr_curve": out_dir / PR_CURVE_NAME}
    atomic_write_bytes(paths["predictions"], grid)
    atomic_write_bytes(paths["pr_curve"], curve)
    return paths


def write_run_pictures(model_path: str | Path, samples: Sequence[Sample], run_dir: str | Path,
                       warn: Callable[[str], None] | None = None) -> dict[str, Path]:
    """The training run's pictures of its best model on the test split; never raises.

    A finished run must not fail because a picture could not be drawn: any error becomes one
    ``warn`` message and an empty result.
    """
    try:
        from training.inference.detector import Detector

        return write_result_pictures(Detector.from_file(model_path), samples, run_dir, split=RUN_SPLIT,
                                     title=f"{Path(model_path).name} on the test split")
    except Exception as exc:  # noqa: BLE001 - see the docstring
        if warn is not None:
            warn(f"could not draw the result pictures in {run_dir} ({type(exc).__name__}: {exc}); "
                 "the trained model is not affected")
        return {}
