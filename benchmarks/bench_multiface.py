"""Multi-face real-face benchmark: AP50 of the default model after 10 CPU-minutes, beside the classic finder.

Run on demand (not part of the tests; about 12 minutes on 2 cores)::

    python benchmarks/bench_multiface.py                     # 800 frames, 10 CPU-minutes of training
    python benchmarks/bench_multiface.py --count 40 --minutes 1 --keep runs/bench-multi   # a quick check

1. Builds a real multi-face dataset (``training.data.realfaces.make_real_demo_data(..., max_faces=4)``: frames
   with 0 to 4 real faces of different people in natural scenes, with non-face distractors; the test
   split's people appear in no other split): by default 480 train, 120 val, 200 test frames.
2. Trains the default model (``--train-args`` for others, e.g. ``--backbone multiface``) through the command line, as a user would, with ``--time-limit`` as the
   CPU budget (:func:`bench_accuracy.train_with_cli`).
3. Prints, on the same test frames, every face counting: AP50 (PASCAL VOC / WIDER FACE), and at the
   model's threshold precision, recall and F1 over faces, mean IoU of the faces found, false alarms on
   frames without a face and ms per frame; for the trained model and the classic finder (every face
   its cascade finds); and the same detectors, with the pretrained BlazeFace before any training, on real
   photographs no training set uses (``training.evaluation.realphotos``; set FACETRACKER_PHOTOS for the whole set).

Goal (issue 13): the multiface model at AP50 >= 0.85 after 10 CPU-minutes on 2 cores.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_accuracy import (  # noqa: E402  (after the path is set)
    benchmark_parser,
    print_real_photos,
    print_table,
    train_with_cli,
)

MAX_FACES_PER_FRAME = 4


def main(argv: list[str] | None = None) -> int:
    args = benchmark_parser(__doc__.splitlines()[0], "--epochs 30").parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="facetracker-multiface-"))
    data, run = work / "data", work / "run"
    if not data.exists():
        from training.data.realfaces import make_real_demo_data

        started = time.perf_counter()
        make_real_demo_data(data, count=args.count, seed=args.seed, max_faces=MAX_FACES_PER_FRAME)
        print(f"real multi-face data: {args.count} frames in {time.perf_counter() - started:.0f} s -> {work}")

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

    test = load_dataset(data).require_split("test")
    trained = Detector.from_file(run / "best.keras")
    pretrained = pretrained_detector()
    name = f"your model ({args.train_args or 'default settings'})"
    rows = [(name, evaluate_model(trained, test)),
            ("pretrained BlazeFace, before training", evaluate_model(pretrained, test)),
            ("classic finder (every face it finds)", evaluate_finder(ClassicFaceFinder(), test, every_face=True))]
    first = rows[0][1]
    print(f"\npeople it never saw: {len(test)} test frames, {first['faces']} faces in {first['face_pictures']} "
          f"frames; every face counts, IoU >= 0.5 for a hit, one box a face")
    print_table(rows, measures=("ap50", "f1"))
    print_real_photos([(name, trained), ("pretrained BlazeFace, before training", pretrained),
                       ("classic finder (every face it finds)", ClassicFaceFinder())])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
