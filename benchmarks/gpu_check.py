"""GPU check of the grid model and its losses on a non-TensorFlow Keras backend (run on demand).

The model (``training.model.build``) and the losses (``training.model.losses``) are written in ``keras.ops`` so that
they run wherever Keras 3 runs. This fits the grid model with the grid losses on the GPU through
JAX or PyTorch (``KERAS_BACKEND=jax python benchmarks/gpu_check.py``) on generated plumbing data (a bright
square on noise: it proves the code path and the speed, not accuracy), and prints the device, the
throughput and the losses before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from training.model.build import build_model, grid_cell_boxes, grid_maps_model  # noqa: E402
from training.model.losses import CLASS_LOSS_WEIGHT, grid_losses  # noqa: E402
from training.model.optimizer import make_optimizer  # noqa: E402


class GridFit(keras.Model):
    """The trainer's loss on the raw maps (training.engine.trainer.FaceTrackerModel, without its data pipeline)."""

    def __init__(self, maps: keras.Model) -> None:
        super().__init__()
        self.maps = maps

    def call(self, inputs, training=None):
        return self.maps(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        class_true, box_true = y
        score_logits, box_map = y_pred
        grid = int(score_logits.shape[1])
        class_l, regress_l, _ = grid_losses(class_true, box_true, score_logits, grid_cell_boxes(box_map, grid), grid)
        return regress_l + CLASS_LOSS_WEIGHT * class_l


def plumbing_batch(rng: np.random.Generator, count: int, size: int) -> tuple[np.ndarray, tuple]:
    images = rng.uniform(0, 120, (count, size, size, 3)).astype("float32")
    faces = rng.random(count) < 0.55
    boxes = np.zeros((count, 4), "float32")
    for i in np.flatnonzero(faces):
        side = rng.uniform(0.15, 0.4)
        x1, y1 = rng.uniform(0, 1 - side, 2)
        boxes[i] = (x1, y1, x1 + side, y1 + side)
        a, b, c, d = (boxes[i] * size).astype(int)
        images[i, b:d, a:c] = 230
    return images, (faces.astype("float32")[:, None], boxes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    print(f"Keras {keras.__version__} on {keras.backend.backend()}")
    if keras.backend.backend() == "jax":
        import jax

        print("devices:", jax.devices())
    network = build_model("grid", 128, weights=None)
    model = GridFit(grid_maps_model(network))
    steps = args.epochs * (args.images // args.batch_size)
    model.compile(optimizer=make_optimizer(args.images // args.batch_size, 2e-3, total_steps=steps))
    rng = np.random.default_rng(0)
    x, y = plumbing_batch(rng, args.images, 128)
    first = model.evaluate(x[:512], (y[0][:512], y[1][:512]), batch_size=128, verbose=0, return_dict=False)
    started = time.perf_counter()
    history = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, shuffle=True)
    seconds = time.perf_counter() - started
    last = model.evaluate(x[:512], (y[0][:512], y[1][:512]), batch_size=128, verbose=0, return_dict=False)
    losses = [round(v, 4) for v in history.history["loss"]]
    print(f"fit: {args.epochs} epochs of {args.images} images in {seconds:.1f} s "
          f"({args.epochs * args.images / seconds:.0f} img/s, first epoch includes compilation)")
    print(f"loss per epoch: {losses}")
    print(f"loss on 512 training images: before {first:.4f}, after {last:.4f}")
    ok = np.isfinite(losses).all() and last < 0.5 * first
    print("GPU CHECK", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
