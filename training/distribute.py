"""Training on several devices (``--devices all|N``) or several machines (``TF_CONFIG``).

:func:`make_strategy` turns the ``devices`` setting into a ``tf.distribute`` strategy, or into none
for one device (the plain path, unchanged). Under a strategy the *global* batch (``--batch-size``)
is split between the replicas, each computes its gradients, and the gradients are summed over the
replicas (Keras' TensorFlow optimizer all-reduces with SUM). So each replica's loss must be its
share of the loss one device would compute on the whole batch: :func:`replica_loss_parts` gives
that share for the tutorial's two kinds of loss, a sum over the batch (the localization loss) and
a mean over it (the classification loss).

Plain Python at import (TensorFlow is imported inside the functions), so the settings table can
use :func:`devices_argument` without loading TensorFlow.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from dataclasses import dataclass
from typing import Any

from training.errors import TrainingError

ALL_DEVICES = "all"
TF_CONFIG = "TF_CONFIG"


def parse_devices(text: str | int) -> str | int:
    """``"all"`` or a whole number of at least 1 (as an int), from a ``--devices`` value; ValueError otherwise."""
    value = str(text).strip().lower()
    if value == ALL_DEVICES:
        return ALL_DEVICES
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"devices must be 'all' or a whole number of at least 1, got {text!r}") from None
    if count < 1:
        raise ValueError(f"devices must be 'all' or a whole number of at least 1, got {text!r}")
    return count


def devices_argument(text: str) -> str:
    """argparse type for ``--devices``: the value checked and written the one way (``"all"``, ``"2"``)."""
    try:
        return str(parse_devices(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker cluster, as ``TF_CONFIG`` describes it."""

    workers: int  # machines (processes) that train together, the chief included
    task_type: str  # "chief" or "worker"
    task_index: int
    has_chief_task: bool = False  # the cluster names a "chief" apart from its workers

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run folder: the ``chief`` task, else worker 0 (TensorFlow's rule)."""
        return self.task_type == "chief" or (self.task_index == 0 and not self.has_chief_task)


def read_cluster(environ: dict[str, str] | None = None) -> Cluster | None:
    """The cluster ``TF_CONFIG`` names, or None when it is unset or names a single worker.

    Plain JSON reading (no TensorFlow), so the trainer knows before TensorFlow starts whether this
    process is the chief, the one that owns the run folder.
    """
    text = (os.environ if environ is None else environ).get(TF_CONFIG, "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise TrainingError(f"{TF_CONFIG} is not valid JSON ({exc}); see the README's 'Several GPUs or machines'"
                            ) from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise TrainingError(f"{TF_CONFIG} needs a \"cluster\" object (\"worker\": [\"host:port\", ...]) and a \"task\" "
                            f"object ({{\"type\": \"worker\", \"index\": 0}}), got {text!r}")
    members = {name: cluster.get(name) or [] for name in ("chief", "worker")}
    if not all(isinstance(v, list) for v in members.values()) or set(cluster) - {"chief", "worker"}:
        raise TrainingError(f"{TF_CONFIG}: the cluster may list only \"chief\" and \"worker\" addresses, got {cluster!r}")
    workers = len(members["chief"]) + len(members["worker"])
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in ("chief", "worker") or not isinstance(task_index, int) or not (
            0 <= task_index < len(members[task_type])):
        raise TrainingError(f"{TF_CONFIG}: task {task!r} is not one of the cluster's members {members!r}")
    if workers < 2:
        return None
    return Cluster(workers=workers, task_type=task_type, task_index=task_index, has_chief_task=bool(members["chief"]))


def make_strategy(devices: str | int = "1") -> tuple[Any | None, str]:
    """The ``tf.distribute`` strategy for ``devices`` and a line saying what it trains on.

    * one device (``1``, or ``all`` where there is one): ``None``, the plain single-device path;
    * several GPUs: ``MirroredStrategy`` over the first N (``all``: every one);
    * no GPU and N > 1: the CPU split into N logical devices under ``MirroredStrategy`` (to try the
      path; it is not faster, the devices share the same cores). TensorFlow allows the split only
      before it has set up its devices in this process, so call this first;
    * ``TF_CONFIG`` naming several workers: ``MultiWorkerMirroredStrategy``, each worker on its own
      first N GPUs (``all``: every one) or its CPU.

    Raises TrainingError for a bad value, N above the GPUs present, or a split asked too late.
    """
    try:
        count = parse_devices(devices)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    cluster = read_cluster()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        used = len(gpus) if count == ALL_DEVICES else count
        if used > len(gpus):
            raise TrainingError(f"--devices {count}: this machine has {len(gpus)} GPU{'s' if len(gpus) > 1 else ''} "
                                f"({', '.join(g.name for g in gpus)}); use --devices all or at most {len(gpus)}")
    else:
        used = 1 if count == ALL_DEVICES else count

    if cluster is not None:
        if not gpus and used > 1:
            raise TrainingError(f"--devices {count} with {TF_CONFIG}: splitting the CPU is for trying several devices "
                                "on one machine; each worker of a cluster trains on its whole CPU: use --devices 1")
        if gpus and used < len(gpus):
            _show_only(tf, gpus[:used])
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        where = f"{used} GPU{'s' if used > 1 else ''}" if gpus else "its CPU"
        role = "the chief" if cluster.is_chief else f"{cluster.task_type} {cluster.task_index}"
        return strategy, (f"{cluster.workers} workers (MultiWorkerMirroredStrategy from {TF_CONFIG}), each on {where}: "
                          f"{strategy.num_replicas_in_sync} replicas in all; this process is {role}")
    if used == 1:
        if count == ALL_DEVICES and not gpus:
            return None, "one device (--devices all found no GPU: the CPU)"
        return None, "one device"
    if gpus:
        names = [f"/gpu:{i}" for i in range(used)]
        return tf.distribute.MirroredStrategy(devices=names), f"{used} GPUs (MirroredStrategy)"
    _split_cpu(tf, used)
    names = [f"/cpu:{i}" for i in range(used)]
    strategy = tf.distribute.MirroredStrategy(devices=names, cross_device_ops=tf.distribute.ReductionToOneDevice())
    return strategy, (f"the CPU split into {used} logical devices (MirroredStrategy; no GPU found: this shows the "
                      "several-device path, it is not faster)")


def _show_only(tf: Any, gpus: list) -> None:
    """Make only ``gpus`` visible to TensorFlow (possible only before it sets its devices up)."""
    try:
        tf.config.set_visible_devices(gpus, "GPU")
    except RuntimeError as exc:
        raise TrainingError(f"cannot limit training to {len(gpus)} GPUs: TensorFlow has already set up its devices "
                            f"in this process ({exc}); set CUDA_VISIBLE_DEVICES instead") from None


def _split_cpu(tf: Any, count: int) -> None:
    """Split the first CPU into ``count`` logical devices, or say why it cannot be done now."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return  # this process already split it so (a second run in the same process)
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        raise TrainingError(
            f"--devices {count}: cannot split the CPU into {count} logical devices: TensorFlow has already set up "
            f"its devices in this process ({have} CPU device{'s' if have != 1 else ''}). The split must come before "
            "TensorFlow's first computation: run the training in a fresh process (the command line and the Train "
            "tab do)") from None


def replica_loss_parts(class_loss: Any, regress_loss: Any, batch_size: Any) -> tuple[Any, Any, int]:
    """This replica's shares of the global batch's losses: ``(class_part, regress_part, replicas)``.

    ``class_loss`` is a mean over this replica's pictures, ``regress_loss`` a sum over them (the
    tutorial's losses). The gradients of the replicas are summed, so the parts must add up, over
    the replicas, to what one device computes on the whole batch: the sum as it is, and the mean
    weighted by this replica's share of the pictures, ``n_replica / n_global`` (exact for an uneven
    last batch too; a replica given no picture adds nothing). Keras' own ``1 / replicas`` scaling
    is right only for means: it would halve the localization loss on two devices.

    Outside a multi-replica step (one device, or Keras building the model) returns the losses as
    they are and ``replicas`` 1. Multiply a part by ``replicas`` for the value to log: the loss
    trackers average their replicas, which gives the global batch's loss.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return class_loss, regress_loss, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if replicas == 1:
        return class_loss, regress_loss, 1
    local = tf.cast(batch_size, tf.float32)
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, local)
    share = tf.math.divide_no_nan(local, total)
    class_part = tf.where(local > 0, tf.cast(class_loss, tf.float32), 0.0) * share  # an empty mean is NaN
    regress_part = tf.where(local > 0, tf.cast(regress_loss, tf.float32), 0.0)
    return class_part, regress_part, replicas


def whole_replica_batches(batches: Any, replicas: int) -> Any:
    """``batches`` for ``fit`` under a strategy of ``replicas``: a last batch with fewer pictures than
    replicas is left out (a shorter last batch is kept, split unevenly).

    TensorFlow would hand some replica an empty batch, which the network cannot run on (a shape
    error inside the step); leaving out those few pictures for the epoch is the usual
    ``drop_remainder`` remedy, done only where it is needed. Anything that is not an indexable
    ``keras.utils.PyDataset`` (with ``len``) is returned as it is.
    """
    import keras

    if replicas <= 1 or not isinstance(batches, keras.utils.PyDataset) or len(batches) == 0:
        return batches
    last = batches[len(batches) - 1]
    if len(last[0]) >= replicas:
        return batches
    return _leave_out_last_class()(batches)


@functools.cache
def _leave_out_last_class() -> type:
    import keras

    class LeaveOutLast(keras.utils.PyDataset):
        """A PyDataset without its last batch; the rest (and epoch hooks) are the wrapped one's."""

        def __init__(self, inner: Any) -> None:
            super().__init__(workers=inner.workers, use_multiprocessing=inner.use_multiprocessing,
                             max_queue_size=inner.max_queue_size)
            self.inner = inner

        def __len__(self) -> int:
            return len(self.inner) - 1

        def __getitem__(self, index: int) -> Any:
            if not 0 <= index < len(self):
                raise IndexError(f"batch {index} out of range ({len(self)} batches)")
            return self.inner[index]

        def on_epoch_begin(self) -> None:
            self.inner.on_epoch_begin()

        def on_epoch_end(self) -> None:
            self.inner.on_epoch_end()

    return LeaveOutLast


def step_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """A training or evaluation step's logs, shaped so Keras can average them over the workers.

    Keras 3's TensorFlow trainer reduces each log of a multi-worker step with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails on the scalars every metric gives
    ("Invalid reduction dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388).
    There, each log gets a length-1 axis, which that mean takes off again; elsewhere they are
    returned as they are (the epoch's logs never pass through here).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return logs
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {name: tf.reshape(value, (1,)) if value.shape.rank == 0 else value for name, value in logs.items()}
