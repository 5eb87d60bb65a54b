"""Train the two-head face detector: the tutorial's loop, made safe to stop, resume and watch.

:class:`FaceTrackerModel` is the tutorial's subclassed model in Keras 3 terms: it wraps the
functional network and overrides ``compute_loss`` (not ``train_step``), so the standard ``fit``
loop, callbacks and any Keras backend work. Only the inner functional network is ever saved, so a
``.keras`` file loads back with ``keras.models.load_model`` and no custom objects.

:func:`train` runs one training job into a run folder (``runs/train``, ``runs/train2``, ...)::

    best.keras  last.keras  history.csv  losses.png  metrics.json  config.json  tensorboard/  train_state/

Checkpoints are written only for finished epochs, and each epoch's files (models, optimizer state,
history) as one unit: a folder renamed into place when complete (see "the run folder" below). So
stopping (the GUI's button, Ctrl-C, SIGTERM, even SIGKILL) or a NaN loss never leaves a half-written,
mixed or poisoned checkpoint behind, and a resume goes on from the newest complete epoch and says so
when it had to pass over a damaged one. One training at a time owns a run folder (``run.lock``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import math
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from training.core.errors import TrainingError
from training.core.events import BATCH, END, EPOCH, START, warning_event
from training.core.files import atomic_path, atomic_write_text
from training.core.inputs import read_json
from training.engine.checkpoints import (
    JSON_TYPE_NAMES,
    KEPT_CHECKPOINTS,  # noqa: F401  (re-exported)
    PUBLISHED_FILES,  # noqa: F401  (re-exported)
    Checkpoint,
    RunFolderLock,
    commit_epoch,
    find_checkpoint,
    history_csv,
    is_whole,
    load_network,
    remove_debris,
    require_new_run_folder,
    require_run_folder,
    restore_optimizer,
    saved_best,
    settle_checkpoints,
)
from training.engine.distribute import (
    make_strategy,
    read_cluster,
    replica_loss_parts,
    step_logs,
    whole_replica_batches,
)
from training.engine.run_folder import (  # noqa: F401  (re-exported)
    BEST_MODEL,
    CHECKPOINT_NAME,
    CONFIG_JSON,
    DAMAGED_SUFFIX,
    HISTORY_COLUMNS,
    HISTORY_CSV,
    HISTORY_CSV_COLUMNS,
    LAST_MODEL,
    LOCK_FILE,
    LOSSES_PNG,
    METRIC_NAMES,
    METRICS_JSON,
    OPTIMIZER_NPZ,
    PARTIAL_SUFFIX,
    STATE_DIR,
    STATE_JSON,
    TENSORBOARD_DIR,
    checkpoint_folders,
    checkpoint_name,
    committed_epoch,  # noqa: F401  (re-exported: training.engine.trainer.committed_epoch)
    holds_run,
    next_run_dir,
    read_json_object,
    resume_checkpoints,
)
from training.engine.settings import TrainConfig  # defined with the settings table; re-exported here
from training.evaluation.metrics import box_iou_tensor
from training.evaluation.validator import measure, predict_network
from training.model.backbones import (
    BACKBONES,
    FINETUNE_EPOCHS,
    MAX_FACES,
    WEIGHT_CHOICES,
    WeightsUnavailableError,
    describe_start,
    finetune_learning_rate,
)
from training.model.build import (
    WEIGHT_NAMES,
    backbone_of,
    build_model,
    cell_maps_model,
    freeze_leading_layers,
    is_grid_model,
    is_multi_face_model,
    model_input_size,
)
from training.model.losses import CLASS_LOSS_WEIGHT, grid_losses, multi_face_losses, total_loss
from training.model.optimizer import make_optimizer

EventCallback = Callable[[dict], None]



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

    def __init__(self, network: keras.Model, face_only: bool = True, backbone: str | None = None, **kwargs):
        super().__init__(**kwargs)
        # A per-cell head trains on its raw score map and every cell's box (same weights, see
        # training.model.build.cell_maps_model), decoded as its backbone's spec says.
        self.grid = is_grid_model(network)
        # A multi-face network trains on every labelled face (batches made with max_faces).
        self.multi_face = is_multi_face_model(network)
        backbone = backbone or backbone_of(network)
        self.reach = BACKBONES[backbone].face_reach
        self.box_loss_size = BACKBONES[backbone].box_loss_size
        self.network = cell_maps_model(network, backbone) if self.grid else network
        self.face_only = face_only
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.class_loss_tracker = keras.metrics.Mean(name="class_loss")
        self.regress_loss_tracker = keras.metrics.Mean(name="regress_loss")
        self.iou_tracker = keras.metrics.Mean(name="iou")

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Tutorial total loss; also updates the four trackers that make up the logs."""
        class_true, box_true = y[0], y[1]  # a multi-face batch adds every face and its mask
        if self.grid:
            score_logits, cell_boxes = y_pred
            grid = int(score_logits.shape[1])
            if self.multi_face:
                class_l, regress_l = multi_face_losses(y[2], y[3], score_logits, cell_boxes, grid, self.reach,
                                                       self.box_loss_size)
            else:
                class_l, regress_l, _ = grid_losses(class_true, box_true, score_logits, cell_boxes, grid)
            total = regress_l + CLASS_LOSS_WEIGHT * class_l
            best = ops.argmax(ops.reshape(score_logits, (-1, grid * grid)), axis=-1)
            box_pred = ops.reshape(ops.take_along_axis(cell_boxes, ops.reshape(best, (-1, 1, 1)), axis=1), (-1, 4))
        else:
            class_pred, box_pred = y_pred
            total, class_l, regress_l = total_loss(class_true, class_pred, box_true, box_pred,
                                                   face_only=self.face_only)
        face = ops.reshape(ops.cast(class_true, "float32"), (-1,))
        # Several devices: this replica's share of the global batch's loss (the mean and the sum differ).
        class_l, regress_l, replicas = replica_loss_parts(class_l, regress_l, ops.shape(face)[0])
        if replicas > 1:
            total = regress_l + CLASS_LOSS_WEIGHT * class_l
        self.total_loss_tracker.update_state(total * replicas if replicas > 1 else total)
        self.class_loss_tracker.update_state(class_l * replicas if replicas > 1 else class_l)
        self.regress_loss_tracker.update_state(regress_l * replicas if replicas > 1 else regress_l)
        # IoU of a no-face picture's box means nothing: weight it 0. With several faces, the best box is
        # measured against the face it overlaps most (it may rightly be another than the largest).
        if self.multi_face:
            iou = ops.max(box_iou_tensor(y[2], box_pred[:, None, :]) * ops.cast(y[3], "float32"), axis=-1)
        else:
            iou = box_iou_tensor(box_true, box_pred)
        self.iou_tracker.update_state(iou, sample_weight=face)
        for extra in self.losses:  # regularisers, if a backbone has any (the same on every replica)
            total = total + ops.cast(ops.sum(extra), "float32") / replicas
        return total

    @property
    def metrics(self):
        # Exactly these four (Keras's own "loss" tracker would only repeat total_loss).
        return [self.total_loss_tracker, self.class_loss_tracker, self.regress_loss_tracker, self.iou_tracker]

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return step_logs(super().compute_metrics(x, y, y_pred, sample_weight=sample_weight))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Under a strategy, build what is left (the optimizer) directly. Keras 3's TensorFlow trainer
        would first average the data's first batch over the replicas, which fails when that batch is split
        unevenly (a batch size, or a validation split, that the device count does not divide)."""
        if self.distribute_strategy.num_replicas_in_sync > 1 and self.network.built:
            with self.distribute_strategy.scope():
                if self.optimizer is not None and not self.optimizer.built:
                    self.optimizer.build(self.trainable_variables)
            self.built = True
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


# ----------------------------------------------------------------------------------------------
# small helpers


def _atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str))


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
    if BACKBONES[config.backbone].grid:
        if config.tutorial_exact:
            raise TrainingError(f"--tutorial-exact is the tutorial's single-box training; the {config.backbone} "
                                "backbone has one box per cell: use it with --backbone vgg16 (or tiny)")
        if config.input_size is not None and config.input_size % 16:
            raise TrainingError(f"input_size of the {config.backbone} backbone must be a multiple of 16, "
                                f"got {config.input_size}")
    if config.patience is not None and (not isinstance(config.patience, int) or config.patience < 0):
        raise TrainingError(f"patience must be a whole number of epochs (0: never stop early), got {config.patience!r}")
    if not isinstance(config.freeze, int) or config.freeze < 0:
        raise TrainingError(f"freeze must be a whole number of layers (0: train them all), got {config.freeze!r}")
    if config.time_limit is not None and not (
        isinstance(config.time_limit, int | float) and math.isfinite(config.time_limit) and config.time_limit > 0
    ):
        raise TrainingError(f"time_limit must be a positive number of minutes, got {config.time_limit!r}")


_SAVED_SETTING_TYPES = {"data": str, "backbone": str, "weights": str, "augment": bool, "tutorial_exact": bool,
                        "seed": int}


def _load_resume_config(config: TrainConfig, run_dir: Path) -> tuple[TrainConfig, dict]:
    """The run's saved settings (``config.json``), checked; they win over the requested ones except
    epochs, data, patience, time limit, strictness and mixed precision."""
    path = run_dir / CONFIG_JSON
    if not path.exists() and not path.is_symlink():
        raise TrainingError(f"{path}: cannot resume: the run's settings file is missing")
    saved = read_json(path, error=lambda p, m: TrainingError(f"{p}: cannot resume: {m}"), what="settings file")
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise TrainingError(f"{path}: cannot resume: not a run's settings file (no \"config\" object in it)")
    known = {f.name for f in fields(TrainConfig)}
    merged = {k: v for k, v in saved["config"].items() if k in known}
    merged.update(
        epochs=config.epochs or merged.get("epochs"), data=config.data or merged.get("data"), resume=str(run_dir),
        out=str(run_dir),
        mixed_precision=config.mixed_precision, strict=config.strict,
        patience=config.patience if config.patience is not None else merged.get("patience"),
        time_limit=config.time_limit, devices=config.devices,
    )
    for name, kind in _SAVED_SETTING_TYPES.items():
        value = merged.get(name)
        if name in merged and not (isinstance(value, kind) and (kind is not int or not isinstance(value, bool))):
            raise TrainingError(f"{path}: cannot resume: {name} must be {JSON_TYPE_NAMES.get(kind, kind.__name__)}, "
                                f"got {value!r}")
    effective = TrainConfig(**merged)
    try:
        _validate(effective)
    except TrainingError as exc:
        raise TrainingError(f"{path}: cannot resume: {exc}") from exc
    return effective, saved


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


#: ``history.csv``'s writer (kept under its old name: the Train tab's tests write a file the trainer's way).
_history_csv = history_csv


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
    with atomic_path(out_png, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=80, format="png")
    return out_png


# ----------------------------------------------------------------------------------------------
# the per-batch / per-epoch recorder


# A model whose face score differs by less than this between all validation pictures answers the same
# whatever it sees (a saturated or dead network): its class accuracy can only be one class's share.
DEAD_SCORE_SPREAD = 1e-6
# A run whose model has been dead like that for this many epochs from its start is stopped as failed.
DEAD_EPOCHS = 3


@dataclass(frozen=True)
class _Plan:
    """What a run's recorder needs to know of the run: its length, pace and stopping rules."""

    epochs: int
    batches: int  # per epoch
    batch_size: int
    train_images: int
    patience: int  # epochs without a better validation figure before stopping (0: never)
    deadline: float | None  # time.perf_counter() value after which no new epoch starts
    learning_rate: float | None = None
    every_face: bool = False  # judged by AP50 over every validation face, else by F1


#: A finished epoch's validation: (figures for its history row, every picture's face score, which have a face),
#: or None when the model's outputs are not finite.
Validation = tuple[dict, np.ndarray, np.ndarray] | None


class _RunRecorder(keras.callbacks.Callback):
    """Emits progress events, polls ``should_stop``, catches NaN and dead models, and stops early.

    Each finished epoch is scored by ``validate`` (:mod:`training.evaluation.validator`, the same
    figures ``evaluate`` gives) and handed to ``save`` (:func:`training.engine.checkpoints.commit_epoch`)
    with ``(rows, best, best_epoch, improved, alive)``; only once saved does it count.
    """

    def __init__(self, plan: _Plan, *, history: list[dict], best: tuple[float, float], best_epoch: int,
                 alive: bool, emit: EventCallback, should_stop: Callable[[], bool] | None,
                 validate: Callable[[], Validation], save: Callable[..., None]):
        super().__init__()
        self.plan = plan
        self.primary = "val_ap50" if plan.every_face else "val_f1"
        self.alive = alive  # some epoch's model told validation pictures apart (see DEAD_SCORE_SPREAD)
        self._dead_answer: tuple[float, float] = (math.nan, math.nan)  # (the one score, class accuracy)
        self.stop_reason: str | None = None
        self.history = history
        self.best = best  # (validation AP50 or F1 (see primary), validation mean IoU) of the best epoch so far
        self.best_epoch = best_epoch
        self.emit = emit
        self.should_stop = should_stop
        self.validate = validate
        self.save = save
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

    def _fail(self, message: str) -> None:
        self.failure = message
        self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._batches_done = 0
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        plan = self.plan
        self._batches_done += 1
        now = time.perf_counter()
        # Throughput leaves out the first batch of the session, which also builds the graph.
        if self._timer_started is None:
            self._timer_started = now
        else:
            self.timed_images += min(plan.batch_size, plan.train_images - (self._batches_done - 1) * plan.batch_size)
            self.train_seconds = now - self._timer_started
        values = {name: float(logs[name]) for name in METRIC_NAMES}
        if not all(math.isfinite(v) for v in values.values()):
            self._fail(
                f"training diverged: the loss became {values['total_loss']} at epoch {self._epoch}, batch "
                f"{self._batches_done} (learning rate {self._lr():.3g}); that epoch was not saved. "
                "Try a lower learning rate."
            )
            return
        self.emit({"event": BATCH, "epoch": self._epoch, "epochs": plan.epochs,
                   "batch": self._batches_done, "batches": plan.batches, **values, "lr": self._lr()})
        if self.should_stop is not None and self.should_stop():
            self.stop_requested = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        plan = self.plan
        if self.failure is not None or self._batches_done < plan.batches:
            return  # a diverged or interrupted epoch is never saved
        logs = logs or {}
        row: dict[str, Any] = {"epoch": epoch + 1}
        for name in (*METRIC_NAMES, *(f"val_{n}" for n in METRIC_NAMES)):
            row[name] = float(logs.get(name, float("nan")))
        if not all(math.isfinite(row[name]) for name in row):
            self._fail(f"training diverged: validation loss became {row['val_total_loss']} at epoch {epoch + 1}; "
                       "that epoch was not saved. Try a lower learning rate.")
            return
        # Detection quality, not loss, decides which epoch is best: a lower loss can come with boxes that
        # land on fewer faces. The loss can also stay finite while the outputs are NaN (the losses clip them).
        validation = self.validate()
        if validation is None:
            self._fail(
                f"training diverged: the model's outputs on the validation pictures became NaN or infinite at epoch "
                f"{epoch + 1} (learning rate {self._lr():.3g}); that epoch was not saved. Try a lower learning rate."
            )
            return
        figures, scores, has_face = validation
        spread = float(scores.max() - scores.min())
        if spread <= DEAD_SCORE_SPREAD:
            self._dead_answer = (float(scores[0]), float(np.mean(has_face == (scores[0] >= 0.5))))
        row.update(figures)
        row["lr"] = self._lr()
        row["seconds"] = time.perf_counter() - self._epoch_started
        score = (row[self.primary], row["val_iou"])
        improved = score > self.best
        best, best_epoch = (score, epoch + 1) if improved else (self.best, self.best_epoch)
        alive = self.alive or spread > DEAD_SCORE_SPREAD
        try:
            self.save([*self.history, row], best, best_epoch, improved, alive)
        except OSError as exc:  # a full disk, say: the previous epoch's checkpoint is still whole
            self._fail(f"could not save the checkpoint of epoch {epoch + 1} ({exc}); that epoch was not saved.")
            return
        # Only once the epoch is on disk does it count, so memory never claims more than the folder holds.
        self.history.append(row)
        self.best, self.best_epoch, self.alive = best, best_epoch, alive
        self.emit({"event": EPOCH, "epochs": plan.epochs, **row})
        self._maybe_stop(epoch + 1)

    def _maybe_stop(self, done: int) -> None:
        """Stop a dead model (as failed), a run whose validation stopped improving, or one past its time."""
        plan = self.plan
        if done >= plan.epochs:
            return
        if not self.alive and done >= DEAD_EPOCHS:
            self._fail(self.dead_model_message())
        elif plan.patience and done - self.best_epoch >= plan.patience:
            measure = "AP50" if plan.every_face else "F1"
            self.stop_reason = (f"early stopping: validation {measure} did not improve for {plan.patience} epochs "
                                f"(best epoch {self.best_epoch})")
            self.model.stop_training = True
        elif plan.deadline is not None and time.perf_counter() >= plan.deadline:
            self.stop_reason = f"time limit reached after epoch {done}"
            self.model.stop_training = True

    def dead_model_message(self) -> str:
        """Why a run whose model answers the same for every picture is a failure, and what to try."""
        score, accuracy = self._dead_answer
        rate = f" (this run's: {self.plan.learning_rate:g})" if self.plan.learning_rate else ""
        return (
            f"the model is not learning: after {len(self.history)} epoch{'s' if len(self.history) != 1 else ''} it "
            f"gives every validation picture the same face score ({score:.3g}), so its class accuracy "
            f"({accuracy:.2f}) is only the share of {'face' if score >= 0.5 else 'no-face'} pictures. A learning rate "
            f"far too high{rate} usually does this: try the default, or a lower one."
        )


# ----------------------------------------------------------------------------------------------
# train()


def train(
    config: TrainConfig,
    on_event: EventCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Train a detector as ``config`` says; see the module docstring for what lands in the run folder.

    The run folder is this process's alone while it trains (:class:`RunFolderLock`). The steps, in
    order, are :class:`_Training`'s methods.

    Raises:
        TrainingError: a bad setting, a run folder in use by another training, a run that cannot be
            resumed, a loss or output that became NaN/inf, or a model that learned nothing.
        training.data.dataset.DataError: the dataset cannot be used (a missing split, an unreadable file...).
    """
    with RunFolderLock() as lock:  # released, and run.lock removed, however the run ends
        training = _Training(config, on_event, should_stop)
        try:
            return training.run(lock)
        finally:
            if training.worker_folder is not None:
                shutil.rmtree(training.worker_folder, ignore_errors=True)


class _Training:
    """One run of :func:`train`, step by step, in the manner of Ultralytics' trainer: set up the run
    folder (new or resumed), build the data, build the network, its batches and its optimizer, fit,
    then the final evaluation and report. Each step is one method; the attributes are what the
    steps hand on to the next."""

    def __init__(self, config: TrainConfig, on_event: EventCallback | None,
                 should_stop: Callable[[], bool] | None) -> None:
        self.started = time.perf_counter()
        self.requested = self.config = config
        self.on_event = on_event
        self.should_stop = should_stop
        self.run_dir = Path()
        self.saved_config: dict = {}  # the resumed run's config.json
        self.state: dict = {}  # the resumed checkpoint's state.json
        self.checkpoint: Checkpoint | None = None
        self.strategy: Any = None  # a tf.distribute strategy on several devices (training.engine.distribute), else None
        self.worker_folder: Path | None = None  # a non-chief worker's temporary run folder, removed at the end
        self.start_model: Any = None  # --from: the model a fine-tune starts from (training.engine.finetune.StartModel)

    def emit(self, event: dict) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def run(self, lock: RunFolderLock) -> RunResult:
        """Every step in order; takes ``lock`` on the run folder as soon as the folder is known."""
        self.set_up(lock)
        self.build_data()
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            self.build_network()  # under a strategy, the variables live on every device
            self.freeze_layers()
            self.build_batches()
            self.build_optimizer()
        self.write_config()
        stopped = self.fit()
        stopped, stop_reason = self.settle(stopped)
        return self.report(stopped, stop_reason)

    # -- 1. set up: the run folder, new or resumed ---------------------------------------------------
    def set_up(self, lock: RunFolderLock) -> None:
        """Check the settings, take the run folder, and for a resume read its checkpoint and settings."""
        if self.config.from_model and not self.config.resume:
            self._start_from_model()  # before anything is touched: a bad --from names the file and why
        _validate(self.config)
        cluster = read_cluster()
        if cluster is not None and self.config.time_limit:
            raise TrainingError("--time-limit with TF_CONFIG: each worker would time itself, and workers that stop "
                                "after different epochs leave the others waiting; leave it out (or use --epochs)")
        if cluster is not None and not cluster.is_chief:
            self._open_worker()  # only the chief writes (and locks) the run folder
        elif self.config.resume:
            self._open_resumed(lock)
        else:
            self._open_new(lock)
        if self.config.from_model and self.start_model is None:  # a resumed fine-tune: compared at the end
            try:
                self._start_from_model(resumed=True)
            except TrainingError as exc:
                self.emit(warning_event(f"{exc}; the new model will not be compared with it"))
        config = self.config = replace(self.config, epochs=self.config.epochs or (
            FINETUNE_EPOCHS if self.config.from_model else BACKBONES[self.config.backbone].epochs))
        if config.resume:
            for message in _resume_warnings(self.requested, config):
                self.emit(warning_event(message))
            if self.state["epoch"] >= config.epochs:
                raise TrainingError(
                    f"{config.resume}: already trained {self.state['epoch']} epochs; ask for more than that to "
                    f"resume (epochs counts the total, e.g. {self.state['epoch'] + 5})"
                )

    def _start_from_model(self, resumed: bool = False) -> None:
        """``--from``: read the model a fine-tune starts from (training.engine.finetune); a new run takes its backbone
        and input size, and says which requested settings it cannot honour."""
        from training.engine.finetune import finetune_config, inspect_start_model

        self.start_model = inspect_start_model(self.config.from_model)
        if not resumed:
            self.config, notes = finetune_config(self.config, self.start_model)
            for note in notes:
                self.emit(warning_event(note))

    def _open_resumed(self, lock: RunFolderLock) -> None:
        run_dir = self.run_dir = Path(self.config.resume)
        require_run_folder(run_dir)  # an ordinary folder is refused before anything in it is touched
        note = lock.acquire(run_dir)
        if note:
            self.emit(warning_event(note))
        self.checkpoint = find_checkpoint(run_dir, self.emit)
        self.config, self.saved_config = _load_resume_config(self.config, run_dir)
        self.state = self.checkpoint.state

    def _open_new(self, lock: RunFolderLock) -> None:
        if self.config.out:
            run_dir = Path(self.config.out)
            require_new_run_folder(run_dir)  # a folder of someone's own files is refused, untouched
            made = not run_dir.exists()
            run_dir.mkdir(parents=True, exist_ok=True)
        else:
            run_dir, made = next_run_dir(), True
        self.run_dir = run_dir
        note = lock.acquire(run_dir, remove_folder=made)
        if note:
            self.emit(warning_event(note))
        if holds_run(run_dir):
            raise TrainingError(f"{run_dir}: already holds a training run; resume it or choose another folder")
        remove_debris(run_dir)

    def _open_worker(self) -> None:
        """A non-chief worker of a multi-worker cluster (``TF_CONFIG``): it trains in step with the chief
        but writes into a temporary folder, removed when it ends (the Keras multi-worker pattern), and
        takes no lock. Resuming, it reads the run's checkpoint from ``--resume`` (the chief's folder, on
        a disk every worker sees)."""
        if self.config.resume:
            run_dir = Path(self.config.resume)
            if not run_dir.is_dir():
                raise TrainingError(f"{run_dir}: cannot resume: no such run folder (every worker must see the "
                                    "chief's run folder at this path)")
            self.checkpoint = find_checkpoint(run_dir, self.emit)
            self.config, self.saved_config = _load_resume_config(self.config, run_dir)
            self.state = self.checkpoint.state
        self.run_dir = self.worker_folder = Path(tempfile.mkdtemp(prefix="facetracker-worker-"))

    # -- 2. the data ---------------------------------------------------------------------------------
    def build_data(self) -> None:
        """Pick the device, read and check the dataset, and pass on what it skipped."""
        from training.core.device import configure_device
        from training.data.dataset import grouped_problem_lines, load_dataset

        self.device = configure_device(mixed_precision=self.config.mixed_precision)
        self.strategy, devices_note = make_strategy(self.config.devices, batch_size=self.config.batch_size,
                                                    emit=self.emit)  # before TensorFlow's first computation
        if self.strategy is not None:
            self.device = f"{self.device}; {devices_note}"
        dataset = self.dataset = load_dataset(self.config.data, strict=self.config.strict)
        self.train_samples = dataset.require_split("train")
        self.val_samples = dataset.require_split("val")
        dataset.require_trainable()  # a face in some pictures and none in others, or nothing to learn
        for line in grouped_problem_lines(dataset.problems):  # many alike: one line
            self.emit(warning_event(f"skipped {line}"))
        # A single-face model trains on the largest face of a picture with several: each such picture is
        # named (a multi-face model learns every face, so for it they are no warning).
        several = [str(note) for note in dataset.several_faces_notes()]
        multi_face = BACKBONES[self.config.backbone].multi_face
        for warning in dataset.warnings:
            if str(warning) not in several:
                self.emit(warning_event(f"warning: {warning}"))
        if not multi_face:
            for note in several:
                self.emit(warning_event(f"warning: {note}"))
        if self.start_model is not None:
            from training.engine.finetune import dataset_notes

            for note in dataset_notes(dataset):  # kept frames nobody reviewed yet
                self.emit(warning_event(f"warning: {note}"))

    # -- 3. the network, its batches and its optimizer -----------------------------------------------
    def build_network(self) -> None:
        """The checkpoint's network when resuming, else a new one (pretrained as asked, or from scratch)."""
        config = self.config
        keras.utils.set_random_seed(config.seed)
        spec = BACKBONES[config.backbone]
        self.learning_rate = float(config.learning_rate or (finetune_learning_rate(config.backbone) if config.from_model
                                                            else spec.learning_rate))
        if self.checkpoint is None and self.start_model is not None:  # a fine-tune: the user's model, as it is
            from training.engine.finetune import load_start_network

            self.network = load_start_network(self.start_model)
            self.weights_used = "model"
            self.input_size = model_input_size(self.network)
            self.batches_per_epoch = math.ceil(len(self.train_samples) / config.batch_size)
            return
        if self.checkpoint is not None:
            self.network = load_network(self.checkpoint)
            self.weights_used = self.saved_config.get("weights_used", "none")
            self.input_size = model_input_size(self.network)
            self.batches_per_epoch = int(self.state.get("batches_per_epoch")
                                         or math.ceil(len(self.train_samples) / config.batch_size))
            return
        self.input_size = int(config.input_size or spec.default_input_size)
        pretrained = spec.pretrained if config.weights == "auto" else None if config.weights == "none" else config.weights
        self.weights_used = pretrained or "none"
        try:
            self.network = build_model(config.backbone, self.input_size, weights=pretrained)
        except WeightsUnavailableError as exc:
            if config.weights != "auto":
                raise TrainingError(str(exc)) from exc
            self.emit(warning_event(f"{exc}; training {config.backbone} from scratch instead"))
            self.weights_used = "none"
            self.network = build_model(config.backbone, self.input_size, weights=None)
        self.batches_per_epoch = math.ceil(len(self.train_samples) / config.batch_size)

    def freeze_layers(self) -> None:
        """Keep the pretrained start's first layers as they are (``--freeze``; a resumed run keeps its own)."""
        if self.weights_used == "none":
            self.frozen = 0
            return
        self.frozen = freeze_leading_layers(self.network, self.config.freeze)

    @property
    def started_from(self) -> str:
        """What the run's network started from, in words (a resumed run: what its first part started from)."""
        if self.saved_config.get("started_from"):
            return self.saved_config["started_from"]
        if self.start_model is not None:
            return self.start_model.describe()
        return describe_start(self.config.backbone, self.weights_used)

    def build_batches(self) -> None:
        """The training and validation batches; a resume goes on with the order a straight run would use."""
        from training.data.augment import make_batches

        config = self.config
        self.grid = is_grid_model(self.network)
        self.multi_face = is_multi_face_model(self.network)
        # A multi-face model's batches carry every face (up to MAX_FACES, the largest) and their mask.
        faces = {"max_faces": MAX_FACES} if self.multi_face else {}
        self.train_batches = make_batches(self.train_samples, input_size=self.input_size,
                                          batch_size=config.batch_size, augment=config.augment, shuffle=True,
                                          seed=config.seed, jitter=self.grid, cache=config.cache, **faces)
        self.val_batches = make_batches(self.val_samples, input_size=self.input_size, batch_size=config.batch_size,
                                        **faces)
        if config.resume and hasattr(self.train_batches, "set_epoch"):
            self.train_batches.set_epoch(int(self.state.get("epoch", 0)))
        if len(self.train_batches) != self.batches_per_epoch:
            self.emit(warning_event(
                f"the training split now gives {len(self.train_batches)} batches per epoch instead of "
                f"{self.batches_per_epoch}; the learning-rate decay keeps the run's original pace"))

    def build_optimizer(self) -> None:
        """The trainable model and its optimizer, with Adam's saved state put back when resuming."""
        config = self.config
        planned = self.saved_config.get("config", {}).get("epochs")
        stretched = self.checkpoint is not None and self.grid and is_whole(planned) and planned != config.epochs
        self.stretched_from = planned if stretched else None  # the resumed run's planned length, when it changed
        self.model = FaceTrackerModel(self.network, face_only=not config.tutorial_exact, backbone=config.backbone,
                                      name="facetracker_trainer")
        optimizer = make_optimizer(self.batches_per_epoch, self.learning_rate,
                                   total_steps=config.epochs * self.batches_per_epoch if self.grid else None)
        self.model.compile(optimizer=optimizer)
        self.start_epoch = int(self.state.get("epoch", 0))
        if self.checkpoint is not None:
            restore_optimizer(self.model.optimizer, self.model, self.checkpoint)

    def write_config(self) -> None:
        """``config.json``: the settings as run (defaults filled in), the device, versions and dataset."""
        config_record = {
            "config": {**asdict(self.config), "learning_rate": self.learning_rate, "input_size": self.input_size},
            "weights_used": self.weights_used, "started_from": self.started_from, "frozen_layers": self.frozen,
            "device": self.device, "versions": _versions(),
            "batches_per_epoch": self.batches_per_epoch, "dataset": self.dataset.to_dict(),
        }
        if self.start_model is not None:  # a fine-tune: the very file it started from
            config_record["start_model"] = self.saved_config.get("start_model") or self.start_model.record()
        _atomic_write_json(self.run_dir / CONFIG_JSON, config_record)

    # -- 4. fit --------------------------------------------------------------------------------------
    def fit(self) -> bool:
        """Train epoch after epoch (each checkpointed by :class:`_RunRecorder`); True when Ctrl-C ended it."""
        config, state = self.config, self.state
        replicas = self.strategy.num_replicas_in_sync if self.strategy is not None else 1
        self.train_batches = whole_replica_batches(self.train_batches, replicas)  # no replica gets an empty batch
        self.history: list[dict] = list(state.get("history", []))
        plan = _Plan(epochs=config.epochs, batches=len(self.train_batches), batch_size=config.batch_size,
                     train_images=len(self.train_samples),
                     patience=BACKBONES[config.backbone].patience if config.patience is None else config.patience,
                     deadline=self.started + 60 * config.time_limit if config.time_limit else None,
                     learning_rate=self.learning_rate, every_face=self.multi_face)
        self.recorder = _RunRecorder(
            plan, history=self.history, best=saved_best(state, self.multi_face),
            best_epoch=int(state.get("best_epoch", 0)),
            alive=bool(state.get("alive", True)) if config.resume else False,
            emit=self.emit, should_stop=self.should_stop, validate=self.validate_epoch, save=self.save_epoch,
        )
        self.emit({"event": START, "run_dir": str(self.run_dir), "device": self.device, "epochs": config.epochs,
                   "batches_per_epoch": len(self.train_batches), "weights": self.weights_used,
                   "started_from": self.started_from, "train_images": len(self.train_samples), "val_images": len(self.val_samples),
                   "resumed_from_epoch": self.start_epoch if config.resume else None})
        if self.stretched_from is not None:
            self.emit(warning_event(
                f"the learning-rate schedule (a cosine over the run's length) stretches from {self.stretched_from} to "
                f"{config.epochs} epochs: the rate goes on from a new curve, so this run will differ from a straight "
                f"{config.epochs}-epoch run"))
        callbacks: list[keras.callbacks.Callback] = [self.recorder]
        if importlib.util.find_spec("tensorboard") is not None:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(self.run_dir / TENSORBOARD_DIR),
                                                         write_graph=False))
        else:
            self.emit(warning_event("no TensorBoard logs: the tensorboard package is not installed "
                                    "(pip install tensorboard); history.csv and losses.png are written"))
        try:
            self.model.fit(self.train_batches, validation_data=whole_replica_batches(self.val_batches, replicas),
                           epochs=config.epochs,
                           initial_epoch=self.start_epoch, callbacks=callbacks, verbose=0, shuffle=False)
        except KeyboardInterrupt:
            return True  # the last complete checkpoint is on disk; one cut short is dropped by settle()
        return False

    def validate_epoch(self) -> Validation:
        """The validation pictures measured as ``evaluate`` measures a model (:mod:`training.evaluation.validator`),
        at the threshold with the best F1, which the model stores: ``val_f1``, ``threshold`` and for every face
        ``val_ap50``; with every picture's face score and which pictures have a face (for the dead-model guard)."""
        passed = predict_network(self.network, self.val_batches, self.multi_face)
        if passed is None:
            return None
        predictions, scores = passed
        result = measure(predictions)
        figures = {"val_f1": result.f1, "val_ap50": result.ap} if self.multi_face else {"val_f1": result.f1}
        figures["threshold"] = result.threshold
        return figures, scores, predictions.matches().faces_per_picture > 0

    def save_epoch(self, rows: list[dict], best: tuple[float, float], best_epoch: int, improved: bool,
                   alive: bool) -> None:
        """A finished epoch's checkpoint, written as one unit and published (:func:`commit_epoch`)."""
        commit_epoch(self.run_dir, self.network, self.model.optimizer, rows, best=best, best_epoch=best_epoch,
                     improved=improved, alive=alive, extra={"batches_per_epoch": self.batches_per_epoch},
                     every_face=self.multi_face)

    def settle(self, interrupted: bool) -> tuple[bool, str]:
        """Make the folder and the history agree with the newest complete checkpoint; raise when the run
        failed; returns whether it was stopped and why it ended."""
        recorder, history = self.recorder, self.history
        settled = settle_checkpoints(self.run_dir)
        if settled is not None and len(settled.get("history", [])) > len(history):  # stopped right after a commit
            history[:] = settled["history"]
            recorder.best = saved_best(settled, self.multi_face)
            recorder.best_epoch, recorder.alive = int(settled["best_epoch"]), bool(settled.get("alive", True))
        if recorder.failure is None and history and not recorder.alive and not (interrupted or recorder.stop_requested):
            recorder.failure = recorder.dead_model_message()
        if recorder.failure is not None:
            kept = (f"the checkpoints of epoch {history[-1]['epoch']} are kept in {self.run_dir}" if history
                    else "no epoch had finished, so no model was saved")
            raise TrainingError(f"{recorder.failure} {kept[0].upper()}{kept[1:]}.")
        stopped = interrupted or recorder.stop_requested or (
            len(history) < self.config.epochs and recorder.stop_reason is None)
        if stopped:
            return True, "stopped by the user"
        return False, recorder.stop_reason or f"finished all {self.config.epochs} epochs"

    # -- 5. final evaluation and report --------------------------------------------------------------
    def report(self, stopped: bool, stop_reason: str) -> RunResult:
        """``metrics.json`` and ``losses.png``; for a finished run, the test split measured (best model and
        classic finder) and drawn; then the ``end`` event."""
        run_dir, history, recorder = self.run_dir, self.history, self.recorder
        best_model, last_model = run_dir / BEST_MODEL, run_dir / LAST_MODEL
        best_row = next((row for row in history if row["epoch"] == recorder.best_epoch), None)
        metrics: dict[str, Any] = {
            "epochs_completed": len(history),
            "best_epoch": recorder.best_epoch or None,
            "best_val_f1": (best_row["val_f1"] if self.multi_face and best_row else recorder.best[0]) if history
            else None,
            "best_val_iou": recorder.best[1] if history else None,
            "score_threshold": next((row["threshold"] for row in history if row["epoch"] == recorder.best_epoch),
                                    None),
            "stop_reason": stop_reason,
            "final_val_iou": history[-1]["val_iou"] if history else None,
            "final": {k: history[-1][k] for k in HISTORY_CSV_COLUMNS if k in history[-1]} if history else None,
            "images_per_second": (recorder.timed_images / recorder.train_seconds) if recorder.train_seconds else None,
            "device": self.device,
            "seconds": time.perf_counter() - self.started,
            "stopped": stopped,
        }
        if self.multi_face:  # judged by AP50 over every face (best_val_f1: F1 over faces at its threshold)
            metrics["best_val_ap50"] = recorder.best[0] if history else None
        if history:
            plot_losses(history, run_dir / LOSSES_PNG)
            test_samples = self.dataset.splits.get("test") or []
            if test_samples and not stopped and self.worker_folder is None:  # a worker's folder is thrown away
                metrics.update(self._test(best_model, test_samples))
            else:
                metrics["test"] = None
        metrics["seconds"] = time.perf_counter() - self.started
        _atomic_write_json(run_dir / METRICS_JSON, metrics)
        result = RunResult(run_dir=run_dir, best_model=best_model, last_model=last_model, metrics=metrics,
                           stopped=stopped)
        self.emit({"event": END, "run_dir": str(run_dir), "best_model": str(best_model),
                   "last_model": str(last_model), "metrics": metrics, "stopped": stopped})
        return result

    def _test(self, best_model: Path, test_samples: list) -> dict[str, Any]:
        """The best model and the classic finder on the test pictures, the verdict, and the result pictures."""
        from training.evaluation.evaluate import verdict
        from training.evaluation.report import (
            write_run_pictures,  # test_predictions.jpg, pr_curve.png; never raises
        )

        classic = self.start_model is None  # a fine-tune is compared with the model it started from instead
        figures: dict[str, Any] = {"test": _evaluate_test_split(best_model, test_samples),
                                   "test_classic": _evaluate_classic_finder(test_samples, self.multi_face)
                                   if classic else None}
        figures["real_photos"], figures["real_photos_classic"] = _evaluate_real_photos(best_model, classic)
        figures["verdict"] = verdict(figures["test"], figures["test_classic"], figures["real_photos"],
                                     figures["real_photos_classic"],
                                     pretrained_start=self.weights_used == "face" and self.config.backbone == "blazeface")
        if self.start_model is not None:  # a fine-tune: the new model beside the one it started from
            from training.engine.finetune import compare, finetune_verdict

            figures["finetune"] = compare(self.start_model.path, best_model, self.dataset, new_test=figures["test"],
                                          new_real=figures["real_photos"])
            figures["verdict"] = finetune_verdict(figures["finetune"])
        write_run_pictures(best_model, test_samples, self.run_dir, lambda m: self.emit(warning_event(m)))
        return figures


def _evaluate_test_split(model_path: Path, samples: list) -> dict:
    """Detection quality of the best checkpoint on the held-out test pictures, at its stored threshold."""
    from training.evaluation.evaluate import evaluate_model
    from training.inference.detector import Detector

    return evaluate_model(Detector.from_file(model_path), samples)


def _evaluate_real_photos(model_path: Path, classic: bool = True) -> tuple[dict | None, dict | None]:
    """The best model and the classic finder on real photographs that no training set uses
    (training.evaluation.realphotos): what the test split cannot tell, whether the model learned faces or the look
    of its training pictures. (None, None) when no such photo can be read."""
    from training.evaluation.realphotos import measure_detector
    from training.inference.classic import ClassicFaceFinder
    from training.inference.detector import Detector

    try:
        model = measure_detector(Detector.from_file(model_path))
    except (OSError, ValueError) as exc:  # a photo that cannot be read must never fail a finished run
        return {"error": f"{type(exc).__name__}: {exc}"}, None
    try:
        finder = measure_detector(ClassicFaceFinder()) if model and classic else None
    except (ImportError, OSError):
        finder = None
    return model, finder


def _evaluate_classic_finder(samples: list, every_face: bool = False) -> dict | None:
    """The classic face finder (the app's stand-in) on the same test pictures: the bar to beat
    (``every_face``: all the faces it finds, measured as a multi-face model is, by AP50)."""
    from training.evaluation.evaluate import evaluate_finder
    from training.inference.classic import ClassicFaceFinder

    try:
        return evaluate_finder(ClassicFaceFinder(), samples, every_face=every_face)
    except (ImportError, OSError) as exc:  # scikit-image's cascade missing: say nothing rather than fail the run
        return {"error": str(exc)}
