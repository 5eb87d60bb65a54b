"""Real-face accuracy benchmark: does the model a user trains find real faces, and beat the classic finder?

Run on demand (not part of the tests; about 12 minutes on 2 cores)::

    python benchmarks/bench_accuracy.py                      # 800 frames, 10 CPU-minutes of training
    python benchmarks/bench_accuracy.py --minutes 3 --keep runs/bench   # quicker; keep the data and run

1. Builds a real-face dataset (``facetracker-train make-demo-data OUT --real``: real face photos
   shipped with scikit-image and matplotlib placed in natural scenes with non-face distractors;
   the test split's people appear in no other split): by default 480 train, 120 val, 200 test frames.
2. Trains the default configuration through the command line, as a user would, with
   ``--time-limit`` as the CPU budget.
3. Prints, on the same test frames: F1 at IoU 0.5, precision, recall, mean IoU on the faces, false
   alarms on the frames without a face and ms per frame, for the trained model (at the score
   threshold it chose on validation), the classic finder (the app's LBP stand-in) and, when the
   ``mtcnn`` package is installed, MTCNN (the Label tab's suggestion engine). Twice: on new
   pictures of the people it trained on (a user training on their own face meets this), and on
   people it never saw (the harder question of faces in general).

Goals (issue 9): the trained model at F1 >= 0.92 and mean IoU >= 0.75, above the classic finder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = ("F1", "precision", "recall", "mean IoU", "false alarms", "ms/frame")


def print_table(rows: list[tuple[str, dict]], measures: tuple[str, ...] = ("f1",)) -> None:
    """Detectors side by side: ``measures`` (figures of evaluate's, e.g. "ap50", "f1"), then precision,
    recall, mean IoU, false alarms and ms/frame. Shared by this benchmark and bench_multiface.py."""
    names = {"ap50": "AP50", "f1": "F1"}
    width = max(34, *(len(name) + 2 for name, _ in rows))
    print(f"{'detector':<{width}}" + "".join(f"{names[k]:>6}" for k in measures)
          + f"{'precision':>11}{'recall':>8}{'mean IoU':>10}{'false alarms':>13}{'ms/frame':>9}")
    for name, m in rows:
        print(f"{name:<{width}}" + "".join(f"{m[k]:>6.3f}" for k in measures)
              + f"{m['precision']:>11.3f}{m['recall']:>8.3f}{m['mean_iou']:>10.3f}"
              f"{m['false_alarms']:>7d}/{m['no_faces']:<5d}{m['ms_per_picture']:>9.1f}")


def print_real_photos(rows: list[tuple[str, object]]) -> None:
    """The same detectors on real photographs no training set uses (training.evaluation.realphotos; the whole set when
    FACETRACKER_PHOTOS names the photo archives): has a model learned faces, or its pictures' look?"""
    from bench_real_photos import print_table as print_photo_table

    from training.evaluation.realphotos import measure_detector, missing_photos

    results = [(name, float(detector.threshold), measure_detector(detector)) for name, detector in rows]
    first = results[0][2]
    if first is None:
        print("\nno real photograph could be read")
        return
    print(f"\nreal photographs no one trained on: {first['frames']} frames, {first['faces']} faces, "
          f"{first['photos']} photos" + (f" ({len(missing_photos())} more with FACETRACKER_PHOTOS: see "
                                         "benchmarks/bench_real_photos.py)" if missing_photos() else ""))
    print_photo_table(results)


def train_with_cli(data: Path, run: Path, minutes: float, train_args: list[str]) -> dict | int:
    """Train on ``data`` into ``run`` through the command line, as a user would, with ``--time-limit`` as
    the CPU budget; print how it went. Returns the run's metrics.json, or the exit status when it failed."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "training", str(data), "--out", str(run), "--time-limit", str(minutes),
               "--progress", "none", *train_args]
    print("$", " ".join(command[2:]), flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
        return done.returncode
    metrics = json.loads((run / "metrics.json").read_text())
    measure = (f"val AP50 {metrics['best_val_ap50']:.3f}, F1 {metrics['best_val_f1']:.3f}"
               if metrics.get("best_val_ap50") is not None else f"val F1 {metrics['best_val_f1']:.3f}")
    print(f"trained {metrics['epochs_completed']} epochs in {time.perf_counter() - started:.0f} s "
          f"({metrics['images_per_second']:.0f} img/s; {metrics['stop_reason']}); best epoch {metrics['best_epoch']}, "
          f"{measure}, threshold {metrics['score_threshold']:.3f}")
    return metrics


def benchmark_parser(description: str, example: str) -> argparse.ArgumentParser:
    """The options every real-face benchmark takes (this one and bench_multiface.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--count", type=int, default=800, help="frames in all (60/15/25 %% train/val/test)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget in minutes (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", metavar="DIR", default=None, help="build the data and run here, and keep them")
    parser.add_argument("--train-args", default="", help=f"extra facetracker-train options, e.g. '{example}'")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = benchmark_parser(__doc__.splitlines()[0], "--backbone tiny").parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="facetracker-accuracy-"))
    data, seen, run = work / "data", work / "seen", work / "run"
    python = [sys.executable, "-m", "training"]
    if not data.exists():
        from training.data.realfaces import make_real_demo_data

        started = time.perf_counter()
        subprocess.run([*python, "make-demo-data", str(data), "--real", "--count", str(args.count),
                        "--seed", str(args.seed)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        # Other pictures of the training people (only its test split is used): new frames, same faces.
        make_real_demo_data(seen, count=args.count, seed=args.seed + 1, test_people="seen")
        print(f"real-face data: {args.count} + {args.count} frames in {time.perf_counter() - started:.0f} s -> {work}")

    metrics = train_with_cli(data, run, args.minutes, args.train_args.split())
    if isinstance(metrics, int):
        return metrics

    from training.core.device import quiet_tensorflow_logs

    quiet_tensorflow_logs()
    from training.data.dataset import load_dataset
    from training.evaluation.evaluate import evaluate_finder, evaluate_model
    from training.inference.classic import ClassicFaceFinder
    from training.inference.detector import Detector
    from training.inference.pretrained import pretrained_detector

    detector = Detector.from_file(run / "best.keras")
    pretrained = pretrained_detector()
    finders = [("classic finder (LBP cascade)", ClassicFaceFinder())]
    try:
        from training.inference.autolabel import PretrainedFaceFinder

        finders.append(("MTCNN (Label tab suggestions)", PretrainedFaceFinder()))
    except ImportError as exc:
        print(f"(MTCNN left out: {exc})")
    for title, root in (("new pictures of the people it trained on", seen), ("people it never saw", data)):
        test = load_dataset(root).require_split("test")
        rows = [("your model (" + (args.train_args or "default") + ")", evaluate_model(detector, test)),
                ("pretrained BlazeFace, before training", evaluate_model(pretrained, test))]
        rows += [(name, evaluate_finder(finder, test)) for name, finder in finders]
        print(f"\n{title}: {len(test)} test frames ({rows[0][1]['faces']} faces), IoU >= 0.5 for a hit")
        print_table(rows)
    print_real_photos([("your model (" + (args.train_args or "default") + ")", detector),
                       ("pretrained BlazeFace, before training", pretrained), *finders])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
