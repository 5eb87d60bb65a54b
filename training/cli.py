"""``facetracker-train``: train, inspect and try a face detector from the command line.

``facetracker-train DATA --epochs 10`` trains (the word ``train`` may be left out). Other commands:
``summary``, ``preview``, ``evaluate``, ``predict`` and ``make-demo-data``. TensorFlow is only
imported by the commands that need it, so ``--help`` and ``summary`` answer at once.

User mistakes (a bad dataset, a bad model file, a bad option) end with one line on stderr and exit
code 1 (2 for bad options), never a traceback. With ``--progress json`` every training event is one
JSON object per line on stdout, which is what the desktop app reads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from training.core.device import quiet_tensorflow_logs
from training.core.events import BATCH, END, EPOCH, START, WARNING, error_event
from training.core.text import format_duration
from training.engine.settings import add_train_arguments, config_from_args
from training.engine.settings import positive_int as _positive_int
from training.inference.autolabel import add_autolabel_parser, run_autolabel

PROG = "facetracker-train"
COMMANDS = ("train", "summary", "preview", "evaluate", "predict", "make-demo-data", "autolabel", "convert", "export")
EXIT_USER_ERROR = 1
EXIT_BAD_ARGUMENTS = 2
EXIT_INTERRUPTED = 130


# ----------------------------------------------------------------------------- argument parsing


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Build your own real-time face detector: train a two-head Keras model "
        "(face score + box) on your labelled pictures, then evaluate and try it.",
        epilog=f"Without a command, {PROG} trains: `{PROG} data --epochs 10` == `{PROG} train data --epochs 10`. "
        f"Try `{PROG} make-demo-data demo` then `{PROG} demo --epochs 3`.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train a detector (the default command)",
        description="Train a face detector on a labelled dataset and save it in a run folder "
        "(best.keras, last.keras, history.csv, losses.png, metrics.json).",
    )
    add_train_arguments(train)  # every training setting, from training.engine.settings' table
    train.add_argument("--progress", choices=("bar", "json", "none"), default="bar",
                       help="bar: a progress bar on stderr (default); json: one JSON event per line on stdout; "
                       "none: only the final line")

    summary = sub.add_parser("summary", help="count a dataset's pictures and list its problems",
                             description="Read a dataset the way training does and show what it holds.")
    summary.add_argument("data", help="dataset folder")
    summary.add_argument("--json", action="store_true", help="print the summary as JSON")
    summary.add_argument("--strict", action="store_true", help="fail on the first bad picture or label")
    summary.add_argument("--problems-file", metavar="FILE", default=None,
                         help="also write every problem and warning, one a line, to FILE (the summary groups "
                         "problems of one kind and shows at most 40 lines)")

    preview = sub.add_parser("preview", help="save a grid of (augmented) training pictures with their boxes",
                             description="Draw a grid of training pictures, augmented as training sees them, "
                             "with their labelled boxes: a quick check that labels are right.")
    preview.add_argument("data", help="dataset folder")
    preview.add_argument("--out", default="preview.png", metavar="PNG", help="PNG file to write (default preview.png)")
    preview.add_argument("--split", choices=("train", "val", "test"), default="train", help="which split (default train)")
    preview.add_argument("--count", type=_positive_int, metavar="N", default=16, help="pictures in the grid (default 16)")
    preview.add_argument("--input-size", type=_positive_int, metavar="PX", default=120, help="tile size in pixels (default 120)")
    preview.add_argument("--seed", type=int, metavar="N", default=0, help="random seed (default 0)")
    preview.add_argument("--strict", action="store_true", help="fail on the first bad picture or label")

    evaluate = sub.add_parser("evaluate", help="measure a trained model on a dataset split",
                              description="Precision, recall, F1, class accuracy and mean IoU of a model "
                              "on one split of a dataset.")
    evaluate.add_argument("model", help="a .keras, .onnx or .tflite model (e.g. runs/train/best.keras)")
    evaluate.add_argument("data", help="dataset folder")
    evaluate.add_argument("--split", choices=("train", "val", "test"), default="test", help="which split (default test)")
    evaluate.add_argument("--threshold", type=_fraction, metavar="SCORE", default=None,
                          help="face when the score is above this (default: the model's own, chosen on validation "
                          "when it was trained; 0.5 for a model without one)")
    evaluate.add_argument("--iou", type=_fraction, metavar="IOU", default=0.5, help="box right when IoU is at least this (default 0.5)")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument("--strict", action="store_true", help="fail on the first bad picture or label")
    evaluate.add_argument("--pictures", metavar="DIR", default=None,
                          help="also draw SPLIT_predictions.jpg (true and predicted boxes, worst first) and "
                          "pr_curve.png (precision-recall over the score threshold) into DIR")

    predict = sub.add_parser("predict", help="draw a model's detections on pictures",
                             description="Run a model on pictures (files or folders) and write copies with "
                             "the box and score drawn. A picture that cannot be read is skipped and named on "
                             "stderr, and the others are still drawn; the exit status is then 1.")
    predict.add_argument("model", help="a .keras, .onnx or .tflite model")
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="pictures, or folders of pictures")
    predict.add_argument("--out", default="runs/predict", metavar="DIR", help="folder for the drawn copies (default runs/predict)")
    predict.add_argument("--threshold", type=_fraction, metavar="SCORE", default=None,
                          help="face when the score is above this (default: the model's own, chosen on validation "
                          "when it was trained; 0.5 for a model without one)")
    predict.add_argument("--strict", action="store_true", help="stop at the first picture that cannot be read")

    demo = sub.add_parser("make-demo-data", help="write a labelled dataset to try things with (synthetic or real faces)",
                          description="Write labelled pictures in the tutorial's layout OUT/{train,val,test}/{images,labels}: "
                          "cartoon faces (about one in five without a face), or with --real, frames that look like a "
                          "webcam's, made from real face photos shipped with scikit-image and matplotlib: whole "
                          "photographs and faces pasted into natural scenes with distractors, faces 40-320 px wide "
                          "at 640x480, colour and grey, blur, noise and JPEG quality 30-95 (about 45 % without a "
                          "face; the test split's people appear in no other split).")
    demo.add_argument("out", help="folder to create")
    demo.add_argument("--real", action="store_true",
                      help="real face photos instead of drawn faces, as a webcam would show them: what accuracy "
                      "figures should be measured on")
    demo.add_argument("--count", type=_positive_int, metavar="N", default=None,
                      help="number of pictures (default 300 synthetic, 600 real)")
    demo.add_argument("--seed", type=int, metavar="N", default=0, help="random seed (default 0)")
    demo.add_argument("--max-faces", type=_positive_int, metavar="N", default=1,
                      help="with --real: up to N faces (at most 4) in each picture with a face (default 1)")

    export = sub.add_parser(
        "export", help="export a model to ONNX or TFLite (LiteRT) for light runtimes",
        description="Write a trained .keras model as an ONNX or TFLite (LiteRT) file, checked to give the same "
        "score and box on real pictures, with its metadata (the score threshold) in FILE.json beside it. "
        "FaceTracker opens both (the Detect tab, evaluate, predict): ONNX in ONNX Runtime "
        "(pip install \"facetracker[onnx]\", which also converts), TFLite in LiteRT (\"facetracker[litert]\").")
    export.add_argument("model", help="a .keras file (e.g. runs/train/best.keras)")
    export.add_argument("--format", choices=("onnx", "tflite"), default=None,
                        help="what to write (default: by --out's suffix)")
    export.add_argument("--out", metavar="FILE", default=None,
                        help="file to write (default: the model's name with .onnx or .tflite)")
    export.add_argument("--progress", choices=("text", "json"), default="text",
                        help="json: print the result as one JSON event line (what the app reads)")

    add_autolabel_parser(sub)

    convert = sub.add_parser(
        "convert", help="convert face labels between labelme, COCO, YOLO and Pascal VOC (and from WIDER FACE)",
        description="Read a dataset in one annotation format and write it, pictures included, in another: "
        "labelme (what FaceTracker trains on), COCO JSON, YOLO text or Pascal VOC XML, every face of each "
        "picture; WIDER FACE annotation files are read too. "
        "Pictures without a face are kept; train/val/test splits are kept when the source has them.",
        epilog=f"Train on a COCO, YOLO or VOC dataset by converting it first: `{PROG} convert exported/ data/ "
        f"--to labelme`, then `{PROG} data/`.")
    convert.add_argument("src", help="dataset folder to read")
    convert.add_argument("dst", help="new folder to write (must not exist, or be empty)")
    convert.add_argument("--to", required=True, choices=("labelme", "coco", "yolo", "voc"), help="format to write")
    convert.add_argument("--from", dest="source_format", choices=("labelme", "coco", "yolo", "voc", "wider"),
                         default=None, help="format of SRC (default: detected from its label files); wider: a "
                         "WIDER FACE download (wider_face_split/ beside WIDER_train/ and WIDER_val/)")
    convert.add_argument("--link", action="store_true",
                         help="hard-link the pictures instead of copying them (same disk only; copies otherwise)")
    convert.add_argument("--allow-outside", action="store_true",
                         help="read pictures that the annotation files name outside SRC (../x.jpg, an absolute path, "
                         "a link out of it); without it such a picture stops the conversion, naming the file")
    return parser


def _with_default_command(argv: list[str]) -> list[str]:
    """Insert ``train`` when no command is given, so ``facetracker-train DATA ...`` trains."""
    if not argv or argv[0] in COMMANDS or argv[0] in ("-h", "--help"):
        return argv
    return ["train", *argv]


# ----------------------------------------------------------------------------- progress output


class ProgressBar:
    """Renders training events as a one-line bar per epoch on a stream (stderr), Keras/Ultralytics style.

    On a terminal the bar redraws in place; elsewhere (a log file) only the finished epoch lines appear.
    """

    WIDTH = 24

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._epoch_started = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == START:
            resumed = event.get("resumed_from_epoch")
            self._print(
                f"Training on {event.get('device')}: {event.get('train_images')} training / "
                f"{event.get('val_images')} validation pictures, {event.get('batches_per_epoch')} batches per epoch, "
                f"starting from {event.get('started_from') or event.get('weights')}"
                + (f", resuming after epoch {resumed}" if resumed else "")
            )
            self._epoch_started = time.monotonic()
        elif kind == BATCH:
            if event.get("batch") == 1:
                self._epoch_started = time.monotonic()
            if self.live:
                self.stream.write("\r" + self._batch_line(event) + "\x1b[K")
                self.stream.flush()
        elif kind == EPOCH:
            line = (
                f"Epoch {event['epoch']}/{event['epochs']}  loss {event['total_loss']:.4f}  "
                f"class {event['class_loss']:.4f}  regress {event['regress_loss']:.4f}  iou {event['iou']:.3f}  |  "
                f"val loss {event['val_total_loss']:.4f}  val class {event['val_class_loss']:.4f}  "
                f"val regress {event['val_regress_loss']:.4f}  val iou {event['val_iou']:.3f}  "
                + (f"val AP50 {event['val_ap50']:.3f}  " if isinstance(event.get("val_ap50"), (int, float))
                   else f"val F1 {event['val_f1']:.3f}  " if isinstance(event.get("val_f1"), (int, float)) else "")
                + f"lr {event['lr']:.2e}  {event['seconds']:.1f}s"
            )
            self._print(("\r" if self.live else "") + line + ("\x1b[K" if self.live else ""))
        elif kind == WARNING:
            self._print(f"warning: {event.get('message')}")

    def _batch_line(self, event: dict[str, Any]) -> str:
        batch, batches = int(event["batch"]), max(1, int(event["batches"]))
        done = round(self.WIDTH * batch / batches)
        elapsed = time.monotonic() - self._epoch_started
        eta = elapsed / batch * (batches - batch) if batch else 0.0
        return (
            f"Epoch {event['epoch']}/{event['epochs']} [{'#' * done}{'.' * (self.WIDTH - done)}] "
            f"{batch}/{batches}  loss {event['total_loss']:.4f}  class {event['class_loss']:.4f}  "
            f"regress {event['regress_loss']:.4f}  lr {event['lr']:.2e}  ETA {format_duration(eta)}"
        )

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


def _json_line(event: dict[str, Any], stream: IO[str] | None = None) -> None:
    """One event as one flushed JSON line (NaN/inf become null, which every JSON reader accepts)."""
    stream = stream if stream is not None else sys.stdout
    stream.write(json.dumps(_json_safe(event)) + "\n")
    stream.flush()


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _json_safe(value.item())
    return value


# ----------------------------------------------------------------------------- commands


def _cmd_train(args: argparse.Namespace) -> int:
    from training.engine.run_folder import committed_epoch
    from training.engine.trainer import train

    config = config_from_args(args)
    seen: dict[str, Any] = {}
    render: Callable[[dict[str, Any]], None]
    if args.progress == "json":
        render = _json_line
    elif args.progress == "bar":
        render = ProgressBar()
    else:
        def render(event: dict[str, Any]) -> None:
            return None

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == START:
            seen["run_dir"] = event.get("run_dir")
            seen["epoch"] = event.get("resumed_from_epoch")
        elif event.get("event") == EPOCH:
            seen["epoch"] = event.get("epoch")
        render(event)

    interrupt = _InterruptWatch()
    why = ""
    try:
        with interrupt:
            result = train(config, on_event=on_event)
    except KeyboardInterrupt as exc:
        interrupt.happened = True
        result = None
        why = str(exc)  # what it was doing, when that is worth saying (waiting for a worker)
    if interrupt.happened:
        run_dir = seen.get("run_dir") or args.resume or args.out
        # What the folder holds, not the last epoch reported: a stop can fall between an epoch's commit and its report.
        message = _interrupted_message(args, run_dir, committed_epoch(run_dir) if run_dir else None)
        if why:
            message += f" It was {why}."
        if args.progress == "json":
            _json_line(error_event(message, interrupted=True, run_dir=seen.get("run_dir")))
        print(message, file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED

    if args.progress != "json":
        if result.stopped:
            print(f"Stopped early; continue with: {_resume_command(args, str(result.run_dir))}")
        if result.metrics.get("stop_reason"):
            print(f"Training ended: {result.metrics['stop_reason']}.")
        if result.metrics.get("verdict"):
            print(result.metrics["verdict"])
        if Path(result.best_model).is_file():
            print(f"Best model: {result.best_model}")
        print(f"Results saved to {result.run_dir}")
    return 0


def _command_line(*words: str) -> str:
    """Words joined as a shell would need them typed (quotes around paths with spaces)."""
    return subprocess.list2cmdline(words) if os.name == "nt" else shlex.join(words)


def _resume_command(args: argparse.Namespace, run_dir: str) -> str:
    epochs = ("--epochs", str(args.epochs)) if args.epochs else ()
    return _command_line(PROG, args.data, "--resume", str(run_dir), *epochs)


def _interrupted_message(args: argparse.Namespace, run_dir: str | None, last_epoch: int | None) -> str:
    if run_dir and last_epoch:
        return (
            f"Interrupted. Epoch {last_epoch}, the last finished one, is kept in {run_dir} (last.keras, best.keras); "
            f"continue with: {_resume_command(args, run_dir)}"
        )
    if run_dir and args.resume:
        return f"Interrupted. {run_dir} is as it was; continue with: {_resume_command(args, run_dir)}"
    if run_dir:
        return f"Interrupted before the first epoch finished; nothing to resume in {run_dir}: start again."
    return "Interrupted before training started; nothing was saved."


class _InterruptWatch:
    """Ctrl-C, or SIGTERM from a parent process (the desktop app), becomes KeyboardInterrupt, and is noted.

    The trainer catches KeyboardInterrupt inside its epoch loop and returns normally with the last finished
    epoch saved; ``happened`` tells the command that it was the user who stopped it.
    """

    def __init__(self) -> None:
        self.happened = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _InterruptWatch:
        if _on_main_thread():
            for name in ("SIGINT", "SIGTERM"):
                if hasattr(signal, name):
                    number = getattr(signal, name)
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)

    def _handle(self, signum: int, frame: object) -> None:
        self.happened = True
        raise KeyboardInterrupt


def _on_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _cmd_summary(args: argparse.Namespace) -> int:
    from training.data.dataset import load_dataset

    dataset = load_dataset(args.data, strict=args.strict)
    if args.problems_file:
        from training.core.files import atomic_write_text

        lines = [f"skipped {p}" for p in dataset.problems] + [f"warning: {w}" for w in dataset.warnings]
        atomic_write_text(args.problems_file, "".join(line + "\n" for line in lines))
    if args.json:
        print(json.dumps(_json_safe(dataset.to_dict()), indent=2))
    else:
        print(dataset.summary_text())
        if args.problems_file:
            print(f"Every problem ({len(dataset.problems)}) and warning ({len(dataset.warnings)}): {args.problems_file}")
    return 0


def _report_skipped(dataset: Any) -> None:
    """The files a command skipped (and the warnings about files it used) on stderr, many alike as one line."""
    from training.data.dataset import grouped_problem_lines

    for line in grouped_problem_lines(dataset.problems):
        print(f"skipped {line}", file=sys.stderr)
    for line in grouped_problem_lines(dataset.warnings):
        print(f"warning: {line}", file=sys.stderr)
    sys.stderr.flush()


def _cmd_preview(args: argparse.Namespace) -> int:
    from training.data.augment import write_preview
    from training.data.dataset import load_dataset

    dataset = load_dataset(args.data, strict=args.strict)
    _report_skipped(dataset)
    samples = dataset.require_split(args.split)
    out = write_preview(samples, args.out, input_size=args.input_size, count=args.count, seed=args.seed)
    print(f"Results saved to {out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from training.data.dataset import load_dataset
    from training.evaluation.evaluate import evaluate_model, format_table
    from training.inference.detector import Detector

    dataset = load_dataset(args.data, strict=args.strict)
    _report_skipped(dataset)
    samples = dataset.require_split(args.split)
    detector = Detector.from_file(args.model)
    metrics = evaluate_model(detector, samples, threshold=args.threshold, iou_threshold=args.iou)
    # A multi-face model is measured by AP50 over every face: the classic finder too, every face it finds.
    classic = _classic_every_face(samples, args.iou) if detector.multi_face else None
    if args.json:
        skipped = [str(p) for p in dataset.problems]
        extra = {"classic": classic} if classic is not None else {}
        print(json.dumps(_json_safe({"model": str(args.model), "split": args.split, **metrics, **extra,
                                     "skipped": skipped}), indent=2))
    else:
        print(f"{args.model} on the {args.split} split of {args.data}")
        print(format_table(metrics))
        if classic is not None:
            print(_classic_line(metrics, classic))
    if args.pictures:
        from training.evaluation.report import write_result_pictures

        write_result_pictures(detector, samples, args.pictures, split=args.split, threshold=args.threshold,
                              iou_threshold=args.iou, title=f"{Path(args.model).name} on the {args.split} split")
        print(f"Results saved to {args.pictures}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _classic_every_face(samples: list, iou_threshold: float) -> dict:
    """The classic finder on the same pictures, every face it finds (its cascade missing: the reason)."""
    from training.evaluation.evaluate import evaluate_finder
    from training.inference.classic import ClassicFaceFinder

    try:
        return evaluate_finder(ClassicFaceFinder(), samples, iou_threshold=iou_threshold, every_face=True)
    except (ImportError, OSError) as exc:
        return {"error": str(exc)}


def _classic_line(metrics: dict, classic: dict) -> str:
    """The classic finder's AP and F1 beside the model's, on one line."""
    from training.evaluation.evaluate import ap_key

    if "error" in classic:
        return f"classic finder: not measured ({classic['error']})"
    name = "AP50" if ap_key(metrics) == "ap50" else f"AP@{metrics['iou_threshold']:g}"
    return (f"classic finder (every face it finds, same pictures): {name} {classic[ap_key(classic)]:.3f}, "
            f"F1 {classic['f1']:.3f}, {classic['ms_per_picture']:.1f} ms a picture")


def _collect_images(inputs: list[str]) -> list[Path]:
    """The pictures named, and those directly inside the folders named (sorted)."""
    from training.data.errors import DataError
    from training.data.pictures import IMAGE_EXTENSIONS

    images: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(path, "folder has no pictures (" + ", ".join(IMAGE_EXTENSIONS) + ")")
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:
            raise DataError(path, "no such file or folder")
    return images


def _cmd_predict(args: argparse.Namespace) -> int:
    """Draws every picture it can read; one that cannot be read is named on stderr and skipped (``--strict``:
    the command stops there), and the exit status is then 1, after all the others are drawn."""
    import cv2

    from training.core.drawing import draw_detection, draw_detections
    from training.core.files import atomic_write_bytes
    from training.data.errors import DataError
    from training.data.pictures import load_image
    from training.inference.detector import Detector

    images = _collect_images(args.inputs)
    detector = Detector.from_file(args.model)
    if args.threshold is None:
        args.threshold = detector.threshold
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    failed = 0
    for path in images:
        name = path.name
        stem, n = path.stem, 2
        while name in used:  # same file name from two folders: keep both
            name, n = f"{stem}_{n}{path.suffix}", n + 1
        try:
            if (out_dir / name).resolve() == path.resolve():
                raise DataError(path, "the drawn copy would replace the picture itself: give another --out folder")
            image = load_image(path)
        except DataError as exc:
            if args.strict:
                raise
            failed += 1
            print(f"{PROG} predict: skipped {exc}", file=sys.stderr, flush=True)
            continue
        used.add(name)
        if detector.multi_face:  # every face above the threshold
            detector.threshold = args.threshold
            faces = detector.detect_all(image)
            drawn = draw_detections(image, faces, args.threshold)
        else:
            detection = detector.detect(image)
            drawn = draw_detection(image, detection, args.threshold, tag_no_face=True)
        ok, encoded = cv2.imencode(path.suffix if path.suffix.lower() in (".png", ".bmp") else ".jpg", drawn)
        if not ok:
            raise OSError(f"{out_dir / name}: could not encode the picture")
        atomic_write_bytes(out_dir / name, encoded.tobytes())  # not cv2.imwrite: no non-ASCII paths on Windows
        if detector.multi_face:
            where = "; ".join(f"{d.score:.2f} at ({', '.join(f'{v:.0f}' for v in d.box)})" for d in faces)
            print(f"{path}: {len(faces)} face{'s' if len(faces) != 1 else ''}" + (f": {where}" if faces else ""))
        elif detection.is_face(args.threshold):
            box = ", ".join(f"{v:.0f}" for v in detection.box)
            print(f"{path}: face {detection.score:.2f} at ({box})")
        else:
            print(f"{path}: no face ({detection.score:.2f})")
    if failed:
        print(f"{failed} of {len(images)} pictures could not be read (named above on stderr); "
              f"{len(images) - failed} drawn.")
    print(f"Results saved to {out_dir}")
    return EXIT_USER_ERROR if failed else 0


def _cmd_make_demo_data(args: argparse.Namespace) -> int:
    """Built in a staging folder beside OUT and renamed into place when complete (training.core.files.staging_folder):
    a killed run leaves no half dataset that reads as a whole one, and the next run removes its debris."""
    from training.core.files import staging_folder
    from training.data.dataset import DataError

    if args.real:
        from training.data.realfaces import make_real_demo_data as make
    else:
        from training.data.demo import make_demo_data as make

    count = args.count or (600 if args.real else 300)
    if args.max_faces > 1 and not args.real:
        raise ValueError("--max-faces needs --real (the drawn demo faces come one to a picture)")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(out, "already exists and is not an empty folder: choose a new folder for the demo data")
    with staging_folder(out) as staging:
        make(staging, count=count, seed=args.seed, **({"max_faces": args.max_faces} if args.real else {}))
    faces = f", up to {args.max_faces} faces each" if args.max_faces > 1 else ""
    print(f"Wrote {count} {'real-face' if args.real else 'synthetic'} labelled pictures{faces}.")
    print(f"Results saved to {out}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from training.data.formats import convert

    result = convert(args.src, args.dst, args.to, source_format=args.source_format, link=args.link,
                     allow_outside=args.allow_outside)
    print(result.summary())
    print(f"Results saved to {result.out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from training.inference.export import export_model

    result = export_model(args.model, args.format, args.out)
    if args.progress == "json":
        _json_line({"event": END, **_json_safe(result.as_dict())})
    else:
        print(result.summary())
    return 0


COMMAND_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _cmd_train,
    "summary": _cmd_summary,
    "preview": _cmd_preview,
    "evaluate": _cmd_evaluate,
    "predict": _cmd_predict,
    "make-demo-data": _cmd_make_demo_data,
    "autolabel": run_autolabel,
    "export": _cmd_export,
    "convert": _cmd_convert,
}


# ----------------------------------------------------------------------------- entry point


def _user_error_types() -> tuple[type[BaseException], ...]:
    """FaceTracker's own error types that mean "fix your input", from the modules already imported
    (a module that was never imported cannot have raised its error, and importing it would load TensorFlow)."""
    names = {
        "training.data.errors": ("DataError",),
        "training.inference.detector": ("ModelFileError",),
        "training.core.errors": ("TrainingError",),
        "training.model.backbones": ("WeightsUnavailableError",),
        "training.inference.export": ("ExportError",),
        "training.core.inputs": ("InputError",),
    }
    found: list[type[BaseException]] = []
    for module_name, class_names in names.items():
        module = sys.modules.get(module_name)
        for class_name in class_names:
            cls = getattr(module, class_name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    """Run ``facetracker-train`` with ``argv`` (default: the process's arguments); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(_with_default_command(argv))
    except SystemExit as exc:  # --help, or argparse's own usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_ARGUMENTS
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_ARGUMENTS
    json_errors = getattr(args, "progress", None) == "json"
    quiet_tensorflow_logs()
    try:
        code = COMMAND_HANDLERS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return code
    except BrokenPipeError:  # `facetracker-train summary data | head`: the reader left, nothing is wrong
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):
            pass
        return 0
    except Exception as exc:
        user_errors = _user_error_types()
        if isinstance(exc, user_errors) or isinstance(exc, (ValueError, OSError)):
            code = EXIT_USER_ERROR if isinstance(exc, user_errors + (OSError,)) else EXIT_BAD_ARGUMENTS
            message = str(exc) or type(exc).__name__
            if json_errors:
                _json_line(error_event(message))
            print(f"{PROG} {args.command}: error: {message}", file=sys.stderr, flush=True)
            if os.environ.get("FACETRACKER_DEBUG"):
                raise
            return code
        if json_errors:  # a bug: tell the app, then let the traceback through
            _json_line(error_event(f"{type(exc).__name__}: {exc}"))
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
