"""Training benchmark: our default detector against the tutorial's, and what the default reaches.

Run on demand (not part of the tests)::

    python benchmarks/bench_train.py                 # both parts, demo data in a temporary folder
    python benchmarks/bench_train.py --skip-accuracy # throughput only

Part 1, throughput (same machine, same process): training images/s of the default configuration
(``tiny`` backbone, its default input size, batch 8, augmentation on the fly) and of the tutorial's
(VGG16 from scratch at 120x120, batch 8, pictures already made, as the notebook's offline
augmentation left them on disk; here even kept in memory, which only flatters the tutorial), and
their ratio. The goal is a ratio of at least 5.

Part 2, accuracy: :func:`training.trainer.train` with the default settings on synthetic demo
pictures (640x480), stopped after ``--minutes`` at the latest; prints the test split's mean IoU
(goal: at least 0.7), detection figures and the time taken.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TUTORIAL = {"backbone": "vgg16", "input_size": 120, "batch_size": 8}


def _images_per_second(model, batches, batch_sizes: list[int], *, warmup_steps: int, timed_steps: int) -> float:
    """Steady-state training throughput: graph building and first batches are left out."""
    steps = len(batches)
    model.fit(batches, epochs=1, steps_per_epoch=min(warmup_steps, steps), verbose=0)
    images = 0
    started = time.perf_counter()
    done = 0
    while done < timed_steps:
        n = min(timed_steps - done, steps)
        model.fit(batches, epochs=1, steps_per_epoch=n, verbose=0)
        images += sum(batch_sizes[:n])
        done += n
    return images / (time.perf_counter() - started)


def _premade(batches):
    """The tutorial's offline pipeline: every batch already made (decoded, augmented, resized)."""
    import keras

    made = [batches[i] for i in range(len(batches))]

    class Premade(keras.utils.PyDataset):
        def __len__(self):
            return len(made)

        def __getitem__(self, index):
            return made[index]

    return Premade()


def throughput(data: Path, timed_steps: int) -> dict:
    import keras

    from training.augment import make_batches
    from training.data import load_dataset
    from training.defaults import default_learning_rate
    from training.model import BACKBONES, DEFAULT_BACKBONE, build_model
    from training.optimizer import make_optimizer
    from training.trainer import FaceTrackerModel, TrainConfig

    samples = load_dataset(data).require_split("train")
    defaults = TrainConfig(data=str(data))
    results = {}
    for label, backbone, size, batch_size, augment in (
        ("default", DEFAULT_BACKBONE, BACKBONES[DEFAULT_BACKBONE].default_input_size, defaults.batch_size, True),
        ("tutorial", TUTORIAL["backbone"], TUTORIAL["input_size"], TUTORIAL["batch_size"], False),
    ):
        keras.utils.set_random_seed(0)
        batches = make_batches(samples, input_size=size, batch_size=batch_size, augment=augment, shuffle=True)
        if not augment:
            batches = _premade(batches)
        network = build_model(backbone, size, weights=None)
        model = FaceTrackerModel(network)
        model.compile(optimizer=make_optimizer(len(batches), default_learning_rate(backbone)))
        steps = timed_steps if label == "default" else max(4, timed_steps // 8)
        sizes = [min(batch_size, len(samples) - i * batch_size) for i in range(len(batches))]
        rate = _images_per_second(model, batches, sizes, warmup_steps=3, timed_steps=steps)
        results[label] = rate
        print(f"{label:>8}: {backbone} {size}x{size} batch {batch_size}, "
              f"{network.count_params() / 1e6:.2f} M parameters, augment={'on the fly' if augment else 'pre-made'}: "
              f"{rate:.1f} training images/s", flush=True)
    results["ratio"] = results["default"] / results["tutorial"]
    print(f"   ratio: {results['ratio']:.1f}x (goal >= 5x)", flush=True)
    return results


def accuracy(data: Path, minutes: float, epochs: int | None, out: Path, **overrides) -> dict:
    from training.trainer import TrainConfig, train

    deadline = time.perf_counter() + minutes * 60
    started = time.perf_counter()

    def on_event(event: dict) -> None:
        if event["event"] == "epoch":
            print(f"  epoch {event['epoch']:>3}/{event['epochs']}  loss {event['total_loss']:.3f}  "
                  f"val_loss {event['val_total_loss']:.3f}  val_iou {event['val_iou']:.3f}  "
                  f"lr {event['lr']:.2e}  ({time.perf_counter() - started:.0f} s)", flush=True)
        elif event["event"] in ("start", "warning"):
            print("  " + ", ".join(f"{k}={v}" for k, v in event.items() if k != "event"), flush=True)

    config = TrainConfig(data=str(data), out=str(out), epochs=epochs, **overrides)
    result = train(config, on_event=on_event, should_stop=lambda: time.perf_counter() > deadline)
    test = result.metrics.get("test") or {}
    seconds = time.perf_counter() - started
    print(f"accuracy: {result.metrics['epochs_completed']} epochs in {seconds:.0f} s "
          f"({result.metrics['images_per_second']:.0f} training images/s); best epoch {result.metrics['best_epoch']}",
          flush=True)
    if test:
        print(f"  test split ({test['images']} pictures, {test['faces']} faces): mean IoU {test['mean_iou']:.3f} "
              f"(goal >= 0.7), class accuracy {test['class_accuracy']:.3f}, precision {test['precision']:.3f}, "
              f"recall {test['recall']:.3f}", flush=True)
    return {"seconds": seconds, **result.metrics}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a dataset folder (default: demo data made in a temporary folder)")
    parser.add_argument("--count", type=int, default=300, help="demo pictures to make (default 300)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time limit for part 2 (default 5)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs for part 2 (default: the backbone's)")
    parser.add_argument("--timed-steps", type=int, default=40, help="timed batches of the default model (default 40)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate for part 2 (default: the backbone's)")
    parser.add_argument("--input-size", type=int, default=None, help="input size for part 2 (default: backbone's)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args(argv)

    from training.device import configure_device

    print(f"device: {configure_device()}, {os.cpu_count()} CPU cores visible", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        data = args.data
        if data is None:
            from training.demo import make_demo_data

            started = time.perf_counter()
            data = make_demo_data(Path(tmp) / "demo", count=args.count)
            print(f"demo data: {args.count} pictures 640x480 in {time.perf_counter() - started:.1f} s", flush=True)
        if not args.skip_throughput:
            throughput(data, args.timed_steps)
        if not args.skip_accuracy:
            overrides = {k: v for k, v in (("learning_rate", args.lr), ("input_size", args.input_size)) if v}
            accuracy(data, args.minutes, args.epochs, Path(tmp) / "run", **overrides)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
