"""Train the two-head face detector: the tutorial's loop, made safe to stop, resume and watch.

:class:`FaceTrackerModel` is the tutorial's subclassed model in Keras 3 terms: it wraps the
functional network and overrides ``compute_loss`` (not ``train_step``), so the standard ``fit``
loop, callbacks and any Keras backend work. Only the inner functional network is ever saved, so a
``.keras`` file loads back with ``keras.models.load_model`` and no custom objects.

:func:`train` runs one training job into a run folder (``runs/train``, ``runs/train2``, ...)::

    best.keras  last.keras  history.csv  losses.png  metrics.json  config.json  tensorboard/  train_state/

Checkpoints are written only for finished epochs, each file atomically, so stopping (the GUI's
button, Ctrl-C) or a NaN loss never leaves a half-written or poisoned model behind.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from training.defaults import (
    DEFAULT_BACKBONE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_PATIENCE,
    WEIGHT_CHOICES,
    default_epochs,
    default_learning_rate,
)
from training.detection import write_model_metadata
from training.losses import CLASS_LOSS_WEIGHT, grid_losses, total_loss
from training.metrics import best_f1_threshold, box_iou, box_iou_tensor
from training.model import (
    BACKBONES,
    WEIGHT_NAMES,
    WeightsUnavailableError,
    build_model,
    grid_cell_boxes,
    grid_maps_model,
    is_grid_model,
    model_input_size,
)
from training.optimizer import make_optimizer

EventCallback = Callable[[dict], None]

METRIC_NAMES = ("total_loss", "class_loss", "regress_loss", "iou")
# val_f1: F1 at IoU 0.5 on the validation pictures at the score threshold that maximises it (threshold).
HISTORY_COLUMNS = ("epoch", *METRIC_NAMES, *(f"val_{name}" for name in METRIC_NAMES), "val_f1", "threshold", "lr")
STATE_DIR = "train_state"


class TrainingError(RuntimeError):
    """Training cannot start or cannot go on; the message says why and what to do."""


@dataclass
class TrainConfig:
    """Everything one training run needs; saved as ``config.json`` in the run folder."""

    data: str
    out: str | None = None
    epochs: int | None = None  # total epochs; None: DEFAULT_EPOCHS[backbone] (or, resuming, the run's own)
    batch_size: int = DEFAULT_BATCH_SIZE
    backbone: str = DEFAULT_BACKBONE
    input_size: int | None = None
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATES[backbone]
    weights: str = "auto"
    tutorial_exact: bool = False
    augment: bool = True
    mixed_precision: bool = True
    strict: bool = False
    seed: int = 0
    resume: str | None = None
    patience: int | None = None  # epochs without a better validation F1 before stopping; None: the default, 0: never
    time_limit: float | None = None  # minutes; training ends after the epoch that passes it


@dataclass
class RunResult:
    """Where a run's files are and how it went (``stopped`` when the user ended it early)."""

    run_dir: Path
    best_model: Path
    last_model: Path
    metrics: dict = field(default_factory=dict)
    stopped: bool = False


class FaceTrackerModel(keras.Model):
    """The trainable wrapper: the functional two-head network plus the tutorial's losses and an IoU metric.

    ``face_only`` (the default) trains the box head only on pictures that show a face; ``False``
    reproduces the tutorial, which also pulls boxes of no-face pictures toward ``[0, 0, 0, 0]``.
    """

    def __init__(self, network: keras.Model, face_only: bool = True, **kwargs):
        super().__init__(**kwargs)
        # The grid head trains on its raw per-cell maps (same weights, see training.model.grid_maps_model).
        self.grid = is_grid_model(network)
        self.network = grid_maps_model(network) if self.grid else network
        self.face_only = face_only
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.class_loss_tracker = keras.metrics.Mean(name="class_loss")
        self.regress_loss_tracker = keras.metrics.Mean(name="regress_loss")
        self.iou_tracker = keras.metrics.Mean(name="iou")

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Tutorial total loss; also updates the four trackers that make up the logs."""
        class_true, box_true = y
        if self.grid:
            score_logits, box_map = y_pred
            grid = int(score_logits.shape[1])
            cell_boxes = grid_cell_boxes(box_map, grid)
            class_l, regress_l, _ = grid_losses(class_true, box_true, score_logits, cell_boxes, grid)
            total = regress_l + CLASS_LOSS_WEIGHT * class_l
            best = ops.argmax(ops.reshape(score_logits, (-1, grid * grid)), axis=-1)
            box_pred = ops.reshape(ops.take_along_axis(cell_boxes, ops.reshape(best, (-1, 1, 1)), axis=1), (-1, 4))
        else:
            class_pred, box_pred = y_pred
            total, class_l, regress_l = total_loss(class_true, class_pred, box_true, box_pred,
                                                   face_only=self.face_only)
        face = ops.reshape(ops.cast(class_true, "float32"), (-1,))
        self.total_loss_tracker.update_state(total)
        self.class_loss_tracker.update_state(class_l)
        self.regress_loss_tracker.update_state(regress_l)
        # IoU of a no-face picture's box means nothing: weight it 0.
        self.iou_tracker.update_state(box_iou_tensor(box_true, box_pred), sample_weight=face)
        for extra in self.losses:  # regularisers, if a backbone has any
            total = total + ops.cast(ops.sum(extra), "float32")
        return total

    @property
    def metrics(self):
        # Exactly these four (Keras's own "loss" tracker would only repeat total_loss).
        return [self.total_loss_tracker, self.class_loss_tracker, self.regress_loss_tracker, self.iou_tracker]


# ----------------------------------------------------------------------------------------------
# small helpers


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, json.dumps(obj, indent=2, default=str).encode("utf-8"))


def next_run_dir(base: str | os.PathLike = "runs", name: str = "train") -> Path:
    """``runs/train``, then ``runs/train2``, ``runs/train3``... (the first free one, created)."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    index = 1
    while True:
        candidate = base / (name if index == 1 else f"{name}{index}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            index += 1


def _versions() -> dict[str, str]:
    """Library versions for config.json (read from package metadata: no backend import here)."""
    versions = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__,
                "backend": keras.backend.backend()}
    for package in ("tensorflow", "jax", "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _validate(config: TrainConfig) -> None:
    """Reject a bad config before any data is read or any model is built."""
    if config.backbone not in BACKBONES:
        raise TrainingError(f"unknown backbone {config.backbone!r}; choose one of {', '.join(BACKBONES)}")
    if config.weights not in WEIGHT_CHOICES:
        raise TrainingError(f"weights must be one of {', '.join(WEIGHT_CHOICES)}, got {config.weights!r}")
    pretrained = BACKBONES[config.backbone].pretrained
    if config.weights in ("imagenet", "face") and config.weights != pretrained:
        others = ", ".join(name for name, spec in BACKBONES.items() if spec.pretrained == config.weights)
        raise TrainingError(
            f"backbone {config.backbone!r} has no {WEIGHT_NAMES[config.weights]} weights; use --weights none or auto, "
            f"or a backbone that has them ({others})"
        )
    if not isinstance(config.batch_size, int) or config.batch_size < 1:
        raise TrainingError(f"batch_size must be a whole number of at least 1, got {config.batch_size!r}")
    if config.epochs is not None and (not isinstance(config.epochs, int) or config.epochs < 1):
        raise TrainingError(f"epochs must be a whole number of at least 1, got {config.epochs!r}")
    if config.learning_rate is not None and not (
        isinstance(config.learning_rate, int | float) and math.isfinite(config.learning_rate) and config.learning_rate > 0
    ):
        raise TrainingError(f"learning_rate must be a positive number, got {config.learning_rate!r}")
    if config.input_size is not None and (not isinstance(config.input_size, int) or config.input_size < 32):
        raise TrainingError(f"input_size must be a whole number of at least 32 pixels, got {config.input_size!r}")
    if BACKBONES[config.backbone].box_pooling == "grid":
        if config.tutorial_exact:
            raise TrainingError(f"--tutorial-exact is the tutorial's single-box training; the {config.backbone} "
                                "backbone has one box per cell: use it with --backbone vgg16 (or tiny)")
        if config.input_size is not None and config.input_size % 16:
            raise TrainingError(f"input_size of the {config.backbone} backbone must be a multiple of 16, "
                                f"got {config.input_size}")
    if config.patience is not None and (not isinstance(config.patience, int) or config.patience < 0):
        raise TrainingError(f"patience must be a whole number of epochs (0: never stop early), got {config.patience!r}")
    if config.time_limit is not None and not (
        isinstance(config.time_limit, int | float) and math.isfinite(config.time_limit) and config.time_limit > 0
    ):
        raise TrainingError(f"time_limit must be a positive number of minutes, got {config.time_limit!r}")


def _load_resume(config: TrainConfig) -> tuple[TrainConfig, dict, dict]:
    """Read a run folder's saved config and state; the saved settings win except epochs/data."""
    run_dir = Path(config.resume)
    if not run_dir.is_dir():
        raise TrainingError(f"{run_dir}: cannot resume: no such run folder")
    needed = [run_dir / "config.json", run_dir / "last.keras", run_dir / STATE_DIR / "state.json",
              run_dir / STATE_DIR / "optimizer.npz"]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise TrainingError(
            f"{run_dir}: cannot resume: no saved training state ({', '.join(missing)} missing); "
            "a run can be resumed once it has finished at least one epoch"
        )
    try:
        saved = json.loads((run_dir / "config.json").read_text())
        state = json.loads((run_dir / STATE_DIR / "state.json").read_text())
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{run_dir}: cannot resume: unreadable run files ({exc})") from exc
    known = {f.name for f in fields(TrainConfig)}
    merged = {k: v for k, v in saved.get("config", {}).items() if k in known}
    merged.update(
        epochs=config.epochs or merged.get("epochs"), data=config.data or merged.get("data"), resume=str(run_dir),
        out=str(run_dir),
        mixed_precision=config.mixed_precision, strict=config.strict,
        patience=config.patience if config.patience is not None else merged.get("patience"),
        time_limit=config.time_limit,
    )
    return TrainConfig(**merged), saved, state


def _resume_warnings(requested: TrainConfig, effective: TrainConfig) -> list[str]:
    """Settings the user explicitly changed that a resumed run must keep as they were."""
    defaults = TrainConfig(data="")
    messages = []
    for name in ("backbone", "input_size", "batch_size", "learning_rate", "weights", "tutorial_exact", "augment",
                 "seed"):
        asked = getattr(requested, name)
        if asked != getattr(defaults, name) and asked != getattr(effective, name):
            messages.append(
                f"resuming keeps the run's {name}={getattr(effective, name)!r}; the requested {asked!r} is ignored"
            )
    return messages


def _inner_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The Adam inside a mixed-precision LossScaleOptimizer, so state moves between CPU and GPU runs."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def _restore_optimizer(optimizer: keras.optimizers.Optimizer, model: keras.Model, state_dir: Path) -> None:
    """Put back Adam's moments and step count, so the learning rate goes on where it stopped."""
    optimizer.build(model.trainable_variables)
    with np.load(state_dir / "optimizer.npz") as saved:
        values = [saved[f"v{i}"] for i in range(len(saved.files))]
    variables = _inner_optimizer(optimizer).variables
    if len(values) != len(variables) or any(
        tuple(v.shape) != a.shape for v, a in zip(variables, values, strict=False)
    ):
        raise TrainingError(
            f"{state_dir / 'optimizer.npz'}: the saved optimizer state does not fit this model "
            f"({len(values)} arrays for {len(variables)} variables)"
        )
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def _optimizer_state_bytes(optimizer: keras.optimizers.Optimizer) -> bytes:
    buffer = io.BytesIO()
    variables = _inner_optimizer(optimizer).variables
    np.savez(buffer, **{f"v{i}": ops.convert_to_numpy(v) for i, v in enumerate(variables)})
    return buffer.getvalue()


def _history_csv(rows: list[dict]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in HISTORY_COLUMNS})
    return text.getvalue().encode("utf-8")


def plot_losses(rows: list[dict], out_png: Path) -> Path:
    """The tutorial's three plots (total, classification, regression loss), train against validation."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 4.5))
    FigureCanvasAgg(figure)
    epochs = [row["epoch"] for row in rows]
    for ax, (key, title) in zip(
        figure.subplots(1, 3), (("total_loss", "Loss"), ("class_loss", "Classification Loss"),
                                ("regress_loss", "Regression Loss")), strict=True
    ):
        ax.plot(epochs, [row[key] for row in rows], color="teal", marker="o", label=key)
        ax.plot(epochs, [row[f"val_{key}"] for row in rows], color="orange", marker="o", label=f"val_{key}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
    figure.tight_layout()
    figure.savefig(out_png, dpi=80)
    return out_png


# ----------------------------------------------------------------------------------------------
# the per-batch / per-epoch recorder


class _RunRecorder(keras.callbacks.Callback):
    """Emits progress events, polls ``should_stop``, catches NaN, and checkpoints finished epochs."""

    def __init__(self, *, run_dir: Path, network: keras.Model, epochs: int, batches: int,
                 batch_size: int, train_images: int, history: list[dict], best: tuple[float, float],
                 best_epoch: int, emit: EventCallback, should_stop: Callable[[], bool] | None, state_extra: dict,
                 val_batches: keras.utils.PyDataset, patience: int, deadline: float | None):
        super().__init__()
        self.val_batches = val_batches
        self.patience = patience
        self.deadline = deadline  # time.perf_counter() value after which no new epoch starts
        self.stop_reason: str | None = None
        self.run_dir = run_dir
        self.network = network
        self.epochs = epochs
        self.batches = batches
        self.batch_size = batch_size
        self.train_images = train_images
        self.history = history
        self.best = best  # (validation F1, validation mean IoU) of the best epoch so far
        self.best_epoch = best_epoch
        self.emit = emit
        self.should_stop = should_stop
        self.state_extra = state_extra
        self.stop_requested = False
        self.failure: str | None = None
        self.train_seconds = 0.0
        self.timed_images = 0
        self._epoch = 0
        self._batches_done = 0
        self._epoch_started = 0.0
        self._timer_started: float | None = None

    def _lr(self) -> float:
        """The rate the schedule gives at the optimizer's current step (what the next step uses)."""
        return float(ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._batches_done = 0
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._batches_done += 1
        now = time.perf_counter()
        # Throughput leaves out the first batch of the session, which also builds the graph.
        if self._timer_started is None:
            self._timer_started = now
        else:
            self.timed_images += min(self.batch_size, self.train_images - (self._batches_done - 1) * self.batch_size)
            self.train_seconds = now - self._timer_started
        values = {name: float(logs[name]) for name in METRIC_NAMES}
        if not all(math.isfinite(v) for v in values.values()):
            self.failure = (
                f"training diverged: the loss became {values['total_loss']} at epoch {self._epoch}, batch "
                f"{self._batches_done} (learning rate {self._lr():.3g}); that epoch was not saved. "
                "Try a lower learning rate."
            )
            self.model.stop_training = True
            return
        self.emit({"event": "batch", "epoch": self._epoch, "epochs": self.epochs,
                   "batch": self._batches_done, "batches": self.batches, **values, "lr": self._lr()})
        if self.should_stop is not None and self.should_stop():
            self.stop_requested = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.failure is not None or self._batches_done < self.batches:
            return  # a diverged or interrupted epoch is never saved
        logs = logs or {}
        row: dict[str, Any] = {"epoch": epoch + 1}
        for name in (*METRIC_NAMES, *(f"val_{n}" for n in METRIC_NAMES)):
            row[name] = float(logs.get(name, float("nan")))
        if not all(math.isfinite(row[name]) for name in row):
            self.failure = (
                f"training diverged: validation loss became {row['val_total_loss']} at epoch {epoch + 1}; "
                "that epoch was not saved. Try a lower learning rate."
            )
            self.model.stop_training = True
            return
        row.update(self._validation_detections())
        row["lr"] = self._lr()
        row["seconds"] = time.perf_counter() - self._epoch_started
        score = (row["val_f1"], row["val_iou"])
        improved = score > self.best
        if improved:
            self.best, self.best_epoch = score, epoch + 1
        self.history.append(row)
        self._checkpoint(improved)
        self.emit({"event": "epoch", "epochs": self.epochs, **row})
        if self.patience and epoch + 1 - self.best_epoch >= self.patience and epoch + 1 < self.epochs:
            self.stop_reason = (f"early stopping: validation F1 did not improve for {self.patience} epochs "
                                f"(best epoch {self.best_epoch})")
            self.model.stop_training = True
        elif self.deadline is not None and time.perf_counter() >= self.deadline and epoch + 1 < self.epochs:
            self.stop_reason = f"time limit reached after epoch {epoch + 1}"
            self.model.stop_training = True

    def _validation_detections(self) -> dict:
        """F1 at IoU 0.5 on the validation pictures at the threshold that maximises it, and that threshold.

        Detection quality, not loss, decides which epoch is best: a lower loss can come with boxes
        that land on fewer faces.
        """
        has_face, scores, ious = [], [], []
        for index in range(len(self.val_batches)):
            x, (classes, boxes) = self.val_batches[index]
            class_pred, box_pred = (ops.convert_to_numpy(out) for out in self.network(x, training=False))
            has_face.append(classes[:, 0] > 0.5)
            scores.append(class_pred[:, 0])
            ious.append(box_iou(box_pred, boxes))
        has_face, scores, ious = (np.concatenate(parts) for parts in (has_face, scores, ious))
        threshold, f1 = best_f1_threshold(has_face, scores, ious)
        return {"val_f1": f1, "threshold": threshold}

    def _checkpoint(self, improved: bool) -> None:
        """Write a finished epoch's files under temporary names, then swap them all in together.

        Each swap is atomic and they follow one another at once, so a crash or Ctrl-C leaves the
        previous epoch's set or the new one: never a half-written file, hardly ever a mix.
        """
        state_dir = self.run_dir / STATE_DIR
        state_dir.mkdir(exist_ok=True)
        state = {**self.state_extra, "epoch": self.history[-1]["epoch"], "best_val_f1": self.best[0],
                 "best_val_iou": self.best[1], "best_epoch": self.best_epoch, "history": self.history,
                 "optimizer_iterations": int(ops.convert_to_numpy(self.model.optimizer.iterations))}
        staged: list[tuple[Path, Path]] = []

        def stage(final: Path, write: Callable[[Path], object]) -> Path:
            tmp = final.with_name(f".{final.stem}.tmp{final.suffix}")  # Keras insists on a .keras suffix
            write(tmp)
            staged.append((tmp, final))
            return tmp

        row = self.history[-1]
        metadata = {"score_threshold": row["threshold"], "epoch": row["epoch"], "val_f1": row["val_f1"],
                    "val_iou": row["val_iou"], "iou_threshold": 0.5}

        def save_network(tmp: Path) -> None:
            self.network.save(tmp)
            write_model_metadata(tmp, metadata)

        last_tmp = stage(self.run_dir / "last.keras", save_network)
        if improved:
            stage(self.run_dir / "best.keras", lambda tmp: shutil.copyfile(last_tmp, tmp))
        stage(state_dir / "optimizer.npz", lambda tmp: tmp.write_bytes(_optimizer_state_bytes(self.model.optimizer)))
        stage(state_dir / "state.json", lambda tmp: tmp.write_text(json.dumps(state, indent=2)))
        stage(self.run_dir / "history.csv", lambda tmp: tmp.write_bytes(_history_csv(self.history)))
        for tmp, final in staged:
            os.replace(tmp, final)


# ----------------------------------------------------------------------------------------------
# train()


def train(
    config: TrainConfig,
    on_event: EventCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Train a detector as ``config`` says; see the module docstring for what lands in the run folder.

    Raises:
        TrainingError: a bad setting, a run that cannot be resumed, or a loss that became NaN/inf.
        training.data.DataError: the dataset cannot be used (a missing split, an unreadable file...).
    """
    from training.augment import make_batches
    from training.data import load_dataset
    from training.device import configure_device

    def emit(event: dict) -> None:
        if on_event is not None:
            on_event(event)

    started = time.perf_counter()
    requested = config
    _validate(config)
    saved_config: dict = {}
    state: dict = {}
    if config.resume:
        config, saved_config, state = _load_resume(config)
    config = replace(config, epochs=config.epochs or default_epochs(config.backbone))
    if config.resume:
        for message in _resume_warnings(requested, config):
            emit({"event": "warning", "message": message})
        if state["epoch"] >= config.epochs:
            raise TrainingError(
                f"{config.resume}: already trained {state['epoch']} epochs; ask for more than that to resume "
                f"(epochs counts the total, e.g. {state['epoch'] + 5})"
            )
    elif config.out is not None and (Path(config.out) / "last.keras").exists():
        raise TrainingError(f"{config.out}: already holds a training run; resume it or choose another folder")

    device = configure_device(mixed_precision=config.mixed_precision)
    dataset = load_dataset(config.data, strict=config.strict)
    train_samples = dataset.require_split("train")
    val_samples = dataset.require_split("val")
    for problem in dataset.problems:
        emit({"event": "warning", "message": f"skipped {problem}"})

    keras.utils.set_random_seed(config.seed)
    spec = BACKBONES[config.backbone]
    learning_rate = float(config.learning_rate or default_learning_rate(config.backbone))

    if config.resume:
        run_dir = Path(config.resume)
        try:
            network = keras.models.load_model(run_dir / "last.keras")
        except Exception as exc:  # a damaged file: say which and why, not a Keras traceback
            raise TrainingError(f"{run_dir / 'last.keras'}: cannot load the last checkpoint ({exc})") from exc
        weights_used = saved_config.get("weights_used", "none")
        input_size = model_input_size(network)
        batches_per_epoch = int(state.get("batches_per_epoch") or math.ceil(len(train_samples) / config.batch_size))
    else:
        input_size = int(config.input_size or spec.default_input_size)
        pretrained = spec.pretrained if config.weights == "auto" else None if config.weights == "none" else config.weights
        weights_used = pretrained or "none"
        try:
            network = build_model(config.backbone, input_size, weights=pretrained)
        except WeightsUnavailableError as exc:
            if config.weights != "auto":
                raise TrainingError(str(exc)) from exc
            emit({"event": "warning", "message": f"{exc}; training {config.backbone} from scratch instead"})
            weights_used = "none"
            network = build_model(config.backbone, input_size, weights=None)
        batches_per_epoch = math.ceil(len(train_samples) / config.batch_size)
        run_dir = Path(config.out) if config.out else next_run_dir()
        run_dir.mkdir(parents=True, exist_ok=True)

    grid = is_grid_model(network)
    train_batches = make_batches(train_samples, input_size=input_size, batch_size=config.batch_size,
                                 augment=config.augment, shuffle=True, seed=config.seed, jitter=grid)
    val_batches = make_batches(val_samples, input_size=input_size, batch_size=config.batch_size)
    if config.resume and hasattr(train_batches, "set_epoch"):
        train_batches.set_epoch(int(state.get("epoch", 0)))  # the order and augmentations a straight run would use
    if len(train_batches) != batches_per_epoch:
        emit({"event": "warning", "message": (
            f"the training split now gives {len(train_batches)} batches per epoch instead of {batches_per_epoch}; "
            "the learning-rate decay keeps the run's original pace")})

    model = FaceTrackerModel(network, face_only=not config.tutorial_exact, name="facetracker_trainer")
    optimizer = make_optimizer(batches_per_epoch, learning_rate,
                               total_steps=config.epochs * batches_per_epoch if grid else None)
    model.compile(optimizer=optimizer)
    start_epoch = int(state.get("epoch", 0))
    if config.resume:
        _restore_optimizer(model.optimizer, model, run_dir / STATE_DIR)

    config_record = {
        "config": {**asdict(config), "learning_rate": learning_rate, "input_size": input_size},
        "weights_used": weights_used, "device": device, "versions": _versions(),
        "batches_per_epoch": batches_per_epoch, "dataset": dataset.to_dict(),
    }
    _atomic_write_json(run_dir / "config.json", config_record)

    history: list[dict] = list(state.get("history", []))
    recorder = _RunRecorder(
        run_dir=run_dir, network=network, epochs=config.epochs, batches=len(train_batches),
        batch_size=config.batch_size, train_images=len(train_samples), history=history,
        best=(float(state.get("best_val_f1", -1.0)), float(state.get("best_val_iou", -1.0))),
        best_epoch=int(state.get("best_epoch", 0)), val_batches=val_batches,
        patience=DEFAULT_PATIENCE if config.patience is None else config.patience,
        deadline=started + 60 * config.time_limit if config.time_limit else None,
        emit=emit, should_stop=should_stop,
        state_extra={"batches_per_epoch": batches_per_epoch},
    )
    emit({"event": "start", "run_dir": str(run_dir), "device": device, "epochs": config.epochs,
          "batches_per_epoch": len(train_batches), "weights": weights_used, "train_images": len(train_samples),
          "val_images": len(val_samples), "resumed_from_epoch": start_epoch if config.resume else None})

    callbacks: list[keras.callbacks.Callback] = [recorder]
    if importlib.util.find_spec("tensorboard") is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False))
    else:
        emit({"event": "warning", "message": "no TensorBoard logs: the tensorboard package is not installed "
                                             "(pip install tensorboard); history.csv and losses.png are written"})
    stopped = False
    try:
        model.fit(train_batches, validation_data=val_batches, epochs=config.epochs, initial_epoch=start_epoch,
                  callbacks=callbacks, verbose=0)
    except KeyboardInterrupt:
        stopped = True  # the last finished epoch's checkpoint is already on disk
    if recorder.failure is not None:
        kept = (f"the checkpoints of epoch {history[-1]['epoch']} are kept in {run_dir}" if history
                else "no epoch had finished, so no model was saved")
        raise TrainingError(f"{recorder.failure} {kept[0].upper()}{kept[1:]}.")
    stopped = stopped or recorder.stop_requested or (len(history) < config.epochs and recorder.stop_reason is None)
    if stopped:
        stop_reason = "stopped by the user"
    else:
        stop_reason = recorder.stop_reason or f"finished all {config.epochs} epochs"

    best_model, last_model = run_dir / "best.keras", run_dir / "last.keras"
    metrics: dict[str, Any] = {
        "epochs_completed": len(history),
        "best_epoch": recorder.best_epoch or None,
        "best_val_f1": recorder.best[0] if history else None,
        "best_val_iou": recorder.best[1] if history else None,
        "score_threshold": next((row["threshold"] for row in history if row["epoch"] == recorder.best_epoch), None),
        "stop_reason": stop_reason,
        "final_val_iou": history[-1]["val_iou"] if history else None,
        "final": {k: history[-1][k] for k in HISTORY_COLUMNS} if history else None,
        "images_per_second": (recorder.timed_images / recorder.train_seconds) if recorder.train_seconds else None,
        "device": device,
        "seconds": time.perf_counter() - started,
        "stopped": stopped,
    }
    if history:
        plot_losses(history, run_dir / "losses.png")
        test_samples = dataset.splits.get("test") or []
        if test_samples and not stopped:
            from training.evaluate import verdict

            metrics["test"] = _evaluate_test_split(best_model, test_samples)
            metrics["test_classic"] = _evaluate_classic_finder(test_samples)
            metrics["verdict"] = verdict(metrics["test"], metrics["test_classic"])
        else:
            metrics["test"] = None
    metrics["seconds"] = time.perf_counter() - started
    _atomic_write_json(run_dir / "metrics.json", metrics)
    result = RunResult(run_dir=run_dir, best_model=best_model, last_model=last_model, metrics=metrics, stopped=stopped)
    emit({"event": "end", "run_dir": str(run_dir), "best_model": str(best_model), "last_model": str(last_model),
          "metrics": metrics, "stopped": stopped})
    return result


def _evaluate_test_split(model_path: Path, samples: list) -> dict:
    """Detection quality of the best checkpoint on the held-out test pictures, at its stored threshold."""
    from training.evaluate import evaluate_model
    from training.inference import Detector

    return evaluate_model(Detector.from_file(model_path), samples)


def _evaluate_classic_finder(samples: list) -> dict | None:
    """The classic face finder (the app's stand-in) on the same test pictures: the bar to beat."""
    from training.classic import ClassicFaceFinder
    from training.evaluate import evaluate_finder

    try:
        return evaluate_finder(ClassicFaceFinder(), samples)
    except (ImportError, OSError) as exc:  # scikit-image's cascade missing: say nothing rather than fail the run
        return {"error": str(exc)}
